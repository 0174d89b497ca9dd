import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRng, VirtualClock } from '../../src/core/index.ts';
import {
  BundleAgent,
  buildContactPlan,
  type ContactPlan,
  ContactPlanError,
  cgrDijkstra,
  cgrYen,
  createBundle,
  dtnTimeOf,
  EpidemicRouter,
  encodeBundle,
  ipn,
  OpportunisticCarrier,
  parseContactPlan,
  SprayAndWaitRouter,
} from '../../src/dtn/index.ts';
import { loadVector } from './vectors.ts';

interface CgrCase {
  name: string;
  plan: string;
  planIncluded: boolean;
  source: number;
  dest: number;
  startTime: number;
  expectedRouteValid: boolean;
  expectedNextHop: number | null;
  expectedContactCountInPlan?: number;
  expectedContacts?: { planIndex: number }[];
  derivedEarliestArrivalTime?: number;
  derivedContacts?: { planIndex: number }[];
}

const expected = loadVector<{ cases: CgrCase[] }>('cgr/expected.json');
const plans = new Map<string, ContactPlan>();
const planOf = (name: string): ContactPlan => {
  let p = plans.get(name);
  if (p === undefined) {
    p = parseContactPlan(loadVector(`cgr/${name}`));
    plans.set(name, p);
  }
  return p;
};

describe('CGR against HDTN (../shared/vectors/cgr/expected.json)', () => {
  const present = expected.cases.filter((c) => c.planIncluded);
  it('covers every case whose plan is present', () => {
    expect(present.length).toBe(7);
  });
  for (const c of present) {
    it(c.name, () => {
      const plan = planOf(c.plan);
      if (c.expectedContactCountInPlan !== undefined)
        expect(plan.contacts.length).toBe(c.expectedContactCountInPlan);
      const route = cgrDijkstra(plan, c.source, c.dest, c.startTime);
      if (!c.expectedRouteValid) {
        expect(route).toBeUndefined();
        return;
      }
      expect(route?.nextHop).toBe(c.expectedNextHop);
      const contacts = c.expectedContacts?.length ? c.expectedContacts : c.derivedContacts;
      if (contacts !== undefined && contacts.length > 0)
        expect(route?.contacts.map((x) => x.index)).toEqual(contacts.map((x) => x.planIndex));
      if (c.derivedEarliestArrivalTime !== undefined)
        expect(route?.arrivalSec).toBe(c.derivedEarliestArrivalTime);
    });
  }
});

/** Brute-force earliest arrival by exhaustive path search over small plans. */
function bruteArrival(plan: ContactPlan, from: number, to: number, t0: number): number | undefined {
  let best: number | undefined;
  const walk = (node: number, t: number, visited: Set<number>, depth: number): void => {
    if (node === to) {
      if (best === undefined || t < best) best = t;
      return;
    }
    if (depth > 8) return;
    for (const c of plan.bySource.get(node) ?? []) {
      if (c.endSec <= t || visited.has(c.dest)) continue;
      visited.add(c.dest);
      walk(c.dest, Math.max(c.startSec, t) + c.owltSec, visited, depth + 1);
      visited.delete(c.dest);
    }
  };
  walk(from, t0, new Set([from]), 0);
  return best;
}

