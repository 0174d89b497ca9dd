/**
 * A real multi-process fabric: nats-servers for region, hub and two pods (pods are leaf nodes
 * of the hub, the hub of the region; each with its own JetStream domain), and `genesis node`
 * processes for the hub, the pods and five tiles. Leases are short so failure detection runs
 * in seconds. The steps share one fabric and run in order.
 */
/** The hub's grace for an unreachable pod (short, so the partition test sees it expire). */
const GRACE_MS = 3_000;

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTopology, type MembershipEvent } from '../../src/core/index.ts';
import {
  DESIRED_BUCKET,
  decodeJson,
  generateKeyPair,
  type Inventory,
  inventorySchema,
  JetStreamKeyValueStore,
  jetstreamDomain,
  MEMBERS_BUCKET,
  NatsTransport,
  type NodeProcess,
  type NodeProcessOptions,
  Subjects,
  WireSigner,
} from '../../src/fabric/index.ts';
import { waitFor } from '../support/transport-compliance.ts';
import { eventually, type FabricServers, startFabricServers, startNode } from './harness.ts';

const LEASE = { renewMs: 300, suspectMs: 700, deadMs: 1_500 };
const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy';
const HUB = 'eu1.h1';
const P1 = 'eu1.h1.p1';
const P2 = 'eu1.h1.p2';
const enc = new TextEncoder();

const topology = generateTopology({ regions: 1, hubs: 1, pods: 2, tiles: 3 });
let servers: FabricServers;
let client: NatsTransport;
const procs: NodeProcess[] = [];
const events: MembershipEvent[] = [];

function node(o: Omit<NodeProcessOptions, 'entry'>): NodeProcess {
  return startNode(procs, o);
}

async function ctl(verb: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await client.request(Subjects.control(HUB, verb), enc.encode(JSON.stringify(body)), {
    timeoutMs: 5_000,
  });
  return JSON.parse(new TextDecoder().decode(r.data)) as Record<string, unknown>;
}

async function workload(
  name = 'web',
): Promise<{ placed: number; running: number; pending: number }> {
  const items = (await ctl('get', { what: 'workloads' })).items as {
    name: string;
    placed: number;
    running: number;
    pending: number;
  }[];
  return items.find((w) => w.name === name) ?? { placed: 0, running: 0, pending: 0 };
}

async function inventory(t: NatsTransport, pod: string): Promise<Inventory> {
  const r = await t.request(Subjects.inventory(pod), new Uint8Array(0), { timeoutMs: 3_000 });
  const inv = decodeJson(r.data, inventorySchema);
  if (inv === undefined) throw new Error('bad inventory');
  return inv;
}

/** Every instance id with the tiles actually running it, across both pods. */
async function running(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const pod of [P1, P2]) {
    for (const m of (await inventory(client, pod)).members) {
      if (m.state === 'dead') continue;
      for (const id of m.instances) out.set(id, [...(out.get(id) ?? []), m.name]);
    }
  }
  return out;
}

beforeAll(async () => {
  // Both pods reach the hub through one relay (the WAN), which can partition one of them.
  servers = await startFabricServers(topology, { relayed: [HUB] });
  client = await NatsTransport.connect({ servers: servers.url(HUB), name: 'test' });
  client.subscribe('genesis.members.>', (m) => {
    events.push(JSON.parse(new TextDecoder().decode(m.data)) as MembershipEvent);
  });
  await client.flush();
  await node({
    role: 'hub',
    nats: servers.url(HUB),
    lease: LEASE,
    reconcileMs: 300,
    unreachableGraceMs: GRACE_MS,
  }).start();
  await Promise.all(
    [P1, P2].map((p) =>
      node({ role: 'pod', nats: servers.url(p), lease: LEASE, tilesMax: 3 }).start(),
    ),
  );
  // Three tiles on p1, two on p2; they get only their pod's URL.
  const tiles = [P1, P1, P1, P2, P2].map((p) =>
    node({ role: 'tile', nats: servers.url(p), cpuMillis: 1000, memoryMb: 1024 }),
  );
  for (let i = 0; i < tiles.length; i += 3)
    await Promise.all(tiles.slice(i, i + 3).map((t) => t.start()));
}, 120_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await client?.close();
  await servers?.stop();
});

