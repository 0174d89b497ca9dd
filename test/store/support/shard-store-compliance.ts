/** The compliance suite every {@link ShardStore} implementation passes. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rawCid, type ShardStore } from '../../../src/store/index.ts';

/** A store factory plus a way to damage a stored shard as bit rot would. */
export interface ShardStoreHarness {
  open(): ShardStore;
  rot(store: ShardStore, block: string, index: number): void;
}

function header(block: string, index: number, blockBytes = 10) {
  return { block, index, k: 4, m: 2, blockBytes, profile: 'pod-4+2' };
}

export function shardStoreCompliance(name: string, h: ShardStoreHarness): void {
  describe(`ShardStore compliance: ${name}`, () => {
    const block = rawCid(new Uint8Array([1, 2, 3])).toString();

    it('put then get returns the same bytes and a checksum', async () => {
      const s = h.open();
      const data = new Uint8Array([9, 8, 7]);
      const rec = await s.put(header(block, 1), data);
      expect(rec.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(Array.from(s.get(block, 1).data)).toEqual([9, 8, 7]);
      expect(s.stats()).toMatchObject({ shards: 1, bytes: 3 });
      s.close();
    });

    it('missing shards are typed not-found errors', () => {
      const s = h.open();
      expect(() => s.get(block, 0)).toThrow(expect.objectContaining({ code: 'STORE_NOT_FOUND' }));
      expect(s.check(block, 0)).toBe('missing');
      s.close();
    });

    it('a rotted shard is detected, quarantined and never served', async () => {
      const s = h.open();
      await s.put(header(block, 2), new Uint8Array([1, 1, 1, 1]));
      h.rot(s, block, 2);
      expect(() => s.get(block, 2)).toThrow(
        expect.objectContaining({ code: 'STORE_SHARD_CORRUPT' }),
      );
      expect(s.check(block, 2)).toBe('missing');
      expect(s.stats().corruptDetected).toBe(1);
      s.close();
    });

    it('rejects invalid headers', async () => {
      const s = h.open();
      await expect(s.put({ ...header(block, 7) }, new Uint8Array(3))).rejects.toThrow(
        expect.objectContaining({ code: 'STORE_BAD_REPLY' }),
      );
      await expect(s.put(header('Bad/../name', 0), new Uint8Array(3))).rejects.toThrow();
      await expect(s.put(header(block, 0, 100), new Uint8Array(3))).rejects.toThrow();
      s.close();
    });

    it('list pages in (block, index) order and matches a model', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 }), fc.boolean()),
            { maxLength: 40 },
          ),
          async (ops) => {
            const s = h.open();
            const model = new Map<string, { block: string; index: number }>();
            const blocks = [0, 1, 2, 3, 4, 5].map((i) =>
              rawCid(new Uint8Array([i, 42])).toString(),
            );
            for (const [b, i, del] of ops) {
              const blk = blocks[b] as string;
              if (del) {
                expect(s.delete(blk, i)).toBe(model.delete(`${blk}#${i}`));
              } else {
                await s.put(header(blk, i, 1), new Uint8Array([b, i]));
                model.set(`${blk}#${i}`, { block: blk, index: i });
              }
            }
            const pages: string[] = [];
            let after: { block: string; index: number } | undefined;
            for (;;) {
              const page = s.list(after, 3);
              pages.push(...page.map((r) => `${r.block}#${r.index}`));
              const last = page.at(-1);
              if (page.length < 3 || last === undefined) break;
              after = { block: last.block, index: last.index };
            }
            const want = [...model.values()]
              .sort((a, b) =>
                a.block === b.block ? a.index - b.index : a.block < b.block ? -1 : 1,
              )
              .map((r) => `${r.block}#${r.index}`);
            expect(pages).toEqual(want);
            expect(s.stats().shards).toBe(model.size);
            s.close();
          },
        ),
        { numRuns: 25 },
      );
    });
  });
}
