import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskShardStore, MemoryShardStore, rawCid } from '../../src/store/index.ts';
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
    const p = (s as DiskShardStore).pathOf(b, i);
    const bytes = readFileSync(p);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x40;
    writeFileSync(p, bytes);
  },
});

describe('DiskShardStore recovery', () => {
  const block = rawCid(new Uint8Array([5])).toString();
  const header = (index: number) => ({ block, index, k: 2, m: 1, blockBytes: 8, profile: '2+1' });

  it('survives reopen, drops torn files, adopts complete files whose row was lost', async () => {
    const dir = freshDir();
    const s = new DiskShardStore(dir);
    await s.put(header(0), new Uint8Array([1, 2, 3, 4]));
    await s.put(header(1), new Uint8Array([5, 6, 7, 8]));
    await s.put(header(2), new Uint8Array([9, 9, 9, 9]));
    const torn = s.pathOf(block, 1);
    s.close();
    truncateSync(torn, 2);
    // A file renamed into place whose index row never committed (crash between the two).
    writeFileSync(join(dir, 'shards', block.slice(-2), `${block}.9`), new Uint8Array([1]));
    writeFileSync(join(dir, 'tmp', 'half-written.tmp'), new Uint8Array([1]));
    // Shard 2's file is complete but its index row was lost (synchronous=NORMAL, power cut).
    const db = new Database(join(dir, 'index.sqlite'));
    db.prepare('DELETE FROM shards WHERE idx = 2').run();
    db.close();
    const r = new DiskShardStore(dir);
    expect(r.stats()).toMatchObject({ shards: 2, bytes: 8, recovered: 2 });
    expect(r.adoptedAtOpen).toBe(1);
    expect(Array.from(r.get(block, 2).data)).toEqual([9, 9, 9, 9]);
    expect(Array.from(r.get(block, 0).data)).toEqual([1, 2, 3, 4]);
    expect(r.check(block, 1)).toBe('missing');
    expect(r.stat(block, 9)).toBeUndefined();
    r.close();
  });

  it('a same-length torn write is caught by the checksum, never served', async () => {
    const dir = freshDir();
    const s = new DiskShardStore(dir);
    await s.put(header(0), new Uint8Array([1, 2, 3, 4]));
    const p0 = s.pathOf(block, 0);
    const torn = readFileSync(p0);
    torn.fill(0, torn.length - 2);
    writeFileSync(p0, torn);
    s.close();
    const r = new DiskShardStore(dir);
    expect(() => r.get(block, 0)).toThrow(expect.objectContaining({ code: 'STORE_SHARD_CORRUPT' }));
    expect(r.stats().corruptDetected).toBe(1);
    r.close();
  });
});
