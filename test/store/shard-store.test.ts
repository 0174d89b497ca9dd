import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DiskShardStore,
  MemoryShardStore,
  rawCid,
  SEGMENT_COMPACT_LIVE_PERCENT_MIN,
} from '../../src/store/index.ts';
import { shardStoreCompliance } from './support/shard-store-compliance.ts';

const dirs: string[] = [];
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'genesis-shards-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

shardStoreCompliance('memory', {
  open: () => new MemoryShardStore(),
  rot: (s, b, i) => (s as MemoryShardStore).rot(b, i),
});

shardStoreCompliance('disk', {
  open: () => new DiskShardStore(freshDir(), { durable: false }),
  rot: (s, b, i) => {
    const at = (s as DiskShardStore).locate(b, i);
    if (at === undefined) throw new Error('shard not stored');
    const bytes = readFileSync(at.path);
    const last = at.offset + at.length - 1;
    bytes[last] = (bytes[last] ?? 0) ^ 0x40;
    writeFileSync(at.path, bytes);
  },
});

describe('DiskShardStore recovery', () => {
  const block = rawCid(new Uint8Array([5])).toString();
  const header = (index: number, b = block) => ({
    block: b,
    index,
    k: 2,
    m: 1,
    blockBytes: 8,
    profile: '2+1',
  });
  const located = (s: DiskShardStore, i: number, b = block) => {
    const at = s.locate(b, i);
    if (at === undefined) throw new Error(`shard ${i} not stored`);
    return at;
  };
  /** Simulates lost index commits (power cut under synchronous=NORMAL): replay from `off`. */
  const rewindMark = (dir: string, seg: number, off: number, dropIdx?: number) => {
    const db = new Database(join(dir, 'index.sqlite'));
    if (dropIdx !== undefined) db.prepare('DELETE FROM shard_log WHERE idx = ?').run(dropIdx);
    db.prepare('UPDATE replay_mark SET seg = ?, off = ?').run(seg, off);
    db.close();
  };
  const segNo = (path: string) => Number(/(\d+)\.seg$/.exec(path)?.[1]);

  it('re-indexes whole records whose index commit was lost, cuts a torn tail, removes stray files', async () => {
    const dir = freshDir();
    const s = new DiskShardStore(dir);
    await s.put(header(0), new Uint8Array([1, 2, 3, 4]));
    await s.put(header(1), new Uint8Array([5, 6, 7, 8]));
    await s.put(header(2), new Uint8Array([9, 9, 9, 9]));
    const at2 = located(s, 2);
    s.close();
    const whole = statSync(at2.path).size;
    // A batch torn by the crash: half a record after the last whole one.
    const seg = readFileSync(at2.path);
    appendFileSync(at2.path, seg.subarray(0, 30));
    writeFileSync(join(dir, 'segments', 'half-written.tmp'), new Uint8Array([1]));
    rewindMark(dir, segNo(at2.path), 0, 2);
    const r = new DiskShardStore(dir);
    expect(r.stats()).toMatchObject({ shards: 3, bytes: 12, recovered: 1 });
    expect(r.adoptedAtOpen).toBe(1);
    expect(statSync(at2.path).size).toBe(whole);
    expect(readdirSync(join(dir, 'segments'))).toHaveLength(1);
    expect(Array.from(r.get(block, 2).data)).toEqual([9, 9, 9, 9]);
    expect(Array.from(r.get(block, 0).data)).toEqual([1, 2, 3, 4]);
    // New writes follow the last whole record and survive another reopen.
    await r.put(header(1), new Uint8Array([7, 7, 7, 7]));
    r.close();
    const r2 = new DiskShardStore(dir);
    expect(Array.from(r2.get(block, 1).data)).toEqual([7, 7, 7, 7]);
    expect(r2.stats()).toMatchObject({ shards: 3, bytes: 12, recovered: 0 });
    r2.close();
  });

  it('a deleted shard stays deleted when the delete commit is lost (tombstone replay)', async () => {
    const dir = freshDir();
    const s = new DiskShardStore(dir);
    await s.put(header(0), new Uint8Array([1, 2, 3, 4]));
    await s.put(header(1), new Uint8Array([5, 6, 7, 8]));
    const at0 = located(s, 0);
    const row = s.stat(block, 0);
    expect(s.delete(block, 0)).toBe(true);
    await s.flush();
    s.close();
    // The power cut loses the delete's row removal: the row is back, the mark before it.
    const db = new Database(join(dir, 'index.sqlite'));
    db.prepare(
      'INSERT INTO shard_log VALUES (@block, @index, @k, @m, @blockBytes, @shardBytes, @sha256, @profile, @seg, @off)',
    ).run({ ...row, seg: segNo(at0.path), off: at0.offset });
    db.prepare('UPDATE replay_mark SET seg = ?, off = 0').run(segNo(at0.path));
    db.close();
    const r = new DiskShardStore(dir);
    expect(r.stat(block, 0)).toBeUndefined();
    expect(r.check(block, 1)).toBe('ok');
    expect(r.stats()).toMatchObject({ shards: 1, bytes: 4 });
    r.close();
  });

  it('rows the log no longer backs (a cut segment) are dropped at open', async () => {
    const dir = freshDir();
    const s = new DiskShardStore(dir);
    await s.put(header(0), new Uint8Array([1, 2, 3, 4]));
    await s.put(header(1), new Uint8Array([5, 6, 7, 8]));
    const at1 = located(s, 1);
    s.close();
    truncateSync(at1.path, at1.offset + 2);
    const r = new DiskShardStore(dir);
    expect(r.stats()).toMatchObject({ shards: 1, bytes: 4, recovered: 1 });
    expect(r.check(block, 1)).toBe('missing');
    expect(Array.from(r.get(block, 0).data)).toEqual([1, 2, 3, 4]);
    r.close();
  });

  it('a same-length torn write is caught by the checksum, never served, and stays quarantined', async () => {
    const dir = freshDir();
    const s = new DiskShardStore(dir);
    await s.put(header(0), new Uint8Array([1, 2, 3, 4]));
    const at = located(s, 0);
    s.close();
    const bytes = readFileSync(at.path);
    bytes.fill(0, at.offset + 2, at.offset + at.length);
    writeFileSync(at.path, bytes);
    const r = new DiskShardStore(dir);
    expect(() => r.get(block, 0)).toThrow(expect.objectContaining({ code: 'STORE_SHARD_CORRUPT' }));
    expect(r.stats().corruptDetected).toBe(1);
    await r.flush();
    r.close();
    const r2 = new DiskShardStore(dir);
    expect(r2.check(block, 0)).toBe('missing');
    r2.close();
  });

  it('concurrent puts share group commits (one writev and fdatasync per batch)', async () => {
    const dir = freshDir();
    const s = new DiskShardStore(dir);
    const blocks = Array.from({ length: 20 }, (_, i) => rawCid(new Uint8Array([i, 1])).toString());
    await Promise.all(blocks.map((b, i) => s.put(header(0, b), new Uint8Array([i, i, i, i]))));
    expect(s.batchesWritten).toBeLessThanOrEqual(3);
    expect(s.stats().shards).toBe(20);
    s.close();
  });

  it('compaction keeps every live shard and reclaims dead segments (model, reopen)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 }), fc.nat(3)),
          { minLength: 1, maxLength: 40 },
        ),
        async (ops) => {
          const dir = freshDir();
          // Tiny segments: nearly every batch rolls, so compaction runs constantly.
          const open = () => new DiskShardStore(dir, { durable: false, segmentBytesMax: 600 });
          const s = open();
          const blocks = [0, 1, 2, 3].map((i) => rawCid(new Uint8Array([i, 9])).toString());
          const model = new Map<string, number[]>();
          for (const [b, i, v] of ops) {
            const blk = blocks[b] as string;
            if (v === 0) {
              expect(s.delete(blk, i)).toBe(model.delete(`${blk}#${i}`));
            } else {
              const data = [b, i, v, v * 3];
              await s.put(header(i, blk), new Uint8Array(data));
              model.set(`${blk}#${i}`, data);
            }
          }
          await s.flush();
          const check = (st: DiskShardStore) => {
            expect(st.stats().shards).toBe(model.size);
            for (const [key, data] of model) {
              const [blk, i] = key.split('#') as [string, string];
              expect(Array.from(st.get(blk, Number(i)).data)).toEqual(data);
            }
            const segs = st.segmentInfo();
            for (const seg of segs.slice(0, -1))
              expect(seg.live * 100).toBeGreaterThanOrEqual(
                seg.size * SEGMENT_COMPACT_LIVE_PERCENT_MIN,
              );
            expect(segs.reduce((n, x) => n + x.live, 0)).toBeGreaterThanOrEqual(st.stats().bytes);
          };
          check(s);
          s.close();
          const r = open();
          await r.flush();
          check(r);
          r.close();
        },
      ),
      {
        numRuns: 20,
        // Found by this property: a segment sealed while a compaction pass was finishing was
        // never compacted (the request was dropped because a pass was running).
        examples: [
          [
            [
              [0, 0, 1],
              [1, 2, 1],
              [2, 2, 1],
              [1, 2, 0],
              [3, 2, 2],
              [2, 2, 0],
              [3, 2, 1],
              [0, 1, 1],
            ],
          ],
        ],
      },
    );
    // Whether the random runs compacted depends on their draws; this one always does: tiny
    // segments, then most of their shards deleted, leave sealed segments below the live minimum.
    const dir = freshDir();
    const s = new DiskShardStore(dir, { durable: false, segmentBytesMax: 600 });
    const blks = Array.from({ length: 30 }, (_, i) => rawCid(new Uint8Array([7, i])).toString());
    for (const [i, blk] of blks.entries())
      await s.put(header(0, blk), new Uint8Array([i, i, i, i]));
    for (const blk of blks.slice(0, 28)) expect(s.delete(blk, 0)).toBe(true);
    await s.flush();
    expect(s.segmentsCompacted).toBeGreaterThan(0);
    expect(Array.from(s.get(blks[29] as string, 0).data)).toEqual([29, 29, 29, 29]);
    s.close();
  });

  it('migrates the previous one-file-per-shard layout into the log', async () => {
    const dir = freshDir();
    const legacyFile = (index: number, data: number[], sha?: string) => {
      const rec = {
        ...header(index),
        shardBytes: data.length,
        sha256: sha ?? createHash('sha256').update(new Uint8Array(data)).digest('hex'),
      };
      const head = Buffer.from(JSON.stringify(rec));
      const out = Buffer.alloc(8 + head.length + data.length);
      out.writeUInt32BE(0x47534831, 0);
      out.writeUInt32BE(head.length, 4);
      head.copy(out, 8);
      Buffer.from(data).copy(out, 8 + head.length);
      const sub = join(dir, 'shards', block.slice(-2));
      mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, `${block}.${index}`), out);
    };
    legacyFile(0, [1, 2, 3, 4]);
    legacyFile(1, [5, 6, 7, 8], '00'.repeat(32)); // rotted: never migrated
    const s = new DiskShardStore(dir);
    expect(s.stats()).toMatchObject({ shards: 1, bytes: 4, recovered: 1 });
    expect(Array.from(s.get(block, 0).data)).toEqual([1, 2, 3, 4]);
    expect(existsSync(join(dir, 'shards'))).toBe(false);
    s.close();
    const r = new DiskShardStore(dir);
    expect(Array.from(r.get(block, 0).data)).toEqual([1, 2, 3, 4]);
    r.close();
  });
});
