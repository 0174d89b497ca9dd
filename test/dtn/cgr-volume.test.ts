/**
 * Contact volume in contact-graph routing: a route must have the volume to carry the bundle,
 * and the local node books queued bundles against their first contact (ION's CGR), so a burst
 * larger than a contact spills onto another route instead of being promised one that cannot
 * carry it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/core/index.ts';
import {
  BundleAgent,
  type Contact,
  ContactPlanRouter,
  cgrDijkstra,
  contactVolumeFromBits,
  InprocNetwork,
  ipn,
  parseContactPlan,
} from '../../src/dtn/index.ts';

const T0 = 1_800_000_000_000;

/** 1→2→3 early but small (1→2 carries 80,000 bits); 1→4→3 later and large. */
const PLAN = parseContactPlan({
  contacts: [
    { contact: 1, source: 1, dest: 2, startTime: 0, endTime: 10, rateBitsPerSec: 8_000, owlt: 1 },
    { contact: 2, source: 2, dest: 3, startTime: 0, endTime: 1000, rateBitsPerSec: 1e6, owlt: 1 },
    { contact: 3, source: 1, dest: 4, startTime: 50, endTime: 1000, rateBitsPerSec: 1e6, owlt: 1 },
    { contact: 4, source: 4, dest: 3, startTime: 50, endTime: 1000, rateBitsPerSec: 1e6, owlt: 1 },
  ],
});
const small = PLAN.contacts[0] as Contact;

describe('CGR contact volume', () => {
  it('a route too small for the bundle is not taken', () => {
    expect(cgrDijkstra(PLAN, 1, 3, 0)?.nextHop).toBe(2);
    expect(cgrDijkstra(PLAN, 1, 3, 0, { bundleBits: 80_000 })?.nextHop).toBe(2);
    expect(cgrDijkstra(PLAN, 1, 3, 0, { bundleBits: 80_001 })?.nextHop).toBe(4);
    // Half-way through the contact only half of its volume is left.
    expect(contactVolumeFromBits(small, 5)).toBe(40_000);
    expect(cgrDijkstra(PLAN, 1, 3, 5, { bundleBits: 40_001 })?.nextHop).toBe(4);
  });

  it('queued bundles book the first contact; the overflow spills to the other route', () => {
    const r = new ContactPlanRouter(PLAN, 1, T0);
    const b = (id: string) => ({ id, bytes: 4_000 }); // 32,000 bits
    expect(r.nextHop('ipn:3.0', T0, b('a'))).toBe('ipn:2.0');
    expect(r.nextHop('ipn:3.0', T0, b('b'))).toBe('ipn:2.0');
    expect(r.bookedBits(small)).toBe(64_000);
    expect(r.nextHop('ipn:3.0', T0, b('c'))).toBe('ipn:4.0');
    // Re-routing a bundle replaces its booking rather than adding to it.
    expect(r.nextHop('ipn:3.0', T0, b('b'))).toBe('ipn:2.0');
    expect(r.bookedBits(small)).toBe(64_000);
    // Once 'a' leaves the node its volume is free again.
    r.release('a');
    expect(r.bookedBits(small)).toBe(32_000);
    expect(r.nextHop('ipn:3.0', T0, b('d'))).toBe('ipn:2.0');
    // A bundle handed to the link keeps its volume: the contact carried it.
    r.sent('b');
    r.release('b');
    expect(r.bookedBits(small)).toBe(64_000);
    r.release('c');
    r.release('d');
    expect(r.bookingCount).toBe(0);
    expect(r.bookedBits(small)).toBe(32_000);
  });

  it('bookings never exceed a contact’s volume, whatever the burst', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 12_000 }), { maxLength: 40 }), (sizes) => {
        const r = new ContactPlanRouter(PLAN, 1, T0);
        sizes.forEach((bytes, i) => {
          r.nextHop('ipn:3.0', T0, { id: String(i), bytes });
        });
        expect(r.bookedBits(small)).toBeLessThanOrEqual(contactVolumeFromBits(small, 0));
      }),
    );
  });

  it('agents: a burst bigger than the early contact arrives partly over the later route', async () => {
    const clock = new VirtualClock(T0);
    const agents = [1, 2, 3, 4].map(
      (n) =>
        new BundleAgent({ nodeId: ipn(n, 0), clock, router: new ContactPlanRouter(PLAN, n, T0) }),
    );
    const net = new InprocNetwork(clock);
    for (const c of PLAN.contacts) {
      net.connectOneWay(agents[c.source - 1] as BundleAgent, agents[c.dest - 1] as BundleAgent, {
        owltMs: c.owltSec * 1000,
        rateBitsPerSec: c.rateBitsPerSec,
        windows: [{ startMs: T0 + c.startSec * 1000, endMs: T0 + c.endSec * 1000 }],
      });
    }
    for (const a of agents) a.start();
    let delivered = 0;
    agents[2]?.register(ipn(3, 1), () => {
      delivered++;
    });
    for (let i = 0; i < 4; i++)
      agents[0]?.send({
        destination: ipn(3, 1),
        payload: new Uint8Array(3_000),
        lifetimeMs: 3_600_000,
      });
    await clock.advance(400_000);
    expect(delivered).toBe(4);
    // 4 × ~3 KB = ~96,000 bits > 80,000: at least one went through node 4.
    expect(agents[3]?.stats.received).toBeGreaterThan(0);
    expect(agents[1]?.stats.received).toBeGreaterThan(0);
    for (const a of agents) a.stop();
  });
});
