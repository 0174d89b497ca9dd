import { describe, expect, it } from 'vitest';
import {
  InprocTransport,
  type MembershipEvent,
  SeededRng,
  silentLogger,
  type Transport,
  VirtualClock,
} from '../../src/core/index.ts';
import {
  Controller,
  generateKeyPair,
  HubAgent,
  MemoryKeyValueStore,
  PodAgent,
  parseWorkloadSpec,
  Subjects,
  TileAgent,
  WireSigner,
} from '../../src/fabric/index.ts';
import { during, runVirtual } from '../support/virtual-time.ts';

const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy';

function world(lease?: { renewMs: number; suspectMs: number; deadMs: number }) {
  const clock = new VirtualClock();
  const rng = new SeededRng(7);
  const logger = silentLogger();
  const transport = new InprocTransport({ clock });
  const events: MembershipEvent[] = [];
  const pods = ['eu1.h1.p1', 'eu1.h1.p2'].map(
    (name) =>
      new PodAgent({
        name,
        hub: 'eu1.h1',
        transport,
        clock,
        rng: rng.fork(),
        logger,
        keys: generateKeyPair(),
        store: new MemoryKeyValueStore(),
        tilesMax: 2,
        ...(lease === undefined ? {} : { lease }),
        onEvent: (e) => events.push(e),
      }),
  );
  const hub = new HubAgent({
    name: 'eu1.h1',
    transport,
    clock,
    logger,
    renewMs: pods[0]?.lease.renewMs ?? 10_000,
  });
  const tile = (pod = 'eu1.h1.p1', t: Transport = transport) =>
    new TileAgent({
      transport: t,
      pod,
      clock,
      rng: rng.fork(),
      logger,
      keys: generateKeyPair(),
      capacity: { cpuMillis: 1000, memoryMb: 1024 },
    });
  return { clock, rng, logger, transport, events, pods, hub, tile };
}

describe('self-configuration', () => {
  it('admits tiles with pod-assigned names and redirects a tile whose pod is full to a sibling', async () => {
    const w = world();
    w.hub.start();
    for (const p of w.pods) await p.start();
    await runVirtual(w.clock, 100);
    const tiles = [w.tile(), w.tile(), w.tile()];
    for (const t of tiles) await during(w.clock, t.start());
    expect(tiles.map((t) => t.name)).toEqual(['eu1.h1.p1.t01', 'eu1.h1.p1.t02', 'eu1.h1.p2.t01']);
    expect(tiles[2]?.podName).toBe('eu1.h1.p2');
    expect(w.pods[0]?.status().redirects).toBe(1);
    expect(w.events.filter((e) => e.to === 'alive').map((e) => e.child)).toEqual([
      'eu1.h1.p1.t01',
      'eu1.h1.p1.t02',
      'eu1.h1.p2.t01',
    ]);
    // The events went up to the hub through the outbox.
    expect(w.hub.status().eventsReceived).toBe(3);
  });

  it('never gives two tiles joining at the same time the same name', async () => {
    const w = world();
    w.hub.start();
    for (const p of w.pods) await p.start();
    await runVirtual(w.clock, 100);
    const tiles = [w.tile(), w.tile(), w.tile(), w.tile()];
    await during(w.clock, Promise.all(tiles.map((t) => t.start())));
    const names = tiles.map((t) => t.name);
    expect(new Set(names).size).toBe(4);
    expect(names.filter((n) => n?.startsWith('eu1.h1.p1.'))).toHaveLength(2);
  });

  it('goes to another pod through any hub when its own pod agent is gone', async () => {
    const w = world();
    w.hub.start();
    await w.pods[1]?.start();
    await runVirtual(w.clock, 100);
    const t = w.tile('eu1.h1.p1');
    await during(w.clock, t.start(), 20_000);
    expect(t.name).toBe('eu1.h1.p2.t01');
  });

  it('gives a rejoining tile (same key) its old name back', async () => {
    const w = world();
    await w.pods[0]?.start();
    const keys = generateKeyPair();
    const mk = () =>
      new TileAgent({
        transport: w.transport,
        pod: 'eu1.h1.p1',
        clock: w.clock,
        rng: w.rng.fork(),
        logger: w.logger,
        keys,
        capacity: { cpuMillis: 1, memoryMb: 1 },
      });
    const a = mk();
    await during(w.clock, a.start());
    await a.stop();
    await during(w.clock, w.tile().start());
    const b = mk();
    await during(w.clock, b.start());
    expect(b.name).toBe(a.name);
  });
});

