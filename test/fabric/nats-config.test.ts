import { describe, expect, it } from 'vitest';
import { generateTopology, isGenesisError } from '../../src/core/index.ts';
import { FabricErrorCode, jetstreamDomain, planNatsServers } from '../../src/fabric/index.ts';

describe('nats-server configuration of a topology', () => {
  const t = generateTopology({ regions: 2, hubs: 1, pods: 2, tiles: 1 });
  const plans = planNatsServers(t, {
    storeRoot: '/var/lib/genesis/js',
    basePort: 20_000,
    leafPassword: 'secret-leaf-pw',
  });
  const by = new Map(plans.map((p) => [p.node, p]));

  it('runs one server per region, hub and pod (tiles are clients)', () => {
    expect(plans.map((p) => p.node).sort()).toEqual([
      'eu1',
      'eu1.h1',
      'eu1.h1.p1',
      'eu1.h1.p2',
      'us1',
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
    expect(new Set(plans.filter((p) => p.domain !== undefined).map((p) => p.domain)).size).toBe(6);
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
