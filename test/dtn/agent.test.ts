import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/core/index.ts';
import {
  BlockFlags,
  type Bundle,
  BundleAgent,
  BundleFlags,
  ContactPlanRouter,
  CrcType,
  createBundle,
  type Delivery,
  decodeBundle,
  encodeBundle,
  FileBundleStore,
  fragmentBundle,
  InprocNetwork,
  ipn,
  parseContactPlan,
  payloadBlock,
  processUnknownBlocks,
  Reassembly,
  StaticRouter,
  type StatusReport,
} from '../../src/dtn/index.ts';

const MIN = 60_000;
const T0 = 1_800_000_000_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function pair(clock: VirtualClock, spec: Parameters<InprocNetwork['connect']>[2]) {
  const earth = new BundleAgent({ nodeId: ipn(1, 0), clock });
  const mars = new BundleAgent({ nodeId: ipn(2, 0), clock });
  const net = new InprocNetwork(clock);
  net.connect(earth, mars, spec);
  earth.start();
  mars.start();
  return { earth, mars, net };
}

describe('bundle agent over the in-process convergence layer', () => {
  it('Earth and Mars: minutes of light time and scheduled contacts run in virtual time', async () => {
    const clock = new VirtualClock(T0);
    // The topology generator's Mars link: 240 s OWLT, a 10-minute contact every 20 minutes.
    const windows = Array.from({ length: 12 }, (_, i) => ({
      startMs: T0 + i * 20 * MIN,
      endMs: T0 + i * 20 * MIN + 10 * MIN,
    }));
    const { earth, mars, net } = pair(clock, {
      owltMs: 240_000,
      rateBitsPerSec: 2_000_000,
      windows,
    });
    const got: { at: number; text: string }[] = [];
    mars.register(ipn(2, 1), (d) =>
      got.push({ at: clock.now() - T0, text: new TextDecoder().decode(d.payload) }),
    );
    earth.send({
      destination: ipn(2, 1),
      payload: new TextEncoder().encode('in-contact'),
      lifetimeMs: 3_600_000,
    });
    await clock.advance(11 * MIN);
    earth.send({
      destination: ipn(2, 1),
      payload: new TextEncoder().encode('between-contacts'),
      lifetimeMs: 3_600_000,
    });
    expect(net.stats.onWire).toBe(0);
    expect(earth.held).toBe(1);
    await clock.advance(2 * 60 * MIN);
    expect(got.map((g) => g.text)).toEqual(['in-contact', 'between-contacts']);
    // Light time: the first arrives 4 minutes after sending; the second waits for the next
    // contact (t = 20 min) and arrives 4 minutes after it.
    expect(got[0]?.at).toBeGreaterThanOrEqual(240_000);
    expect(got[0]?.at).toBeLessThan(241_000 + 1_000);
    expect(got[1]?.at).toBeGreaterThanOrEqual(24 * MIN);
    expect(got[1]?.at).toBeLessThan(25 * MIN);
    expect(earth.held).toBe(0);
    net.close();
    earth.stop();
    mars.stop();
  });

  it('expires bundles at the end of their lifetime and reports the deletion', async () => {
    const clock = new VirtualClock(T0);
    const windows = [{ startMs: T0 + 30 * MIN, endMs: T0 + 40 * MIN }];
    const { earth, mars } = pair(clock, { owltMs: 1_000, rateBitsPerSec: 1e6, windows });
    const reports: StatusReport[] = [];
    earth.onStatusReport((r) => reports.push(r));
    mars.register(ipn(2, 1), () => undefined);
    earth.send({
      destination: ipn(2, 1),
      payload: new Uint8Array(10),
      lifetimeMs: 5 * MIN,
      flags: BundleFlags.ReportDeletion,
    });
    await clock.advance(45 * MIN);
    expect(earth.stats.expired).toBe(1);
    expect(mars.stats.delivered).toBe(0);
    // The deletion report is addressed to Earth itself (report-to = source node) and delivered locally.
    expect(reports.map((r) => [r.kind, r.reason])).toEqual([['deleted', 1]]);
  });

  it('sends delivery status reports back to the source', async () => {
    const clock = new VirtualClock(T0);
    const { earth, mars } = pair(clock, { owltMs: 5_000, rateBitsPerSec: 1e6 });
    const reports: StatusReport[] = [];
    earth.onStatusReport((r) => reports.push(r));
    mars.register(ipn(2, 1), () => undefined);
    earth.send({
      destination: ipn(2, 1),
      payload: new Uint8Array(3),
      lifetimeMs: MIN,
      flags: BundleFlags.ReportDelivery | BundleFlags.StatusTimeRequested,
    });
    await clock.advance(20_000);
    expect(reports).toHaveLength(1);
    expect(reports[0]?.kind).toBe('delivered');
    expect(reports[0]?.timeMs).toBeGreaterThan(0);
  });

  it('enforces hop limits along a chain', async () => {
    const clock = new VirtualClock(T0);
    const agents = [1, 2, 3, 4].map(
      (n) =>
        new BundleAgent({
          nodeId: ipn(n, 0),
          clock,
          router: new StaticRouter(new Map(), `ipn:${n + 1}.0`),
        }),
    );
    const net = new InprocNetwork(clock);
    for (let i = 0; i < 3; i++)
      net.connectOneWay(agents[i] as BundleAgent, agents[i + 1] as BundleAgent, {
        owltMs: 10,
        rateBitsPerSec: 1e6,
      });
    for (const a of agents) a.start();
    const got: Delivery[] = [];
    agents[3]?.register(ipn(4, 1), (d) => got.push(d));
    agents[0]?.send({
      destination: ipn(4, 1),
      payload: new Uint8Array(1),
      lifetimeMs: MIN,
      hopLimit: 3,
    });
    agents[0]?.send({
      destination: ipn(4, 1),
      payload: new Uint8Array(2),
      lifetimeMs: MIN,
      hopLimit: 2,
    });
    await clock.advance(10_000);
    expect(got.map((d) => d.payload.length)).toEqual([1]);
    expect(agents.reduce((s, a) => s + a.stats.hopLimitExceeded, 0)).toBe(1);
  });

  it('fragments over a small-MTU link and reassembles at the destination', async () => {
    const clock = new VirtualClock(T0);
    const { earth, mars } = pair(clock, { owltMs: 100, rateBitsPerSec: 1e6, maxBundleBytes: 300 });
    const got: Delivery[] = [];
    mars.register(ipn(2, 1), (d) => got.push(d));
    const payload = new Uint8Array(2_000).map((_, i) => i & 0xff);
    earth.send({ destination: ipn(2, 1), payload, lifetimeMs: MIN });
    await clock.advance(5_000);
    expect(earth.stats.fragmented).toBeGreaterThan(6);
    expect(mars.stats.reassembled).toBe(1);
    expect(got).toHaveLength(1);
    expect(got[0]?.payload).toEqual(payload);
    expect(mars.held).toBe(0);
  });

  it('refuses malformed bundles without throwing, and drops duplicates', async () => {
    const clock = new VirtualClock(T0);
    const a = new BundleAgent({ nodeId: ipn(9, 0), clock });
    a.start();
    expect(a.receive(new Uint8Array([1, 2, 3]))).toEqual({
      ok: false,
      reason: 'bundle-not-indefinite-array',
    });
    const b = encodeBundle(
      createBundle({
        source: ipn(1, 1),
        destination: ipn(9, 1),
        payload: new Uint8Array(4),
        creationTime: 1e12,
        sequence: 1,
        lifetimeMs: 1e9,
      }),
    );
    expect(a.receive(b).ok).toBe(true);
    expect(a.receive(b).ok).toBe(true);
    expect(a.stats.duplicates).toBe(1);
    expect(a.held).toBe(1);
  });
});

