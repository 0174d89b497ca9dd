import { describe, expect, it } from 'vitest';
import {
  EmbeddedFabric,
  generateTopology,
  type MembershipEvent,
  type NodeService,
  SeededRng,
  VirtualClock,
} from '../../src/core/index.ts';

function fabric(heartbeatIntervalMs = 10_000) {
  const clock = new VirtualClock(0);
  const f = new EmbeddedFabric({
    topology: generateTopology({ regions: 1, hubs: 1, pods: 2, tiles: 3 }),
    clock,
    rng: new SeededRng(1),
    heartbeatIntervalMs,
  });
  return { clock, f };
}

describe('node runtime and embedded fabric', () => {
  it('starts every node, counts heartbeats, and marks all children alive', async () => {
    const { clock, f } = fabric();
    const events: MembershipEvent[] = [];
    f.onMembership((e) => events.push(e));
    await f.start();
    await clock.advance(30_000);
    const s = f.stats();
    expect(s.nodesUp).toEqual({ global: 1, region: 1, hub: 1, pod: 2, tile: 6 });
    expect(s.heartbeatsReceived).toBe(s.heartbeatsSent);
    expect(s.heartbeatsSent).toBeGreaterThanOrEqual(10 * 3);
    expect(events.filter((e) => e.to === 'alive')).toHaveLength(10);
    await f.stop();
  });

  it('declares a silent child suspect then dead within the lease, in virtual time', async () => {
    const { clock, f } = fabric();
    const events: MembershipEvent[] = [];
    f.onMembership((e) => events.push(e));
    await f.start();
    await clock.advance(20_000);
    await f.nodes.get('eu1.h1.p1.t02')?.stop();
    await clock.advance(60_000);
    const mine = events.filter((e) => e.child === 'eu1.h1.p1.t02').map((e) => e.to);
    expect(mine).toEqual(['alive', 'suspect', 'dead']);
    const dead = events.find((e) => e.child === 'eu1.h1.p1.t02' && e.to === 'dead');
    // Dead after 4 missed 10 s periods: between 40 s and 50 s after its last beat.
    expect(dead!.atMs).toBeGreaterThan(20_000 + 30_000);
    expect(dead!.atMs).toBeLessThanOrEqual(20_000 + 50_000);
    expect(f.stats().dead).toBe(1);
    // Restarting brings it back.
    await f.nodes.get('eu1.h1.p1.t02')?.start();
    await clock.advance(1);
    expect(events.at(-1)).toMatchObject({ child: 'eu1.h1.p1.t02', to: 'alive' });
    await f.stop();
  });

  it('rejects heartbeats from names it never admitted and malformed beats', async () => {
    const { clock, f } = fabric();
    await f.start();
    f.transport.publish('genesis.hb.eu1.h1.p1.t99', new Uint8Array(12));
    f.transport.publish('genesis.hb.eu1.h1.p1.t01', new Uint8Array(3));
    await clock.advance(1);
    expect(f.nodes.get('eu1.h1.p1')?.status().heartbeatsRejected).toBe(2);
    await f.stop();
  });

  it('starts services in order, stops them in reverse, and rolls back a failed start', async () => {
    const { f } = fabric();
    const log: string[] = [];
    const svc = (name: string, fail = false): NodeService => ({
      name,
      start: (ctx) => {
        if (fail) throw new Error(`${name} failed on ${ctx.name}`);
        log.push(`start ${name} ${ctx.name}`);
      },
      stop: () => {
        log.push(`stop ${name}`);
      },
    });
    f.nodes.get('global')?.attach(svc('a'));
    f.nodes.get('eu1.h1.p2.t03')?.attach(svc('b')).attach(svc('c', true));
    await expect(f.start()).rejects.toThrow(/c failed on eu1.h1.p2.t03/);
    expect(log).toEqual(['start a global', 'start b eu1.h1.p2.t03', 'stop b', 'stop a']);
    expect(Object.values(f.stats().nodesUp).reduce((x, y) => x + y, 0)).toBe(0);
  });

  it('start and stop are idempotent', async () => {
    const { f } = fabric();
    await f.start();
    await f.start();
    await f.stop();
    await f.stop();
    expect(f.stats().nodesUp.tile).toBe(0);
  });
});