describe('leases and failure detection (virtual time)', () => {
  it('uses Kubernetes-like defaults: suspect after 20 s, dead after 40 s of silence', async () => {
    const w = world();
    await w.pods[0]?.start();
    const [a, b] = [w.tile(), w.tile()];
    await during(w.clock, (a as TileAgent).start());
    await during(w.clock, (b as TileAgent).start());
    const t0 = w.clock.now();
    await (a as TileAgent).stop();
    await runVirtual(w.clock, 60_000, 500);
    const ev = (to: string) => w.events.find((e) => e.child === a?.name && e.to === to);
    const suspectAt = (ev('suspect')?.atMs ?? 0) - t0;
    const deadAt = (ev('dead')?.atMs ?? 0) - t0;
    expect(suspectAt).toBeGreaterThan(20_000);
    expect(suspectAt).toBeLessThanOrEqual(25_500);
    expect(deadAt).toBeGreaterThan(40_000);
    expect(deadAt).toBeLessThanOrEqual(46_000);
    // The healthy tile never left alive.
    expect(w.events.filter((e) => e.child === b?.name && e.to !== 'alive')).toEqual([]);
  });

  it('honours a configured short lease', async () => {
    const w = world({ renewMs: 200, suspectMs: 500, deadMs: 1_000 });
    await w.pods[0]?.start();
    const a = w.tile();
    await during(w.clock, a.start());
    const t0 = w.clock.now();
    await a.stop();
    await runVirtual(w.clock, 2_000, 50);
    const dead = w.events.find((e) => e.child === a.name && e.to === 'dead');
    expect((dead?.atMs ?? 0) - t0).toBeGreaterThan(1_000);
    expect((dead?.atMs ?? 0) - t0).toBeLessThanOrEqual(1_200);
  });

  it('SWIM: a tile whose lease renewals are lost but that answers probes is not declared dead', async () => {
    const w = world({ renewMs: 200, suspectMs: 500, deadMs: 1_000 });
    await w.pods[0]?.start();
    // A transport that silently loses this tile's heartbeats (a lossy path to the pod).
    const lossy: Transport = new Proxy(w.transport, {
      get(target, prop, recv) {
        if (prop === 'publish')
          return (s: string, d: Uint8Array, o?: object) =>
            s === Subjects.heartbeat('eu1.h1.p1') ? undefined : target.publish(s, d, o);
        const v = Reflect.get(target, prop, recv);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const helper = w.tile();
    await during(w.clock, helper.start());
    const flaky = w.tile('eu1.h1.p1', lossy);
    await during(w.clock, flaky.start());
    await runVirtual(w.clock, 5_000, 50);
    const states = w.events.filter((e) => e.child === flaky.name).map((e) => e.to);
    expect(states).toContain('suspect');
    expect(states).not.toContain('dead');
    expect(w.pods[0]?.status().probeRescues).toBeGreaterThan(0);
  });
});

describe('hostile input on the wire', () => {
  it('rejects and counts malformed, oversized, replayed and impostor messages', async () => {
    const w = world();
    await w.pods[0]?.start();
    const a = w.tile();
    await during(w.clock, a.start());
    const pod = w.pods[0] as PodAgent;
    const hb = Subjects.heartbeat('eu1.h1.p1');
    // Capture a genuine renewal to replay it.
    let captured: Uint8Array | undefined;
    w.transport.subscribe(hb, (m) => {
      captured ??= m.data;
    });
    await runVirtual(w.clock, 10_100, 500);
    expect(captured).toBeDefined();
    w.transport.publish(hb, captured as Uint8Array);
    w.transport.publish(hb, new TextEncoder().encode('{"not":"signed"}'));
    w.transport.publish(hb, new Uint8Array(200_000));
    // An impostor claims the admitted tile's name with its own key.
    const impostor = new WireSigner(generateKeyPair(), w.clock, a.name);
    w.transport.publish(hb, impostor.seal('hb', { instances: ['evil.r0'] }));
    // A node claims a name it was never given.
    const stranger = new WireSigner(generateKeyPair(), w.clock, 'eu1.h1.p1.t09');
    w.transport.publish(hb, stranger.seal('hb', { instances: [] }));
    // A join with a tampered body (signature no longer matches).
    const joiner = new WireSigner(generateKeyPair(), w.clock);
    const sealed = joiner.seal('join', { capacity: { cpuMillis: 1, memoryMb: 1 }, labels: {} });
    sealed[sealed.length - 3] = (sealed[sealed.length - 3] as number) ^ 1;
    w.transport.publish(Subjects.join('eu1.h1.p1'), sealed);
    await runVirtual(w.clock, 200, 50);
    const s = pod.wireStats();
    expect(s.replayed).toBe(1);
    expect(s.malformed).toBeGreaterThanOrEqual(1);
    expect(s.oversized).toBe(1);
    expect(s.impostor).toBe(1);
    expect(s.unknownSender).toBe(1);
    expect((s.badSignature ?? 0) + (s.malformed ?? 0)).toBeGreaterThanOrEqual(2);
    // None of it changed membership: the impostor's instance list was not recorded.
    expect(pod.memberRecords().map((m) => m.name)).toEqual([a.name]);
    expect(pod.memberRecords()[0]?.instances).not.toContain('evil.r0');
  });
});

describe('controller (virtual time)', () => {
  it('places replicas, and reschedules them when a tile dies', async () => {
    const w = world({ renewMs: 200, suspectMs: 500, deadMs: 1_000 });
    w.hub.start();
    for (const p of w.pods) await p.start();
    const tiles = [w.tile(), w.tile(), w.tile('eu1.h1.p2'), w.tile('eu1.h1.p2')];
    for (const t of tiles) await during(w.clock, t.start());
    const ctl = new Controller({
      name: 'eu1.h1',
      transport: w.transport,
      clock: w.clock,
      logger: w.logger,
      store: new MemoryKeyValueStore(),
      pods: () => w.hub.knownPods().map((p) => p.pod),
      reconcileMs: 200,
    });
    await ctl.start();
    await during(
      w.clock,
      ctl.apply([
        parseWorkloadSpec({
          name: 'web',
          module: CID,
          cpuMillis: 400,
          memoryMb: 100,
          replicas: 4,
          antiAffinity: [{ workload: 'web', scope: 'tile', required: true }],
        }),
      ]),
    );
    await runVirtual(w.clock, 2_000, 50);
    expect(ctl.workloadSummaries()).toEqual([
      { name: 'web', replicas: 4, placed: 4, running: 4, pending: 0, priority: 0 },
    ]);
    const victim = tiles[1] as TileAgent;
    expect(victim.instances().length).toBe(1);
    await victim.stop();
    await runVirtual(w.clock, 3_000, 50);
    // Four tiles, one dead, anti-affinity per tile: one replica must stay pending, none duplicated.
    const s = ctl.workloadSummaries()[0];
    expect(s).toMatchObject({ placed: 3, running: 3, pending: 1 });
    expect(ctl.explain('web').pending).toHaveLength(1);
    // A fifth tile arrives: the pending replica lands there.
    const fresh = w.tile('eu1.h1.p1');
    await during(w.clock, fresh.start());
    await runVirtual(w.clock, 2_000, 50);
    expect(ctl.workloadSummaries()[0]).toMatchObject({ placed: 4, running: 4, pending: 0 });
    expect(fresh.instances()).toHaveLength(1);
    // Draining the fresh tile moves its replica off it (here: nowhere else fits, so pending).
    await during(w.clock, ctl.drain(fresh.name as string, true));
    await runVirtual(w.clock, 2_000, 50);
    expect(fresh.instances()).toHaveLength(0);
    expect(ctl.workloadSummaries()[0]).toMatchObject({ placed: 3, pending: 1 });
    expect(ctl.explain('web').rejectedBy['unschedulable']).toBeGreaterThanOrEqual(2);
    await during(w.clock, ctl.drain(fresh.name as string, false));
    await runVirtual(w.clock, 2_000, 50);
    expect(ctl.workloadSummaries()[0]).toMatchObject({ placed: 4, running: 4 });
    await ctl.stop();
  });
});