describe('persistence', () => {
  it('bundles accepted before a restart are resumed and delivered after it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtn-store-'));
    dirs.push(dir);
    const clock = new VirtualClock(T0);
    const a1 = new BundleAgent({ nodeId: ipn(1, 0), clock, store: new FileBundleStore(dir) });
    a1.start();
    const ids = [0, 1, 2].map((i) =>
      a1.send({ destination: ipn(2, 1), payload: new Uint8Array([i]), lifetimeMs: 60 * MIN }),
    );
    a1.stop();
    const a2 = new BundleAgent({ nodeId: ipn(1, 0), clock, store: new FileBundleStore(dir) });
    a2.start();
    expect(a2.heldIds().sort()).toEqual([...ids].sort());
    const mars = new BundleAgent({ nodeId: ipn(2, 0), clock });
    mars.start();
    const got: number[] = [];
    mars.register(ipn(2, 1), (d) => got.push(d.payload[0] as number));
    new InprocNetwork(clock).connect(a2, mars, { owltMs: 10, rateBitsPerSec: 1e6 });
    await clock.advance(1_000);
    expect(got.sort()).toEqual([0, 1, 2]);
    expect(new FileBundleStore(dir).load()).toHaveLength(0);
  });
});

describe('fragmentation and unknown blocks', () => {
  it('fragments reassemble in any order into the original bundle', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 3000 }),
        fc.integer({ min: 1, max: 700 }),
        fc.nat(),
        (payload, size, seed) => {
          const b = createBundle({
            source: ipn(1, 1),
            destination: ipn(2, 1),
            payload,
            creationTime: 1e12,
            sequence: 3,
            lifetimeMs: 1000,
            crcType: CrcType.Crc16,
          });
          const frags = fragmentBundle(b, size).map((f) => decodeBundle(encodeBundle(f)));
          expect(frags.length).toBe(Math.ceil(payload.length / size));
          const order = frags
            .map((f, i) => ({ f, k: (i * 7919 + seed) % 1009 }))
            .sort((x, y) => x.k - y.k);
          const r = new Reassembly(payload.length);
          let whole: Bundle | undefined;
          for (const { f } of order) whole = r.add(f) ?? whole;
          expect(whole && payloadBlock(whole).data).toEqual(payload);
          expect(whole && encodeBundle(whole)).toEqual(encodeBundle(b));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('refuses to fragment must-not-fragment bundles', () => {
    const b = createBundle({
      source: ipn(1, 1),
      destination: ipn(2, 1),
      payload: new Uint8Array(100),
      creationTime: 1,
      sequence: 0,
      lifetimeMs: 1,
      flags: BundleFlags.MustNotFragment,
    });
    expect(() => fragmentBundle(b, 10)).toThrow(/must not be fragmented/);
  });

  it('keeps, discards or deletes for unknown blocks as their flags say (RFC 9171 §5.6)', () => {
    const base = createBundle({
      source: ipn(1, 1),
      destination: ipn(2, 1),
      payload: new Uint8Array(1),
      creationTime: 1,
      sequence: 0,
      lifetimeMs: 1,
    });
    const withUnknown = (flags: number): Bundle => ({
      primary: base.primary,
      blocks: [
        { type: 200, number: 9, flags, crcType: 0, data: new Uint8Array([0]) },
        ...base.blocks,
      ],
    });
    expect(processUnknownBlocks(withUnknown(0)).bundle.blocks).toHaveLength(base.blocks.length + 1);
    expect(
      processUnknownBlocks(withUnknown(BlockFlags.DiscardBlockIfUnprocessed)).bundle.blocks,
    ).toHaveLength(base.blocks.length);
    expect(
      processUnknownBlocks(withUnknown(BlockFlags.DeleteBundleIfUnprocessed)).deleteBundle,
    ).toBe(true);
    expect(processUnknownBlocks(withUnknown(BlockFlags.ReportIfUnprocessed)).report).toBe(true);
  });
});

