/**
 * Fabric benchmarks: the NATS transport against raw nats.js (request/reply latency and publish
 * throughput, both measured in the same run against the same local nats-server), scheduler
 * placements per second on 10,000 tiles and 100,000 constrained workloads, and the time from a
 * tile's death to its replicas running elsewhere, with the configured lease.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import {
  InprocTransport,
  SeededRng,
  SystemClock,
  silentLogger,
  VirtualClock,
} from '../../src/core/index.ts';
import {
  Controller,
  freePort,
  generateKeyPair,
  HubAgent,
  type LeaseConfig,
  MemoryKeyValueStore,
  NatsServerProcess,
  NatsTransport,
  PodAgent,
  parseWorkloadSpec,
  Scheduler,
  TileAgent,
} from '../../src/fabric/index.ts';
import { type BenchCase, type BenchRow, row } from '../harness.ts';

const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy';
const REQUESTS_PER_ROUND = 2_000;
const ROUNDS = 3;
const PUBLISH_COUNT = 200_000;

async function withServer<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'genesis-bench-nats-'));
  const port = await freePort();
  const conf = join(dir, 'server.conf');
  writeFileSync(conf, `listen: "127.0.0.1:${port}"\n`);
  const s = new NatsServerProcess('bench', conf);
  await s.start();
  try {
    return await fn(`nats://127.0.0.1:${port}`);
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function requestReply(): Promise<BenchRow[]> {
  return withServer(async (url) => {
    const rawA = await connect({ servers: url });
    const rawB = await connect({ servers: url });
    rawB.subscribe('bench.raw', {
      callback: (_e, m) => {
        m.respond(m.data);
      },
    });
    await rawB.flush();
    const ta = await NatsTransport.connect({ servers: url });
    const tb = await NatsTransport.connect({ servers: url });
    tb.subscribe('bench.t', (m) => {
      m.respond(m.data);
    });
    await tb.flush();
    const payload = new Uint8Array(64);
    const raw: number[] = [];
    const tr: number[] = [];
    // Interleaved rounds so machine noise hits both sides alike.
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < REQUESTS_PER_ROUND; i++) {
        const t0 = performance.now();
        await rawA.request('bench.raw', payload, { timeout: 2_000 });
        raw.push(performance.now() - t0);
      }
      for (let i = 0; i < REQUESTS_PER_ROUND; i++) {
        const t0 = performance.now();
        await ta.request('bench.t', payload, { timeoutMs: 2_000 });
        tr.push(performance.now() - t0);
      }
    }
    await rawA.close();
    await rawB.close();
    await ta.close();
    await tb.close();
    raw.sort((a, b) => a - b);
    tr.sort((a, b) => a - b);
    return [
      row(
        'fabric: request/reply p50 (NatsTransport)',
        percentile(tr, 50) * 1000,
        'µs',
        'raw nats.js p50',
        percentile(raw, 50) * 1000,
        'ratio ≤ 1.2',
      ),
      row(
        'fabric: request/reply p99 (NatsTransport)',
        percentile(tr, 99) * 1000,
        'µs',
        'raw nats.js p99',
        percentile(raw, 99) * 1000,
        'ratio ≤ 1.2',
      ),
    ];
  });
}

async function publishThroughput(): Promise<BenchRow[]> {
  return withServer(async (url) => {
    const payload = new Uint8Array(128);
    let rawBest = 0;
    let trBest = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const raw = await connect({ servers: url });
      let t0 = performance.now();
      for (let i = 0; i < PUBLISH_COUNT; i++) raw.publish('bench.pub', payload);
      await raw.flush();
      rawBest = Math.max(rawBest, PUBLISH_COUNT / ((performance.now() - t0) / 1000));
      await raw.close();
      const t = await NatsTransport.connect({ servers: url });
      t0 = performance.now();
      for (let i = 0; i < PUBLISH_COUNT; i++) t.publish('bench.pub', payload);
      await t.flush();
      trBest = Math.max(trBest, PUBLISH_COUNT / ((performance.now() - t0) / 1000));
      await t.close();
    }
    return [
      row(
        'fabric: publish 128 B (NatsTransport)',
        trBest,
        'msg/s',
        'raw nats.js publish',
        rawBest,
        'ratio ≥ 0.8',
      ),
    ];
  });
}

function schedulerPlacements(): BenchRow[] {
  const s = new Scheduler();
  // 10 hubs x 50 pods x 20 tiles = 10,000 tiles, 4 zones of labels.
  for (let h = 0; h < 10; h++)
    for (let p = 0; p < 50; p++)
      for (let t = 0; t < 20; t++) {
        s.upsertTile({
          name: `eu1.h${h}.p${p}.t${t}`,
          pod: `eu1.h${h}.p${p}`,
          hub: `eu1.h${h}`,
          cpuMillis: 64_000,
          memoryMb: 65_536,
          labels: { zone: `z${t % 4}` },
          capabilities: ['wasm.run'],
        });
      }
  // 100 workload shapes: label constraints, anti-affinity, spread over hubs, both strategies.
  const specs = Array.from({ length: 100 }, (_, i) =>
    parseWorkloadSpec({
      name: `w${i}`,
      module: CID,
      capabilities: ['wasm.run'],
      cpuMillis: 100 + (i % 5) * 50,
      memoryMb: 64,
      priority: i % 3,
      constraints: { labels: i % 3 === 0 ? { zone: `z${i % 4}` } : {} },
      strategy: i % 2 === 1 ? 'spread' : 'binpack',
      antiAffinity: i % 7 === 0 ? [{ workload: `w${i}`, scope: 'tile', required: true }] : [],
      ...(i % 10 === 0 ? { spread: { over: 'hub' } } : {}),
    }),
  );
  const total = 100_000;
  const t0 = performance.now();
  let placed = 0;
  for (let i = 0; i < total; i++)
    if (s.place(`w${i % 100}.r${i}`, specs[i % 100] as (typeof specs)[number]) !== undefined)
      placed++;
  const perSec = total / ((performance.now() - t0) / 1000);
  if (placed !== total) throw new Error(`only ${placed} of ${total} placed`);
  return [
    row(
      'fabric: scheduler placements, 10k tiles, 100k workloads',
      perSec,
      'placements/s',
      'target',
      5_000,
      '≥ 5,000/s',
    ),
  ];
}

/** Pod, hub, controller and tiles in one process; returns ms from kill to replicas restored. */
async function detectAndReschedule(virtual: boolean, lease: Partial<LeaseConfig>): Promise<number> {
  const clock = virtual ? new VirtualClock() : new SystemClock();
  const rng = new SeededRng(1);
  const logger = silentLogger();
  const transport = new InprocTransport({ clock });
  const step = async (ms: number): Promise<void> => {
    if (clock instanceof VirtualClock) {
      await clock.advance(ms);
      for (let i = 0; i < 6; i++) await new Promise((r) => setImmediate(r));
    } else await new Promise((r) => setTimeout(r, ms));
  };
  const settle = async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    void p.finally(() => {
      done = true;
    });
    while (!done) await step(20);
    return p;
  };
  const pod = new PodAgent({
    name: 'eu1.h1.p1',
    hub: 'eu1.h1',
    transport,
    clock,
    rng: rng.fork(),
    logger,
    keys: generateKeyPair(),
    store: new MemoryKeyValueStore(),
    lease,
    tilesMax: 8,
  });
  const hub = new HubAgent({
    name: 'eu1.h1',
    transport,
    clock,
    logger,
    renewMs: pod.lease.renewMs,
  });
  let controller: Controller | undefined;
  const hubWithKick = new HubAgent({
    name: 'eu1.h1',
    transport,
    clock,
    logger,
    renewMs: pod.lease.renewMs,
    onEvents: () => controller?.kick(),
  });
  hubWithKick.start();
  hub.stop();
  await pod.start();
  const tiles = Array.from(
    { length: 4 },
    () =>
      new TileAgent({
        transport,
        pod: 'eu1.h1.p1',
        clock,
        rng: rng.fork(),
        logger,
        keys: generateKeyPair(),
        capacity: { cpuMillis: 1000, memoryMb: 1024 },
      }),
  );
  for (const t of tiles) await settle(t.start());
  controller = new Controller({
    name: 'eu1.h1',
    transport,
    clock,
    logger,
    store: new MemoryKeyValueStore(),
    pods: () => ['eu1.h1.p1'],
    reconcileMs: Math.max(100, Math.floor(pod.lease.renewMs / 2)),
  });
  await controller.start();
  await settle(
    controller.apply([
      parseWorkloadSpec({
        name: 'app',
        module: CID,
        cpuMillis: 200,
        memoryMb: 64,
        replicas: 3,
        antiAffinity: [{ workload: 'app', scope: 'tile', required: true }],
      }),
    ]),
  );
  while ((controller.workloadSummaries()[0]?.running ?? 0) < 3) await step(50);
  const victim = tiles.find((t) => t.instances().length > 0) as TileAgent;
  const t0 = clock.now();
  await victim.stop();
  // Restored: 3 replicas placed and running, none on the victim.
  for (;;) {
    await step(virtual ? 100 : 20);
    const s = controller.workloadSummaries()[0];
    if (
      s?.running === 3 &&
      !Object.values(Object.fromEntries(controller.desiredPlacements())).includes(
        victim.name as string,
      )
    )
      break;
    if (clock.now() - t0 > 10 * (pod.lease.deadMs + 1)) throw new Error('not restored');
  }
  const elapsed = clock.now() - t0;
  await controller.stop();
  for (const t of tiles) await t.stop();
  await pod.stop();
  hubWithKick.stop();
  return elapsed;
}

const cases: BenchCase[] = [
  { name: 'nats-request-reply', run: requestReply },
  { name: 'nats-publish', run: publishThroughput },
  { name: 'scheduler-placements', run: schedulerPlacements },
  {
    name: 'dead-tile-reschedule',
    async run() {
      const virt = await detectAndReschedule(true, {});
      const real = await detectAndReschedule(false, { renewMs: 200, suspectMs: 400, deadMs: 800 });
      return [
        row(
          'fabric: dead tile → replicas restored (lease 10 s/40 s, virtual time)',
          virt,
          'ms',
          'configured dead-after',
          40_000,
          'report',
        ),
        row(
          'fabric: dead tile → replicas restored (lease 200 ms/800 ms, real time)',
          real,
          'ms',
          'configured dead-after',
          800,
          'report',
        ),
      ];
    },
  },
];

export default cases;
