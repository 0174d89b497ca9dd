/**
 * The region directory in virtual time: hubs publish their pods into the region's KV bucket
 * and redirect a tile to a sibling hub's pod when none of their own has room; stale, malformed
 * and unavailable directories are handled.
 */
import { describe, expect, it } from 'vitest';
import { InprocTransport, SeededRng, silentLogger, VirtualClock } from '../../src/core/index.ts';
import {
  generateKeyPair,
  HubAgent,
  hubRecordKey,
  type KeyValueStore,
  MemoryKeyValueStore,
  PodAgent,
  REGION_RECORD_FRESH_PERIODS,
  REGION_TICK_TIMEOUT_MS,
  RegionDirectory,
  TileAgent,
} from '../../src/fabric/index.ts';
import { during, runVirtual } from '../support/virtual-time.ts';

const LEASE = { renewMs: 1_000, suspectMs: 2_000, deadMs: 4_000 };

/** Region eu1 with hubs h1 (one pod, room for 1 tile) and h2 (one pod, room for 2). */
function region(open?: () => Promise<KeyValueStore>) {
  const clock = new VirtualClock();
  const rng = new SeededRng(11);
  const logger = silentLogger();
  const transport = new InprocTransport({ clock });
  const regionKv = new MemoryKeyValueStore();
  const hubs = ['eu1.h1', 'eu1.h2'].map((name) => {
    const directory = new RegionDirectory({
      hub: name,
      open: open ?? (async () => regionKv),
      clock,
      logger,
      periodMs: LEASE.renewMs,
    });
    return {
      directory,
      agent: new HubAgent({
        name,
        transport,
        clock,
        logger,
        renewMs: LEASE.renewMs,
        region: directory,
      }),
    };
  });
  const pods = [
    { name: 'eu1.h1.p1', tilesMax: 1 },
    { name: 'eu1.h2.p1', tilesMax: 2 },
  ].map(
    (p) =>
      new PodAgent({
        name: p.name,
        hub: p.name.slice(0, p.name.lastIndexOf('.')),
        transport,
        clock,
        rng: rng.fork(),
        logger,
        keys: generateKeyPair(),
        store: new MemoryKeyValueStore(),
        tilesMax: p.tilesMax,
        lease: LEASE,
        advertiseUrl: `nats://${p.name}:4222`,
      }),
  );
  const tile = () =>
    new TileAgent({
      transport,
      pod: 'eu1.h1.p1',
      clock,
      rng: rng.fork(),
      logger,
      keys: generateKeyPair(),
      capacity: { cpuMillis: 1000, memoryMb: 1024 },
    });
  const start = async (): Promise<void> => {
    for (const h of hubs) h.agent.start();
    for (const p of pods) await p.start();
    // Pods announce themselves, hubs publish them to the region and read their siblings.
    await runVirtual(clock, 3 * LEASE.renewMs);
  };
  return { clock, transport, regionKv, hubs, pods, tile, start };
}

describe('region directory (JetStream KV in the region domain)', () => {
  it('every hub publishes its pods and reads its siblings', async () => {
    const r = region();
    await r.start();
    expect((await r.regionKv.entries('hub.')).map(([k]) => k).sort()).toEqual([
      hubRecordKey('eu1.h1'),
      hubRecordKey('eu1.h2'),
    ]);
    const seen = r.hubs[0]?.directory.hubs() ?? [];
    expect(seen.map((h) => [h.record.hub, h.fresh, h.record.pods.map((p) => p.pod)])).toEqual([
      ['eu1.h1', true, ['eu1.h1.p1']],
      ['eu1.h2', true, ['eu1.h2.p1']],
    ]);
    expect(r.hubs[0]?.agent.status().regionConnected).toBe(1);
  });

  it('redirects a tile to a sibling hub when no pod of its own hub has room', async () => {
    const r = region();
    await r.start();
    const first = r.tile();
    await during(r.clock, first.start(), 20_000);
    expect(first.podName).toBe('eu1.h1.p1');
    // Let h1 publish the pod as full before the second tile comes.
    await runVirtual(r.clock, 2 * LEASE.renewMs);
    const second = r.tile();
    await during(r.clock, second.start(), 20_000);
    expect(second.podName).toBe('eu1.h2.p1');
    expect(second.name).toBe('eu1.h2.p1.t01');
    expect(r.hubs[0]?.agent.status().regionRedirects).toBe(1);
  });

  it('ignores a sibling whose record stopped changing (hub gone) and malformed records', async () => {
    const r = region();
    await r.start();
    await during(r.clock, r.tile().start(), 20_000);
    r.hubs[1]?.agent.stop();
    await r.regionKv.put(hubRecordKey('eu1.h9'), new TextEncoder().encode('{"hub":"eu1.h9"}'));
    await r.regionKv.put(hubRecordKey('eu1.h8'), new TextEncoder().encode('not json'));
    await runVirtual(r.clock, (REGION_RECORD_FRESH_PERIODS + 2) * LEASE.renewMs);
    const d = r.hubs[0]?.directory;
    expect(d?.hubs().find((h) => h.record.hub === 'eu1.h2')?.fresh).toBe(false);
    expect(d?.siblingPod(new Set())).toBeUndefined();
    expect(d?.counters.malformed).toBeGreaterThanOrEqual(2);
    expect(d?.hubs().map((h) => h.record.hub)).not.toContain('eu1.h9');
    const t = r.tile();
    await expect(during(r.clock, t.start(), 60_000)).rejects.toThrow(/no pod admitted/);
  });

  it('keeps redirecting within the hub while the region store is unreachable, then connects', async () => {
    let up = false;
    const kv = new MemoryKeyValueStore();
    const r = region(async () => {
      if (!up) throw new Error('no responders');
      return kv;
    });
    await r.start();
    expect(r.hubs[0]?.agent.status().regionConnected).toBe(0);
    expect(r.hubs[0]?.directory.counters.failures).toBeGreaterThanOrEqual(2);
    await during(r.clock, r.tile().start(), 20_000);
    up = true;
    await runVirtual(r.clock, 2 * LEASE.renewMs);
    expect(r.hubs[0]?.agent.status().regionConnected).toBe(1);
    expect((await kv.entries('hub.')).length).toBe(2);
  });
});

describe('region directory ticks are bounded', () => {
  it('a JetStream call that never answers ends the tick as a failure, and the next tick reopens the bucket', async () => {
    const clock = new VirtualClock(0);
    let opens = 0;
    const hung: KeyValueStore = {
      kind: 'memory',
      get: () => new Promise(() => undefined),
      put: () => new Promise(() => undefined),
      delete: () => new Promise(() => undefined),
      entries: () => new Promise(() => undefined),
    };
    const dir = new RegionDirectory({
      hub: 'eu1.h1',
      open: async () => {
        opens++;
        return hung;
      },
      clock,
      logger: silentLogger(),
      periodMs: 1_000,
    });
    let done = false;
    const tick = dir.tick([]).then(() => {
      done = true;
    });
    await runVirtual(clock, REGION_TICK_TIMEOUT_MS - 100, 100);
    expect(done).toBe(false);
    await runVirtual(clock, 200, 100);
    await tick;
    expect(done).toBe(true);
    expect(dir.counters.failures).toBe(1);
    expect(dir.connected).toBe(false);
    void dir.tick([]);
    await runVirtual(clock, 100, 100);
    expect(opens).toBe(2);
  });
});
