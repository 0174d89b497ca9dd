import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTopology } from '../../src/core/index.ts';
import {
  decodeJson,
  hubRecordKey,
  hubRecordSchema,
  JetStreamKeyValueStore,
  NatsTransport,
  type NodeProcess,
  type NodeProcessOptions,
  REGION_BUCKET,
  regionStoreName,
  Subjects,
} from '../../src/fabric/index.ts';
import { eventually, type FabricServers, startFabricServers, startNode } from './harness.ts';

const LEASE = { renewMs: 300, suspectMs: 700, deadMs: 1_500 };
const H1 = 'eu1.h1';
const H2 = 'eu1.h2';
const enc = new TextEncoder();

const topology = generateTopology({ regions: 2, hubs: 2, pods: 1, tiles: 1 });
let servers: FabricServers;
let client: NatsTransport;
const procs: NodeProcess[] = [];

function node(o: Omit<NodeProcessOptions, 'entry'>): NodeProcess {
  return startNode(procs, o);
}

/** The hub records of a region's directory, read from wherever `t` is connected. */
async function directory(t: NatsTransport, region: string): Promise<Map<string, number>> {
  const kv = await JetStreamKeyValueStore.open(t.connection, REGION_BUCKET, { domain: region });
  const out = new Map<string, number>();
  for (const [k, v] of await kv.entries('hub.')) {
    const r = decodeJson(v, hubRecordSchema);
    if (r !== undefined && k === hubRecordKey(r.hub))
      out.set(
        r.hub,
        r.pods.reduce((n, p) => n + p.tiles, 0),
      );
  }
  return out;
}

beforeAll(async () => {
  // Region us1 runs its region server and store only (no hubs/pods: it is the far region).
  servers = await startFabricServers(topology, {
    only: (p) => !p.node.startsWith('us1.'),
  });
  client = await NatsTransport.connect({ servers: servers.url(H1), name: 'test' });
  await node({ role: 'region', nats: servers.url('eu1') }).start();
  await Promise.all(
    [H1, H2].map((h) =>
      node({ role: 'hub', nats: servers.url(h), lease: LEASE, reconcileMs: 300 }).start(),
    ),
  );
  await Promise.all(
    [`${H1}.p1`, `${H2}.p1`].map((p) =>
      node({ role: 'pod', nats: servers.url(p), lease: LEASE, tilesMax: 1 }).start(),
    ),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await client?.close();
  await servers?.stop();
});

describe('JetStream at regions (region stores beside gateway region servers)', () => {
  it('each region has a JetStream domain while gateways connect the regions', async () => {
    const gw = (await servers.monitor('eu1', 'gatewayz')) as {
      outbound_gateways?: Record<string, unknown>;
    };
    expect(Object.keys(gw.outbound_gateways ?? {})).toEqual(['us1']);
    // The gateway server itself runs no JetStream; its store does, with the region's domain.
    const regionVarz = await servers.monitor('eu1', 'varz');
    expect((regionVarz.jetstream as { config?: unknown } | undefined)?.config).toBeUndefined();
    for (const r of ['eu1', 'us1']) {
      const v = await servers.monitor(regionStoreName(r), 'varz');
      expect((v.jetstream as { config: { domain: string } }).config.domain).toBe(r);
    }
    // A client on a hub of eu1 reaches both regions' domains: eu1 over two leaf hops, us1
    // across the gateway as well.
    await eventually(async () => {
      const far = await JetStreamKeyValueStore.open(client.connection, 'genesis-test', {
        domain: 'us1',
      });
      await far.put('k', enc.encode('from eu1'));
      return true;
    }, 20_000);
    const direct = await NatsTransport.connect({ servers: servers.url(regionStoreName('us1')) });
    try {
      const local = await JetStreamKeyValueStore.open(direct.connection, 'genesis-test');
      expect(new TextDecoder().decode(await local.get('k'))).toBe('from eu1');
    } finally {
      await direct.close();
    }
  });

  it('hubs keep the region directory in the region domain; the region process lists them', async () => {
    await eventually(async () => {
      const d = await directory(client, 'eu1');
      return d.has(H1) && d.has(H2);
    }, 15_000);
    // The region process answers from its last listing of the directory (refreshed on pings).
    const listed = async (): Promise<string[]> => {
      const ping = await client.request(Subjects.ping('eu1'), new Uint8Array(0), {
        timeoutMs: 5_000,
      });
      return (JSON.parse(new TextDecoder().decode(ping.data)) as { hubs: string[] }).hubs.sort();
    };
    await eventually(async () => (await listed()).join() === [H1, H2].join(), 15_000);
    expect(await listed()).toEqual([H1, H2]);
  });

  it('a tile whose hub has no room is redirected through the region directory to a sibling hub', async () => {
    const first = node({ role: 'tile', nats: servers.url(`${H1}.p1`), cpuMillis: 1000 });
    await first.start();
    expect(first.name).toBe(`${H1}.p1.t01`);
    // h1's record shows its only pod full before the second tile dials the same pod.
    await eventually(async () => (await directory(client, 'eu1')).get(H1) === 1, 10_000);
    const second = node({ role: 'tile', nats: servers.url(`${H1}.p1`), cpuMillis: 1000 });
    await second.start();
    expect(second.name).toBe(`${H2}.p1.t01`);
    await eventually(async () => (await directory(client, 'eu1')).get(H2) === 1, 10_000);
  });

  it('the directory survives kill -9 of the region store and works with the other region gone', async () => {
    const before = [...(await directory(client, 'eu1')).keys()].sort();
    await servers.restart(regionStoreName('eu1'));
    await eventually(
      async () => [...(await directory(client, 'eu1')).keys()].sort().join() === before.join(),
      20_000,
    );
    // Region us1 disappears: eu1's domain is its own island, so writes and reads go on.
    await servers.servers.get('us1')?.kill('SIGKILL');
    await servers.servers.get(regionStoreName('us1'))?.kill('SIGKILL');
    const kv = await JetStreamKeyValueStore.open(client.connection, REGION_BUCKET, {
      domain: 'eu1',
    });
    await kv.put('probe', enc.encode('alone'));
    expect(new TextDecoder().decode(await kv.get('probe'))).toBe('alone');
    await kv.delete('probe');
    // The hubs keep publishing (their records keep changing).
    const raw = async () => new TextDecoder().decode(await kv.get(hubRecordKey(H1)));
    const r0 = await raw();
    // A JetStream call in flight when us1 vanished may take KV_API_TIMEOUT_MS to fail first.
    await eventually(async () => (await raw()) !== r0, 20_000);
  });
});