describe('contact-graph routing in the agent', () => {
  it('forwards along the CGR route and waits at the relay for the next contact', async () => {
    const clock = new VirtualClock(T0);
    const contacts = [
      { contact: 1, source: 1, dest: 2, startTime: 0, endTime: 60, rateBitsPerSec: 1e6, owlt: 2 },
      {
        contact: 2,
        source: 2,
        dest: 3,
        startTime: 100,
        endTime: 200,
        rateBitsPerSec: 1e6,
        owlt: 5,
      },
      { contact: 3, source: 1, dest: 4, startTime: 0, endTime: 500, rateBitsPerSec: 1e6, owlt: 1 },
    ];
    const plan = parseContactPlan({ contacts });
    const agents = [1, 2, 3, 4].map(
      (n) =>
        new BundleAgent({ nodeId: ipn(n, 0), clock, router: new ContactPlanRouter(plan, n, T0) }),
    );
    const net = new InprocNetwork(clock);
    for (const c of contacts) {
      net.connectOneWay(agents[c.source - 1] as BundleAgent, agents[c.dest - 1] as BundleAgent, {
        owltMs: c.owlt * 1000,
        rateBitsPerSec: c.rateBitsPerSec,
        windows: [{ startMs: T0 + c.startTime * 1000, endMs: T0 + c.endTime * 1000 }],
      });
    }
    for (const a of agents) a.start();
    let at = -1;
    agents[2]?.register(ipn(3, 1), () => {
      at = clock.now() - T0;
    });
    agents[0]?.send({
      destination: ipn(3, 1),
      payload: new Uint8Array([7]),
      lifetimeMs: 3_600_000,
    });
    await clock.advance(50_000);
    // Node 1 handed it over to node 2 (the only route), never to the always-open node 4.
    expect(agents[1]?.held).toBe(1);
    expect(agents[3]?.stats.received).toBe(0);
    await clock.advance(200_000);
    expect(at).toBeGreaterThanOrEqual(105_000);
    expect(at).toBeLessThan(107_000);
  });
});
