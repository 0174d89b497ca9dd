import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedFabric, generateTopology, SeededRng } from '../../src/core/index.ts';
import { attachStore, type DiskShardStore } from '../../src/store/index.ts';
import { bytesOf } from './support/fabric.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Runs the child until it has acknowledged `acks` puts plus a random extra delay, then SIGKILLs it. */
function runAndKill(
  dataDir: string,
  base: number,
  acks: number,
  extraMs: number,
): Promise<{ cid: string; seed: number; len: number }[]> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(new URL('./support/crash-child.ts', import.meta.url)),
      dataDir,
      String(base),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const out: { cid: string; seed: number; len: number }[] = [];
  let buf = '';
  return new Promise((resolve, reject) => {
    let killing = false;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const [tag, cid, seed, len] = line.split(' ');
        if (tag === 'ACK') out.push({ cid: cid as string, seed: Number(seed), len: Number(len) });
        nl = buf.indexOf('\n');
      }
      if (out.length >= acks && !killing) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), extraMs);
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(out);
      else reject(new Error(`child exited early: code ${code} signal ${signal}`));
    });
  });
}

describe('crash safety of the on-disk store (kill -9 during puts)', () => {
  it('every acknowledged object is readable and bit-exact after kill -9 and restart; torn shards are never served', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'genesis-crash-'));
    dirs.push(dataDir);
    const acked = [
      ...(await runAndKill(dataDir, 1000, 12, 37)),
      ...(await runAndKill(dataDir, 5000, 8, 91)),
    ];
    expect(acked.length).toBeGreaterThanOrEqual(20);

    const fabric = new EmbeddedFabric({
      topology: generateTopology({ regions: 1, hubs: 2, pods: 2, tiles: 4 }),
      dataDir,
      rng: new SeededRng(1),
    });
    const cluster = attachStore(fabric);
    await fabric.start();
    try {
      for (const a of acked) {
        const got = await cluster.store.getBytes(a.cid);
        expect(Buffer.compare(Buffer.from(got), Buffer.from(bytesOf(a.len, a.seed)))).toBe(0);
      }
      // Tear a shard on disk (same length, different bytes: the checksum is the only defence).
      const victim = acked.find((a) => a.len > 1000) as { cid: string; seed: number; len: number };
      const st = await cluster.store.stat(victim.cid);
      const shard = st.stripes[0]?.shards[0] as { tile: string; index: number };
      const disk = cluster.tiles.get(shard.tile)?.store as DiskShardStore;
      const at = disk.locate(victim.cid, shard.index) as {
        path: string;
        offset: number;
        length: number;
      };
      const bytes = readFileSync(at.path);
      bytes.fill(0, at.offset, at.offset + Math.min(at.length, 512));
      writeFileSync(at.path, bytes);
      expect(() => disk.get(victim.cid, shard.index)).toThrow(
        expect.objectContaining({ code: 'STORE_SHARD_CORRUPT' }),
      );
      // Rot another shard of it and read: reconstructed from the others, bit-exact, healed.
      const shard1 = st.stripes[0]?.shards[1] as { tile: string; index: number };
      const disk1 = cluster.tiles.get(shard1.tile)?.store as DiskShardStore;
      const at1 = disk1.locate(victim.cid, shard1.index) as { path: string; offset: number };
      const b1 = readFileSync(at1.path);
      b1[at1.offset] = (b1[at1.offset] ?? 0) ^ 1;
      writeFileSync(at1.path, b1);
      const got = await cluster.store.getBytes(victim.cid);
      expect(Buffer.compare(Buffer.from(got), Buffer.from(bytesOf(victim.len, victim.seed)))).toBe(
        0,
      );
      expect(disk1.check(victim.cid, shard1.index)).toBe('ok');
      // Only segment files live in the log directory after a restart.
      for (const tile of cluster.tiles.keys())
        for (const f of readdirSync(join(dataDir, 'nodes', tile, 'store', 'segments')))
          expect(f).toMatch(/^\d{10}\.seg$/);
    } finally {
      await cluster.close();
      await fabric.stop();
    }
  });
});
