/**
 * Store benchmarks (the erasure codec has its own file):
 * - put/get of a 64 MiB object across the 16 in-process tiles of the default topology, on disk
 *   with fsync, against writing/reading the same bytes to one file with fsync in the same run;
 * - repair of a dead tile: MB/s of shard bytes rebuilt onto the other tiles;
 * - streaming a 1 GiB object in and out in a child process: RSS growth (bound: 128 MiB).
 * Sizes can be changed with STORE_BENCH_MIB, STORE_BENCH_REPAIR_MIB, STORE_BENCH_STREAM_MIB.
 */
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EmbeddedFabric, generateTopology, SeededRng } from '../../src/core/index.ts';
import { attachStore, type StoreCluster } from '../../src/store/index.ts';
import { type BenchCase, type BenchRow, row } from '../harness.ts';

const MIB = 2 ** 20;
const OBJECT_MIB = Number(process.env.STORE_BENCH_MIB ?? '64');
/** Size of each object written before the repair (more are written until the tile target). */
const REPAIR_MIB = Number(process.env.STORE_BENCH_REPAIR_MIB ?? '256');
/**
 * Shard MiB the dead tile must hold before it dies. The issue asks for 1 GiB
 * (`STORE_BENCH_REPAIR_TILE_MIB=1024`: about 10.7 GiB of objects over 16 tiles, a few minutes
 * and ~17 GB of disk); the default keeps the case near 30 s.
 */
const REPAIR_TILE_MIB = Number(process.env.STORE_BENCH_REPAIR_TILE_MIB ?? '0');
const STREAM_MIB = Number(process.env.STORE_BENCH_STREAM_MIB ?? '1024');

/** Makes every 1 MiB chunk of `data` unique to `round` (so no chunk dedups against an earlier put). */
function stamp(data: Uint8Array, round: number): void {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let off = 0; off + 4 <= data.length; off += MIB) view.setUint32(off, round);
}

async function withCluster<T>(
  fn: (c: StoreCluster, fabric: EmbeddedFabric, dir: string) => Promise<T>,
  durable = true,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'genesis-store-bench-'));
  const fabric = new EmbeddedFabric({
    topology: generateTopology({ regions: 1, hubs: 2, pods: 2, tiles: 4 }),
    dataDir: dir,
    rng: new SeededRng(3),
  });
  const cluster = attachStore(fabric, { durable });
  await fabric.start();
  try {
    return await fn(cluster, fabric, dir);
  } finally {
    await cluster.close();
    await fabric.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function rawWrite(path: string, data: Uint8Array): void {
  const fd = openSync(path, 'w');
  for (let off = 0; off < data.length; off += MIB)
    writeSync(fd, data, off, Math.min(MIB, data.length - off));
  fsyncSync(fd);
  closeSync(fd);
}

/** Runs `fn` and returns [wall ms, process CPU ms (user + system, all threads)]. */
async function timed(fn: () => unknown | Promise<unknown>): Promise<[number, number]> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const c = process.cpuUsage(c0);
  return [performance.now() - t0, (c.user + c.system) / 1000];
}

async function best(
  rounds: number,
  fn: () => unknown | Promise<unknown>,
): Promise<[number, number]> {
  let wall = Number.POSITIVE_INFINITY;
  let cpu = Number.POSITIVE_INFINITY;
  for (let i = 0; i < rounds; i++) {
    const [w, c] = await timed(fn);
    wall = Math.min(wall, w);
    cpu = Math.min(cpu, c);
  }
  return [wall, cpu];
}

async function putGet(): Promise<BenchRow[]> {
  const data = new Uint8Array(OBJECT_MIB * MIB);
  randomFillSync(data);
  return withCluster(async (c, _f, dir) => {
    const rawPath = join(dir, 'raw.bin');
    const [rawWriteMs, rawWriteCpu] = await best(2, () => rawWrite(rawPath, data));
    const [rawReadMs, rawReadCpu] = await best(2, () => readFileSync(rawPath));
    let cid = '';
    let round = 0;
    // Every round writes new chunks: a re-put of the same bytes would only verify the copies.
    const [putMs, putCpu] = await best(2, async () => {
      stamp(data, ++round);
      cid = (await c.store.put(data)).cid;
    });
    const [getMs, getCpu] = await best(2, async () => {
      let n = 0;
      for await (const chunk of c.store.get(cid)) n += chunk.length;
      if (n !== data.length) throw new Error('short read');
    });
    const mbs = (ms: number) => data.length / 1e6 / (ms / 1000);
    // The machine is shared: CPU-time rows (MB per CPU-second) are the load-independent view.
    return [
      row(
        `put ${OBJECT_MIB} MiB, 4+2 over 16 tiles (fsync)`,
        mbs(putMs),
        'MB/s',
        'raw file write+fsync MB/s',
        mbs(rawWriteMs),
        'report',
      ),
      row(
        `get ${OBJECT_MIB} MiB, 4+2 over 16 tiles (verified)`,
        mbs(getMs),
        'MB/s',
        'raw file read MB/s',
        mbs(rawReadMs),
        'report',
      ),
      row(
        `put ${OBJECT_MIB} MiB, MB per CPU-second`,
        mbs(putCpu),
        'MB/cpu-s',
        'raw write MB/cpu-s',
        mbs(rawWriteCpu),
        'report',
      ),
      row(
        `get ${OBJECT_MIB} MiB, MB per CPU-second`,
        mbs(getCpu),
        'MB/cpu-s',
        'raw read MB/cpu-s',
        mbs(rawReadCpu),
        'report',
      ),
    ];
  });
}