describe('multi-process fabric over NATS (tile → pod → hub, leaf nodes, JetStream domains)', () => {
  it('tiles self-configure: pod-assigned names, membership in the pod domain KV, seen by the hub', async () => {
    const names = procs
      .filter((p) => p.options.role === 'tile')
      .map((p) => p.name)
      .sort();
    expect(names).toEqual([`${P1}.t01`, `${P1}.t02`, `${P1}.t03`, `${P2}.t01`, `${P2}.t02`]);
    // The membership lives in each pod's own JetStream domain, reachable from the hub server.
    const kv = await JetStreamKeyValueStore.open(client.connection, MEMBERS_BUCKET, {
      domain: jetstreamDomain(P1),
    });
    expect((await kv.entries()).map(([k]) => k).sort()).toEqual([
      `${P1}.t01`,
      `${P1}.t02`,
      `${P1}.t03`,
    ]);
    await eventually(
      async () => ((await ctl('get', { what: 'nodes' })).items as unknown[]).length === 5,
      10_000,
    );
    const nodes = (await ctl('get', { what: 'nodes' })).items as { name: string; state: string }[];
    expect(nodes.every((n) => n.state === 'alive')).toBe(true);
    expect(events.filter((e) => e.to === 'alive').length).toBeGreaterThanOrEqual(5);
  });

  it('applies a workload and runs every replica once', async () => {
    const spec = {
      name: 'web',
      module: CID,
      cpuMillis: 300,
      memoryMb: 128,
      replicas: 3,
      antiAffinity: [{ workload: 'web', scope: 'tile', required: true }],
    };
    expect((await ctl('apply', { specs: [spec] })).ok).toBe(true);
    await eventually(async () => (await workload()).running === 3, 15_000);
    const r = await running();
    expect([...r.values()].every((tiles) => tiles.length === 1)).toBe(true);
    expect(r.size).toBe(3);
  });

  it('kill -9 of a tile: declared dead within the lease window, its replica runs elsewhere', async () => {
    const r = await running();
    const [victimId, [victimName] = []] = [...r.entries()][0] ?? [];
    const victim = procs.find((p) => p.name === victimName);
    expect(victim).toBeDefined();
    const t0 = Date.now();
    await victim?.kill('SIGKILL');
    await eventually(
      async () => events.some((e) => e.child === victimName && e.to === 'dead'),
      10_000,
    );
    const deadAfterMs = Date.now() - t0;
    // Dead after the configured lease (1.5 s) plus probes and a tick; never before the lease.
    expect(deadAfterMs).toBeGreaterThanOrEqual(LEASE.deadMs - LEASE.renewMs);
    expect(deadAfterMs).toBeLessThan(LEASE.deadMs + 3_000);
    await eventually(async () => {
      const now = await running();
      return (
        (await workload()).running === 3 &&
        now.get(victimId as string)?.[0] !== victimName &&
        now.get(victimId as string)?.length === 1
      );
    }, 15_000);
  });

  it('kill and restart of the pod and hub servers: clients reconnect, no acknowledged state is lost', async () => {
    const before = (await inventory(client, P2)).members.map((m) => m.name).sort();
    await servers.restart(P2);
    await servers.restart(HUB);
    // The test client itself was on the hub server and reconnects too.
    await eventually(
      async () => (await inventory(client, P2)).members.length === before.length,
      20_000,
    );
    const kv = await JetStreamKeyValueStore.open(client.connection, MEMBERS_BUCKET, {
      domain: jetstreamDomain(P2),
    });
    expect((await kv.entries()).map(([k]) => k).sort()).toEqual(before);
    const desired = await JetStreamKeyValueStore.open(client.connection, DESIRED_BUCKET, {
      domain: jetstreamDomain(HUB),
    });
    expect((await desired.entries('w.')).map(([k]) => k)).toEqual(['w.web']);
    await eventually(async () => (await workload()).running === 3, 20_000);
    expect(client.connectionStats().reconnects).toBeGreaterThanOrEqual(1);
  });

  it('cutting a pod leaf link: the hub gives up on the pod after the grace, the pod keeps serving, rejoin converges', async () => {
    const relay = servers.relays.get(HUB);
    if (relay === undefined) throw new Error('no relay');
    const direct = await NatsTransport.connect({ servers: servers.url(P2) });
    const hubLeafs = async (): Promise<number> =>
      (await servers.monitor(HUB, 'varz')).leafnodes as number;
    const placements = async (name: string): Promise<string[]> =>
      Object.values(
        ((await ctl('explain', { name })).explanation as { placements: Record<string, string> })
          .placements,
      );
    const counters = async (): Promise<Record<string, number>> =>
      (await ctl('status', {})).status as Record<string, number>;
    try {
      // A workload that can only run on p2, so p2 surely holds a replica when it is cut.
      const edge = { name: 'edge', module: CID, cpuMillis: 100, memoryMb: 16, replicas: 1 };
      const pinned = { ...edge, constraints: { under: P2 } };
      expect((await ctl('apply', { specs: [pinned] })).ok).toBe(true);
      await eventually(async () => (await workload('edge')).running === 1, 15_000);
      expect(relay.active().sort()).toEqual([P1, P2]);
      const leafsBefore = await hubLeafs();
      const p2Before = (await inventory(direct, P2)).members.filter((m) => m.state === 'alive');
      const p2Instances = p2Before.flatMap((m) => m.instances).sort();
      expect(p2Instances.length).toBeGreaterThan(0);
      const before = await counters();
      // Phase times (reported, never asserted: the machine is shared and noisy).
      const t0 = Date.now();
      const at: Record<string, number> = {};
      relay.cut(P2);
      // The link must stay down for the whole cut: checked on every step below.
      const stillCut = async (): Promise<void> => {
        expect(relay.active()).not.toContain(P2);
        expect(await hubLeafs()).toBe(leafsBefore - 1);
      };
      // 1. The hub sees the pod unreachable (its requests to p2 go nowhere) while p1 stays.
      await eventually(async () => {
        const pods = (await ctl('get', { what: 'pods' })).items as {
          pod: string;
          reachable: boolean;
        }[];
        return pods.find((p) => p.pod === P2)?.reachable === false;
      }, 10_000);
      at.unreachableMs = Date.now() - t0;
      // Within the grace the controller keeps p2's placements (its tiles keep running them).
      const onP2 = async (): Promise<number> =>
        [...(await placements('web')), ...(await placements('edge'))].filter((tile) =>
          tile.startsWith(`${P2}.`),
        ).length;
      expect(await onP2()).toBe(p2Instances.length);
      await stillCut();
      await inventory(client, P1);
      // 2. After the grace the controller gives up on p2's placements: none points at a p2
      // tile any more and each of them was counted as rescheduled.
      await eventually(async () => (await onP2()) === 0, GRACE_MS + 10_000);
      at.placementsDroppedMs = Date.now() - t0;
      const during = await counters();
      expect((during.rescheduled ?? 0) - (before.rescheduled ?? 0)).toBeGreaterThanOrEqual(
        p2Instances.length,
      );
      await stillCut();
      // 3. Edge autonomy: cut off, p2 still answers locally, its tiles stay alive and keep
      // running what they ran (the hub could not stop them).
      const p2During = await inventory(direct, P2);
      const alive = p2During.members.filter((m) => m.state === 'alive');
      expect(alive.map((m) => m.name)).toEqual(p2Before.map((m) => m.name));
      expect(alive.flatMap((m) => m.instances).sort()).toEqual(p2Instances);
      // The pod kept dialling its uplink, and only through the relay (no bypass).
      await eventually(async () => (relay.refused.get(P2) ?? 0) >= 1, 5_000);
      await stillCut();
      // 4. Heal: the link returns through the relay, and the hierarchy converges with each
      // replica on exactly one tile (copies p2 kept running are stopped or re-adopted).
      const acceptedBefore = relay.accepted.get(P2) ?? 0;
      at.cutMs = Date.now() - t0;
      at.refusedDials = relay.refused.get(P2) ?? 0;
      relay.heal(P2);
      await eventually(async () => relay.active().includes(P2), 10_000);
      at.linkBackMs = Date.now() - t0 - at.cutMs;
      expect(relay.accepted.get(P2)).toBe(acceptedBefore + 1);
      await eventually(async () => {
        const r = await running();
        const w = await workload();
        return (
          w.running === 3 &&
          (await workload('edge')).running === 1 &&
          r.size === 4 &&
          [...r.values()].every((t) => t.length === 1)
        );
      }, 30_000);
      at.convergedMs = Date.now() - t0 - at.cutMs;
      process.stdout.write(`leaf cut (grace ${GRACE_MS} ms): ${JSON.stringify(at)}\n`);
      expect((await running()).get('edge.r0')?.[0]?.startsWith(`${P2}.`)).toBe(true);
      expect(await hubLeafs()).toBe(leafsBefore);
    } finally {
      relay.heal(P2);
      await direct.close();
    }
  });

  it('a silent partition (the WAN drops every byte): hub requests time out, the pod is marked unreachable, heal converges', async () => {
    const relay = servers.relays.get(HUB);
    if (relay === undefined) throw new Error('no relay');
    const direct = await NatsTransport.connect({ servers: servers.url(P2) });
    const p2Reachable = async (): Promise<boolean | undefined> => {
      const pods = (await ctl('get', { what: 'pods' })).items as {
        pod: string;
        reachable: boolean;
      }[];
      return pods.find((p) => p.pod === P2)?.reachable;
    };
    try {
      await eventually(async () => relay.active().includes(P2), 10_000);
      const p2Before = (await inventory(direct, P2)).members.filter((m) => m.state === 'alive');
      relay.cut(P2, { silent: true });
      // The servers still believe in the link (their pings need ~10 s to give up), so the
      // hub's inventory requests time out instead of finding no responders.
      await eventually(async () => (await p2Reachable()) === false, 15_000);
      await inventory(client, P1);
      const p2During = await inventory(direct, P2);
      expect(p2During.members.filter((m) => m.state === 'alive').map((m) => m.name)).toEqual(
        p2Before.map((m) => m.name),
      );
      relay.heal(P2);
      await eventually(async () => (await p2Reachable()) === true, 15_000);
      await eventually(async () => {
        const r = await running();
        return (
          (await workload()).running === 3 &&
          (await workload('edge')).running === 1 &&
          r.size === 4 &&
          [...r.values()].every((t) => t.length === 1)
        );
      }, 30_000);
    } finally {
      relay.heal(P2);
      await direct.close();
    }
  });

  it('hostile input on the real wire is rejected and counted by the pod', async () => {
    const p1 = await NatsTransport.connect({ servers: servers.url(P1) });
    try {
      const hb = Subjects.heartbeat(P1);
      let captured: Uint8Array | undefined;
      const sub = p1.subscribe(hb, (m) => {
        captured ??= m.data;
      });
      await waitFor(() => captured !== undefined, 5_000);
      sub.unsubscribe();
      const before = JSON.parse(
        new TextDecoder().decode((await p1.request(Subjects.status(P1), new Uint8Array(0))).data),
      ).wire as Record<string, number>;
      p1.publish(hb, captured as Uint8Array);
      p1.publish(hb, enc.encode('garbage'));
      p1.publish(hb, new Uint8Array(100_000));
      p1.publish(
        hb,
        new WireSigner(generateKeyPair(), { now: () => Date.now() } as never, `${P1}.t02`).seal(
          'hb',
          { instances: ['evil.r0'] },
        ),
      );
      p1.publish(
        hb,
        new WireSigner(generateKeyPair(), { now: () => Date.now() } as never, `${P1}.t77`).seal(
          'hb',
          { instances: [] },
        ),
      );
      await p1.flush();
      await eventually(async () => {
        const after = JSON.parse(
          new TextDecoder().decode((await p1.request(Subjects.status(P1), new Uint8Array(0))).data),
        ).wire as Record<string, number>;
        const d = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
        return (
          d('replayed') === 1 &&
          d('malformed') >= 1 &&
          d('oversized') === 1 &&
          d('impostor') === 1 &&
          d('unknownSender') === 1
        );
      }, 5_000);
      const inv = await inventory(p1, P1);
      expect(inv.members.flatMap((m) => m.instances)).not.toContain('evil.r0');
    } finally {
      await p1.close();
    }
  });
});
