import { describe, expect, it } from 'vitest';
import { generateTopology, isGenesisError } from '../../src/core/index.ts';
import {
  FabricErrorCode,
  jetstreamDomain,
  planNatsServers,
  regionStoreName,
} from '../../src/fabric/index.ts';

describe('nats-server configuration of a topology', () => {
  const t = generateTopology({ regions: 2, hubs: 1, pods: 2, tiles: 1 });
  const plans = planNatsServers(t, {
    storeRoot: '/var/lib/genesis/js',
    basePort: 20_000,
    leafPassword: 'secret-leaf-pw',
  });
  const by = new Map(plans.map((p) => [p.node, p]));

  it('runs one server per region, hub and pod (tiles are clients), plus a store per region', () => {
    expect(plans.map((p) => p.node).sort()).toEqual([
      'eu1',
      'eu1-js',
      'eu1.h1',
      'eu1.h1.p1',
      'eu1.h1.p2',
      'us1',
      'us1-js',
      'us1.h1',
      'us1.h1.p1',
      'us1.h1.p2',
    ]);
    expect(new Set(plans.map((p) => p.ports.client)).size).toBe(plans.length);
  });

  it('makes each child a leaf node of its parent, dialling the parent leafnode port', () => {
    const pod = by.get('eu1.h1.p1');
    const hub = by.get('eu1.h1');
    const region = by.get('eu1');
    expect(pod?.parent).toBe('eu1.h1');
    expect(pod?.config).toContain(`nats-leaf://leaf:secret-leaf-pw@127.0.0.1:${hub?.ports.leaf}`);
    expect(hub?.config).toContain(
      `nats-leaf://leaf:secret-leaf-pw@127.0.0.1:${region?.ports.leaf}`,
    );
    expect(pod?.ports.leaf).toBeUndefined();
    expect(pod?.config).not.toContain('listen: "127.0.0.1:undefined"');
  });

  it('joins regions through gateways listing every other region, without JetStream', () => {
    const eu = by.get('eu1');
    const us = by.get('us1');
    expect(eu?.config).toContain(`{ name: "us1", url: "nats://127.0.0.1:${us?.ports.gateway}" }`);
    expect(eu?.config).not.toContain('{ name: "eu1"');
    expect(eu?.config).not.toContain('jetstream {');
    expect(eu?.domain).toBeUndefined();
    expect(eu?.config).toContain('system_account: SYS');
  });

  it('gives every hub and pod its own JetStream domain and store dir', () => {
    expect(by.get('eu1.h1.p2')?.domain).toBe('eu1-h1-p2');
    expect(jetstreamDomain('us1.h1')).toBe('us1-h1');
    expect(by.get('us1.h1')?.config).toContain('domain: "us1-h1"');
    expect(by.get('us1.h1')?.config).toContain('store_dir: "/var/lib/genesis/js/us1.h1"');
    expect(new Set(plans.filter((p) => p.domain !== undefined).map((p) => p.domain)).size).toBe(8);
  });

  it('gives each gateway region a JetStream store: a leaf of the region with the region domain', () => {
    const region = by.get('eu1');
    const store = by.get(regionStoreName('eu1'));
    expect(store?.level).toBe('store');
    expect(store?.parent).toBe('eu1');
    expect(store?.domain).toBe('eu1');
    expect(store?.config).toContain('domain: "eu1"');
    expect(store?.config).toContain('server_name: "eu1-js"');
    expect(store?.config).toContain(
      `nats-leaf://leaf:secret-leaf-pw@127.0.0.1:${region?.ports.leaf}`,
    );
    expect(store?.config).not.toContain('gateway {');
    expect(store?.ports.leaf).toBeUndefined();
    // Stores come after every region/hub/pod, so their port blocks stay where they were.
    expect(plans.slice(-2).map((p) => p.level)).toEqual(['store', 'store']);
    const without = planNatsServers(t, {
      storeRoot: '/x',
      basePort: 20_000,
      regionStores: false,
    });
    expect(without.map((p) => p.level)).not.toContain('store');
    expect(without).toHaveLength(8);
    for (const p of without) expect(by.get(p.node)?.ports).toEqual(p.ports);
  });

  it('runs JetStream on a DTN-only region server itself (no gateway, no store)', () => {
    const ip = generateTopology({ regions: 1, hubs: 1, pods: 1, tiles: 1, interplanetary: true });
    const mars = planNatsServers(ip, { storeRoot: '/x' }).filter((p) => p.node.startsWith('mars'));
    const region = mars.find((p) => p.node === 'mars');
    expect(region?.domain).toBe('mars');
    expect(region?.config).toContain('domain: "mars"');
    expect(region?.config).not.toContain('gateway {');
    expect(mars.map((p) => p.level)).not.toContain('store');
  });

  it('runs JetStream on a region server given no gateway port (a region on its own)', () => {
    const one = generateTopology({ regions: 1, hubs: 1, pods: 1, tiles: 1 });
    const ports = new Map([
      ['eu1', { client: 30_000, leaf: 30_001, gateway: undefined, http: undefined }],
    ]);
    const plans = planNatsServers(one, { storeRoot: '/x', basePort: 20_000, ports });
    const region = plans.find((p) => p.node === 'eu1');
    expect(region?.domain).toBe('eu1');
    expect(region?.config).toContain('domain: "eu1"');
    expect(region?.config).not.toContain('gateway {');
    expect(plans.map((p) => p.level)).not.toContain('store');
  });

  it('makes each parent advertise exactly the address its children dial', () => {
    const hub = by.get('eu1.h1');
    // Default: children dial the listen address, and that is what is advertised.
    expect(hub?.config).toContain(`advertise: "127.0.0.1:${hub?.ports.leaf}"`);
    // Every child behind one relay/NAT: the parent advertises the relay.
    const relayed = new Map([
      ['eu1.h1.p1', 'wan.example:7422'],
      ['eu1.h1.p2', 'wan.example:7422'],
    ]);
    const viaRelay = planNatsServers(t, {
      storeRoot: '/x',
      basePort: 20_000,
      leafRemoteOverrides: relayed,
    });
    const hubViaRelay = viaRelay.find((p) => p.node === 'eu1.h1');
    expect(hubViaRelay?.config).toContain('advertise: "wan.example:7422"');
    expect(viaRelay.find((p) => p.node === 'eu1.h1.p2')?.config).toContain('@wan.example:7422"');
    // Children on different paths: the listen address, unless told otherwise.
    const mixed = planNatsServers(t, {
      storeRoot: '/x',
      basePort: 20_000,
      leafRemoteOverrides: new Map([['eu1.h1.p2', 'wan.example:7422']]),
    });
    expect(mixed.find((p) => p.node === 'eu1.h1')?.config).toContain(
      `advertise: "127.0.0.1:${hub?.ports.leaf}"`,
    );
    // Listening on every interface: no wildcard advertised (the server then offers its IPs).
    const wild = planNatsServers(t, { storeRoot: '/x', basePort: 20_000, host: '0.0.0.0' });
    expect(wild.find((p) => p.node === 'eu1.h1')?.config).not.toContain('advertise: "');
    const told = planNatsServers(t, {
      storeRoot: '/x',
      basePort: 20_000,
      leafAdvertise: new Map([['eu1.h1', 'hub.example:7422']]),
    });
    expect(told.find((p) => p.node === 'eu1.h1')?.config).toContain(
      'advertise: "hub.example:7422"',
    );
  });

  it('rejects a base port without room and weak leaf passwords', () => {
    for (const bad of [{ basePort: 65_000 }, { leafPassword: 'x' }]) {
      try {
        planNatsServers(t, { storeRoot: '/x', ...bad });
        expect.unreachable();
      } catch (e) {
        expect(isGenesisError(e, FabricErrorCode.ConfigInvalid)).toBe(true);
      }
    }
  });
});