async function repairDeadTile(): Promise<BenchRow[]> {
  return withCluster(async (c, fabric) => {
    const data = new Uint8Array(REPAIR_MIB * MIB);
    randomFillSync(data);
    const tileBytes = (): [string, number] => {
      let victim = '';
      let most = -1;
      for (const [name, t] of c.tiles) {
        const b = t.status().bytes ?? 0;
        if (b > most) [victim, most] = [name, b];
      }
      return [victim, most];
    };
    let objects = 0;
    do {
      stamp(data, ++objects);
      await c.store.put(data);
    } while (tileBytes()[1] < REPAIR_TILE_MIB * MIB);
    // The tile holding the most shard bytes dies.
    const [victim, most] = tileBytes();
    await fabric.nodes.get(victim)?.stop();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await c.repair({ scrub: false });
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    if (r.unrecoverable.length > 0) throw new Error('unrecoverable stripes after one dead tile');
    let stored = 0;
    for (const [name, t] of c.tiles) if (name !== victim) stored += t.status().bytes ?? 0;
    const t1 = performance.now();
    const scrub = await c.repair({ scrub: true });
    const scrubMs = performance.now() - t1;
    if (scrub.shardsNeeded !== 0) throw new Error('scrub after repair found work');
    const what = `${(most / MIB).toFixed(1)} MiB of shards, ${objects} x ${REPAIR_MIB} MiB objects`;
    return [
      row(
        `repair dead tile (${what}): dead tile's MB/s`,
        most / 1e6 / (ms / 1000),
        'MB/s',
        'shard MiB on dead tile',
        most / MIB,
        'report',
      ),
      row(
        `repair dead tile (${what}): rebuilt+moved MB/s`,
        r.bytesRepaired / 1e6 / (ms / 1000),
        'MB/s',
        'rebuilt+moved MB per CPU-second',
        r.bytesRepaired / 1e6 / (cpuMs / 1000),
        'report',
      ),
      row(
        `scrub pass over ${(stored / MIB).toFixed(0)} MiB of shards (re-hash all), MB/s`,
        stored / 1e6 / (scrubMs / 1000),
        'MB/s',
        'repair rebuilt MB/s',
        r.bytesRepaired / 1e6 / (ms / 1000),
        'report',
      ),
    ];
  });
}

async function streamRss(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'genesis-store-rss-'));
  try {
    const child = fileURLToPath(new URL('./stream-rss-child.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', child, dir, String(STREAM_MIB)],
      { maxBuffer: 1 << 20 },
    );
    const r = JSON.parse(stdout.trim().split('\n').at(-1) as string) as {
      same: boolean;
      growthMiB: number;
      putMs: number;
      getMs: number;
    };
    if (!r.same) throw new Error('streamed object came back different');
    const mbs = (ms: number) => (STREAM_MIB * MIB) / 1e6 / (ms / 1000);
    return [
      row(
        `stream ${STREAM_MIB} MiB put+get: peak RSS growth`,
        r.growthMiB,
        'MiB',
        'bound MiB',
        128,
        '< 128 MiB',
      ),
      row(
        `stream ${STREAM_MIB} MiB put (no fsync)`,
        mbs(r.putMs),
        'MB/s',
        'get MB/s',
        mbs(r.getMs),
        'report',
      ),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cases: BenchCase[] = [
  { name: 'store put/get 64 MiB across 16 tiles vs raw file', run: putGet },
  { name: 'store repair of a dead tile', run: repairDeadTile },
  { name: 'store stream 1 GiB bounded memory', run: streamRss },
];
export default cases;
