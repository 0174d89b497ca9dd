/**
 * Profiling driver for the store's put, get and repair (not a benchmark case: the harness only
 * runs `*.bench.ts`). Boots the 16-tile default fabric on disk with fsync, writes a warm-up
 * object (so shard directories exist, as in steady state), then times one operation and, with
 * `--cpu-prof FILE`, records a V8 CPU profile of exactly that operation.
 *
 *     node --import tsx bench/store/profile-store.ts put|get|repair MIB [--cpu-prof FILE]
 *
 * Under `perf record -g node --perf-basic-prof --import tsx ...` the native side (hashing,
 * syscalls) shows up too.
 */
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedFabric, generateTopology, SeededRng } from '../../src/core/index.ts';
import { attachStore } from '../../src/store/index.ts';

const MIB = 2 ** 20;
const what = process.argv[2] ?? 'put';
const mib = Number(process.argv[3] ?? '64');
const profIdx = process.argv.indexOf('--cpu-prof');
const profOut = profIdx > 0 ? process.argv[profIdx + 1] : undefined;

const dir = mkdtempSync(join(tmpdir(), 'genesis-store-prof-'));
const fabric = new EmbeddedFabric({
  topology: generateTopology({ regions: 1, hubs: 2, pods: 2, tiles: 4 }),
  dataDir: dir,
  rng: new SeededRng(3),
});
const c = attachStore(fabric, { durable: true });
await fabric.start();
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** CPU ms per thread name (Linux /proc), to split the main thread from libuv and GC helpers. */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    const tick = 10; // USER_HZ = 100 on Linux: one tick is 10 ms
    for (const tid of readdirSync('/proc/self/task')) {
      const comm =
        Number(tid) === process.pid
          ? 'main'
          : readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim().replace(/\d+$/, '');
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(f[11]) + Number(f[12])) * tick;
      out.set(comm, (out.get(comm) ?? 0) + ms);
    }
  } catch {
    // not Linux
  }
  return out;
}
const session = new Session();
session.connect();
async function timed(label: string, bytes: number, fn: () => Promise<unknown>): Promise<void> {
  if (profOut !== undefined) {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const th0 = threadCpu();
  const c0 = cpuMs();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const cpu = cpuMs() - c0;
  const th = [...threadCpu()]
    .map(([name, ms]) => [name, ms - (th0.get(name) ?? 0)] as const)
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1]);
  if (profOut !== undefined) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(profOut, JSON.stringify(profile));
  }
  const mb = bytes / 1e6;
  process.stdout.write(
    `${label}: ${wall.toFixed(0)} ms wall, ${cpu.toFixed(0)} ms cpu, ${(mb / (wall / 1000)).toFixed(1)} MB/s, ${(mb / (cpu / 1000)).toFixed(1)} MB/cpu-s\n  cpu by thread: ${th.map(([n, ms]) => `${n} ${ms} ms`).join(', ')}\n`,
  );
}

try {
  const warm = new Uint8Array(16 * MIB);
  randomFillSync(warm);
  await c.store.put(warm);
  const data = new Uint8Array(mib * MIB);
  randomFillSync(data);
  let cid = '';
  const put = async (): Promise<void> => {
    cid = (await c.store.put(data)).cid;
  };
  if (what === 'put') await timed(`put ${mib} MiB`, data.length, put);
  else await put();
  if (what === 'get') {
    await timed(`get ${mib} MiB`, data.length, async () => {
      let n = 0;
      for await (const ch of c.store.get(cid)) n += ch.length;
      if (n !== data.length) throw new Error('short read');
    });
  }
  if (what === 'repair') {
    let victim = '';
    let most = -1;
    for (const [name, t] of c.tiles) {
      const b = t.status().bytes ?? 0;
      if (b > most) [victim, most] = [name, b];
    }
    await fabric.nodes.get(victim)?.stop();
    let rebuilt = 0;
    await timed(`repair (${(most / MIB).toFixed(1)} MiB on the dead tile)`, most, async () => {
      rebuilt = (await c.repair({ scrub: false })).bytesRepaired;
    });
    process.stdout.write(`rebuilt ${(rebuilt / MIB).toFixed(1)} MiB\n`);
  }
} finally {
  session.disconnect();
  await c.close();
  await fabric.stop();
  rmSync(dir, { recursive: true, force: true });
}
