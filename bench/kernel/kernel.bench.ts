/**
 * Kernel benchmarks (issue 3's table), each against its baseline measured in the same run:
 *  - IPC call+reply round trip between two domains vs a bare wasm→JS→wasm call,
 *  - notification signal → the bound domain's handler runs, vs a bare JS→wasm call,
 *  - domain spawn from a compiled module (pooled, spawn+kill cycle, cold) vs
 *    `new WebAssembly.Instance`,
 *  - (fuel-metering overhead: bench/kernel/fuel.bench.ts),
 *  - revoke of a 100,000-capability derivation tree (ns per capability),
 *  - 10,000 live idle domains: RSS per domain, in a fresh child process, vs that process empty.
 * Run: `npm run bench -- kernel` (`--json` for JSON lines).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type Cap,
  derive,
  Endpoint,
  Kernel,
  loadModule,
  originalCap,
  Rights,
  revokeCap,
  SPAWN_POOL_MODULE_INSTANCES_MAX,
} from '../../src/kernel/index.ts';
import { watToWasm } from '../../src/toolchain/index.ts';
import { type BenchCase, row } from '../harness.ts';

/** Iterations of the in-wasm loops timed per round. */
const LOOP_ITERATIONS = 200_000;
/** Domains spawned per round of the spawn benchmark. */
const SPAWN_BATCH = 2_000;
/** Live domains of the memory benchmark. */
const LIVE_DOMAINS = 10_000;
/** Capabilities in the revoked derivation tree. */
const REVOKE_CAPS = 100_000;

const W = (globalThis as unknown as { WebAssembly: unknown }).WebAssembly as {
  Module: new (b: Uint8Array) => object;
  Instance: new (m: object, i: object) => { exports: Record<string, unknown> };
};
type Fn = (...a: unknown[]) => unknown;

const CLIENT = `(module
  (import "genesis" "call" (func $call (param i32 i32 i64 i64) (result i64)))
  (func (export "bench") (param $n i32) (result i64) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (local.get $acc) (call $call (i32.const 4096) (i32.const 1) (i64.const 1) (i64.const 0))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    (local.get $acc)))`;
const SERVER = `(module (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) (local.get 2)))`;
const BARE_CLIENT = `(module
  (import "env" "f" (func $f (param i32 i32 i64 i64) (result i64)))
  (func (export "bench") (param $n i32) (result i64) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (local.get $acc) (call $f (i32.const 4096) (i32.const 1) (i64.const 1) (i64.const 0))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    (local.get $acc)))`;
const NOTIFIED = `(module (global $n (mut i64) (i64.const 0))
  (func (export "genesis_notify") (param $bits i64) (global.set $n (i64.add (global.get $n) (local.get $bits)))))`;
const SMALL = `(module (memory 1) (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) (local.get 2)))`;

function perOpNs(ms: number, ops: number): number {
  return (ms * 1e6) / ops;
}

/** Rounds of each timed loop; kernel and baseline alternate so both see the same machine load. */
const ROUNDS = 9;

/** Process CPU time (user + system, all threads) in ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Best-of-`rounds` times (ms) of each function, run alternately round by round: on a shared,
 * noisy machine a burst of load then hits the kernel loop and its baseline alike. Both wall
 * time and process CPU time are kept: with the 2-core machine oversubscribed (load 10–20), wall
 * time mostly measures the other jobs, CPU time what the loop itself costs.
 * A function may time only part of its work and return that (wall ms; CPU is then not kept).
 */
function interleavedBest(
  rounds: number,
  fns: readonly (() => unknown)[],
): { wall: number[]; cpu: number[] } {
  const wall = fns.map(() => Number.POSITIVE_INFINITY);
  const cpu = fns.map(() => Number.POSITIVE_INFINITY);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, i) => {
      const c0 = cpuMs();
      const t0 = performance.now();
      const own = fn();
      const dt = typeof own === 'number' ? own : performance.now() - t0;
      const dc = typeof own === 'number' ? Number.NaN : cpuMs() - c0;
      wall[i] = Math.min(wall[i] as number, dt);
      cpu[i] = Math.min(cpu[i] as number, dc);
    });
  }
  return { wall, cpu };
}

/**
 * Two rows per case, ns per operation: process CPU time (what the machine's load distorts least)
 * and wall clock, each against its baseline from the same interleaved rounds (index 0: kernel,
 * index 1: baseline).
 */