describe('CGR properties', () => {
  const planArb = fc
    .array(
      fc.record({
        source: fc.integer({ min: 1, max: 6 }),
        dest: fc.integer({ min: 1, max: 6 }),
        start: fc.nat({ max: 100 }),
        len: fc.integer({ min: 1, max: 60 }),
        owlt: fc.integer({ min: 0, max: 5 }),
      }),
      { maxLength: 25 },
    )
    .map((cs) =>
      buildContactPlan(
        cs
          .filter((c) => c.source !== c.dest)
          .map((c, i) => ({
            id: i,
            source: c.source,
            dest: c.dest,
            startSec: c.start,
            endSec: c.start + c.len,
            rateBitsPerSec: 1000,
            owltSec: c.owlt,
          })),
      ),
    );

  it('Dijkstra finds the earliest arrival that exhaustive search finds', () => {
    fc.assert(
      fc.property(
        planArb,
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.nat({ max: 50 }),
        (plan, from, to, t0) => {
          fc.pre(from !== to);
          const r = cgrDijkstra(plan, from, to, t0);
          expect(r?.arrivalSec).toBe(bruteArrival(plan, from, to, t0));
          if (r !== undefined) {
            expect(r.contacts[0]?.source).toBe(from);
            expect(r.contacts.at(-1)?.dest).toBe(to);
            for (let i = 1; i < r.contacts.length; i++)
              expect(r.contacts[i]?.source).toBe(r.contacts[i - 1]?.dest);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('Yen returns distinct loop-free routes in non-decreasing arrival order, the first being Dijkstra', () => {
    fc.assert(
      fc.property(
        planArb,
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        (plan, from, to) => {
          fc.pre(from !== to);
          const routes = cgrYen(plan, from, to, 0, 4);
          const d = cgrDijkstra(plan, from, to, 0);
          expect(routes[0]?.arrivalSec).toBe(d?.arrivalSec);
          const keys = routes.map((r) => r.contacts.map((c) => c.index).join(','));
          expect(new Set(keys).size).toBe(keys.length);
          for (let i = 1; i < routes.length; i++)
            expect((routes[i]?.arrivalSec ?? 0) >= (routes[i - 1]?.arrivalSec ?? 0)).toBe(true);
          for (const r of routes) {
            const nodes = [from, ...r.contacts.map((c) => c.dest)];
            expect(new Set(nodes).size).toBe(nodes.length);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('Yen finds the second route of the tutorial plan', () => {
    const routes = cgrYen(planOf('cgrTutorial.json'), 1, 5, 0, 3);
    expect(routes.length).toBeGreaterThanOrEqual(2);
    expect(routes[0]?.nextHop).toBe(3);
  });

  it('rejects malformed plans with a typed error naming the field', () => {
    expect(() => parseContactPlan('{')).toThrow(ContactPlanError);
    expect(() => parseContactPlan({ contacts: [{ contact: 1, source: 1 }] })).toThrow(
      /contacts\.0\./,
    );
    expect(() =>
      parseContactPlan({
        contacts: [
          {
            contact: 1,
            source: 1,
            dest: 2,
            startTime: -10,
            endTime: 5,
            rateBitsPerSec: 1,
            owlt: 1,
          },
        ],
      }),
    ).toThrow(ContactPlanError);
  });
});

describe('opportunistic routing', () => {
  function simulate(
    make: () => EpidemicRouter | SprayAndWaitRouter,
    nodes: number,
    encounters: number,
    seed: number,
  ) {
    const rng = new SeededRng(seed);
    const routers = Array.from({ length: nodes }, make);
    routers[0]?.hold({ id: 'b1', destination: `n${nodes - 1}` });
    let transmissions = 0;
    let deliveredAt = -1;
    for (let e = 0; e < encounters && deliveredAt < 0; e++) {
      const a = rng.int(0, nodes - 1);
      let b = rng.int(0, nodes - 1);
      if (a === b) b = (b + 1) % nodes;
      const ra = routers[a] as EpidemicRouter | SprayAndWaitRouter;
      const rb = routers[b] as EpidemicRouter | SprayAndWaitRouter;
      for (const h of ra.encounter(`n${b}`, rb.summary())) {
        transmissions++;
        rb.hold({ id: h.id, destination: `n${nodes - 1}` }, h.copies);
        if (b === nodes - 1) deliveredAt = e;
      }
    }
    return { routers, transmissions, deliveredAt };
  }

  it('epidemic routing delivers and copies to every node it meets', () => {
    const { deliveredAt } = simulate(() => new EpidemicRouter(), 12, 2000, 7);
    expect(deliveredAt).toBeGreaterThanOrEqual(0);
  });

  it('spray-and-wait never has more than L copies in the network and still delivers', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const { routers, deliveredAt } = simulate(() => new SprayAndWaitRouter(4), 12, 5000, seed);
      const holders = routers.filter((r) => r.summary().has('b1')).length;
      expect(holders).toBeLessThanOrEqual(4 + 1);
      const copies = routers.reduce((s, r) => s + (r as SprayAndWaitRouter).copiesOf('b1'), 0);
      expect(copies).toBeLessThanOrEqual(4 + 1);
      expect(deliveredAt).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('opportunistic carriers with real bundles', () => {
  function run(make: () => EpidemicRouter | SprayAndWaitRouter, seed: number) {
    const clock = new VirtualClock(1_800_000_000_000);
    const rng = new SeededRng(seed);
    const dest = new BundleAgent({ nodeId: ipn(9, 0), clock });
    dest.start();
    const got: string[] = [];
    dest.register(ipn(9, 1), (d) => got.push(new TextDecoder().decode(d.payload)));
    const nodes = Array.from(
      { length: 10 },
      (_, i) => new OpportunisticCarrier(`ipn:${i}.0`, make(), (b) => dest.receive(b)),
    );
    const bundle = encodeBundle(
      createBundle({
        source: ipn(0, 1),
        destination: ipn(9, 1),
        payload: new TextEncoder().encode('via data mules'),
        creationTime: dtnTimeOf(clock.now()),
        sequence: 1,
        lifetimeMs: 3_600_000,
      }),
    );
    nodes[0]?.carry('b1', 'ipn:9.0', bundle);
    for (let e = 0; e < 3000 && got.length === 0; e++) {
      const a = rng.int(0, 9);
      const b = (a + rng.int(1, 9)) % 10;
      nodes[a]?.meet(nodes[b] as OpportunisticCarrier);
    }
    return { got, transmissions: nodes.reduce((s, n) => s + n.transmissions, 0) };
  }

  it('delivers a real bundle to the destination agent exactly once, spray-and-wait with fewer copies', () => {
    for (const seed of [11, 12, 13]) {
      const epi = run(() => new EpidemicRouter(), seed);
      const saw = run(() => new SprayAndWaitRouter(3), seed);
      expect(epi.got).toEqual(['via data mules']);
      expect(saw.got).toEqual(['via data mules']);
      expect(saw.transmissions).toBeLessThanOrEqual(3 + 1);
    }
  });
});