function cpuAndWallRows(
  bench: string,
  baseline: string,
  t: { cpu: (number | undefined)[]; wall: (number | undefined)[] },
  ops: number,
  target: string,
): ReturnType<typeof row>[] {
  const ns = (ms: number | undefined): number => perOpNs(ms as number, ops);
  return (['cpu', 'wall'] as const).map((k) => {
    const label = k === 'cpu' ? 'CPU time' : 'wall clock';
    return row(
      `${bench} (${label})`,
      ns(t[k][0]),
      'ns',
      `${baseline} (${label})`,
      ns(t[k][1]),
      target,
    );
  });
}

async function ipcRoundTrip(): Promise<ReturnType<typeof row>[]> {
  const k = new Kernel();
  const ep = k.createEndpoint();
  const server = k.spawn(loadModule(await watToWasm(SERVER)));
  k.bindReceiver(server.domain, ep);
  const client = k.spawn(loadModule(await watToWasm(CLIENT)), {
    caps: [k.mint(ep, Rights.WRITE | Rights.GRANT_REPLY)],
  });
  const bench = client.domain.instance.exports.bench as Fn;
  const run = (): void => {
    const r = k.runHook(client.domain, bench, [LOOP_ITERATIONS], 1 << 30);
    if (!r.ok || r.value !== BigInt(LOOP_ITERATIONS))
      throw new Error(
        `ipc bench failed: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
      );
  };
  const srv = new W.Instance(new W.Module(await watToWasm(SERVER)), {});
  const handle = srv.exports.genesis_handle as Fn;
  const bare = new W.Instance(new W.Module(await watToWasm(BARE_CLIENT)), {
    env: { f: (_ep: number, info: number, mr0: bigint, mr1: bigint) => handle(0n, info, mr0, mr1) },
  });
  const bareBench = bare.exports.bench as Fn;
  const fast0 = k.stats.ipcFastpath;
  const t = interleavedBest(ROUNDS, [run, () => void bareBench(LOOP_ITERATIONS)]);
  if (k.stats.ipcFastpath - fast0 !== ROUNDS * LOOP_ITERATIONS)
    throw new Error('ipc bench did not take the fast path');
  return cpuAndWallRows(
    'kernel: IPC call+reply round trip',
    'bare wasm→JS→wasm call',
    t,
    LOOP_ITERATIONS,
    '≤ 100 ns, ≤ 10× baseline',
  );
}

async function notification(): Promise<ReturnType<typeof row>[]> {
  const k = new Kernel();
  const n = k.createNotification();
  const d = k.spawn(loadModule(await watToWasm(NOTIFIED)));
  k.bindNotification(d.domain, n);
  k.run();
  const ops = 50_000;
  const bare = new W.Instance(new W.Module(await watToWasm(NOTIFIED)), {});
  const f = bare.exports.genesis_notify as Fn;
  const a0 = d.domain.stats.activations;
  const t = interleavedBest(ROUNDS, [
    () => {
      for (let i = 0; i < ops; i++) {
        k.signal(n);
        k.run(1);
      }
    },
    () => {
      for (let i = 0; i < ops; i++) f(1n);
    },
  ]);
  if (d.domain.stats.activations - a0 !== ROUNDS * ops)
    throw new Error('notify handler did not run once per signal');
  return cpuAndWallRows(
    'kernel: notification signal → waiting domain runs',
    'bare JS→wasm call',
    t,
    ops,
    '≤ 200 ns',
  );
}

/**
 * Spawn, three ways, against `new WebAssembly.Instance` of the same (uninstrumented) module:
 *  - pooled: from instances the kernel pre-instantiated in idle time (`prewarm`) or recycled
 *    from killed domains (reset at kill) — the target row (wasmtime's pooling allocator);
 *  - spawn+kill cycle: what a steady spawn/kill workload pays per domain, reset included;
 *  - cold: a new instance per spawn (empty pool).
 */
async function spawn(): Promise<ReturnType<typeof row>[]> {
  const bytes = await watToWasm(SMALL);
  const km = loadModule(bytes);
  const raw = new W.Module(bytes);
  const pooledBatch = SPAWN_POOL_MODULE_INSTANCES_MAX;
  const pk = new Kernel();
  pk.prewarm(km, pooledBatch);
  const ck = new Kernel();
  const one = ck.spawn(km, { memoryBytes: 65536 });
  ck.kill(one.domain);
  const [pooledMs, cycleMs, coldMs, instMs] = interleavedBest(5, [
    () => {
      // Untimed refill is done by the kills at the end of the previous round.
      if (pk.pooled(km) !== pooledBatch) throw new Error('pool not full');
      const made: ReturnType<Kernel['spawn']>[] = [];
      const t0 = performance.now();
      for (let i = 0; i < pooledBatch; i++) made.push(pk.spawn(km, { memoryBytes: 65536 }));
      const dt = performance.now() - t0;
      for (const m of made) pk.kill(m.domain);
      return dt;
    },
    () => {
      for (let i = 0; i < SPAWN_BATCH; i++) ck.kill(ck.spawn(km, { memoryBytes: 65536 }).domain);
    },
    () => {
      const k = new Kernel();
      for (let i = 0; i < SPAWN_BATCH; i++) k.spawn(km, { memoryBytes: 65536 });
    },
    () => {
      for (let i = 0; i < SPAWN_BATCH; i++) new W.Instance(raw, {});
    },
  ]).wall as [number, number, number, number];
  const inst = perOpNs(instMs, SPAWN_BATCH) / 1000;
  if (pk.stats.spawnPoolHits < pooledBatch) throw new Error('pooled spawns missed the pool');
  return [
    row(
      'kernel: domain spawn, pooled (prewarmed/recycled instance)',
      perOpNs(pooledMs, pooledBatch) / 1000,
      'µs',
      'new WebAssembly.Instance',
      inst,
      '≤ 20 µs',
    ),
    row(
      'kernel: domain spawn+kill cycle (recycling, reset included)',
      perOpNs(cycleMs, SPAWN_BATCH) / 1000,
      'µs',
      'new WebAssembly.Instance',
      inst,
    ),
    row(
      'kernel: domain spawn, cold (new instance)',
      perOpNs(coldMs, SPAWN_BATCH) / 1000,
      'µs',
      'new WebAssembly.Instance',
      inst,
    ),
  ];
}

function revoke(): ReturnType<typeof row>[] {
  let best = Number.POSITIVE_INFINITY;
  // Baseline: building the same tree (derive), timed in the same rounds.
  let bestBuild = Number.POSITIVE_INFINITY;
  // Seven rounds: the first ones run before the JIT has optimised revoke.
  for (let round = 0; round < 7; round++) {
    const tb = performance.now();
    const root = originalCap(new Endpoint(), Rights.ALL);
    let frontier: Cap[] = [root];
    let made = 0;
    while (made < REVOKE_CAPS) {
      const next: Cap[] = [];
      for (const p of frontier) {
        for (let i = 0; i < 4 && made < REVOKE_CAPS; i++, made++)
          next.push(derive(p, Rights.ALL) as Cap);
      }
      frontier = next;
    }
    bestBuild = Math.min(bestBuild, performance.now() - tb);
    const t0 = performance.now();
    const n = revokeCap(root);
    best = Math.min(best, performance.now() - t0);
    if (n !== REVOKE_CAPS) throw new Error(`revoked ${n}`);
  }
  return [
    row(
      'kernel: revoke of a 100k-capability derivation tree',
      perOpNs(best, REVOKE_CAPS),
      'ns/cap',
      'derive (building the same tree)',
      perOpNs(bestBuild, REVOKE_CAPS),
      '≤ 100 ns per capability',
    ),
  ];
}

/**
 * Live idle domains, measured in a fresh child process (live-domains-child.ts): RSS after
 * spawning vs the same process before (kernel loaded, module compiled, no domain). Measuring in
 * this already-used process let earlier cases' garbage make the difference negative.
 */
function liveDomains(): ReturnType<typeof row>[] {
  const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
  const child = fileURLToPath(new URL('./live-domains-child.ts', import.meta.url));
  const out = execFileSync(process.execPath, ['--expose-gc', runTs, child, String(LIVE_DOMAINS)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
    domains: number;
    rssBeforeBytes: number;
    rssAfterBytes: number;
    ms: number;
    answers: boolean;
  };
  if (r.domains !== LIVE_DOMAINS || !r.answers) throw new Error(`live domains: ${out}`);
  return [
    row(
      `kernel: ${LIVE_DOMAINS} live idle domains, RSS per domain (fresh process)`,
      (r.rssAfterBytes - r.rssBeforeBytes) / LIVE_DOMAINS / 1024,
      'KiB',
      'empty process RSS (MiB)',
      r.rssBeforeBytes / 1024 / 1024,
      '≥ 10,000 domains',
    ),
    row(`kernel: ${LIVE_DOMAINS} live domains, spawn time`, r.ms, 'ms', 'domains', r.domains),
  ];
}

const cases: BenchCase[] = [
  { name: 'ipc-round-trip', run: ipcRoundTrip },
  { name: 'notification', run: notification },
  { name: 'spawn', run: spawn },
  { name: 'revoke-100k', run: revoke },
  { name: 'live-domains-10k', run: liveDomains },
];
export default cases;
