/**
 * Hostile input to hierarchical secure aggregation: tiles that answer their pod with garbage,
 * impersonate another tile, answer with a message of the wrong round or replay an old session's
 * message; and requests to a tile of another session, out of turn, ill-shaped or replayed. Each
 * is rejected with a typed SECAGG_* error and counted, and the honest tiles' round completes.
 */
import { decode, encode } from '@ipld/dag-cbor';
import { describe, expect, it } from 'vitest';
import {
  createMetricsRegistry,
  InprocTransport,
  type NodeContext,
  SeededRng,
  silentLogger,
  VirtualClock,
} from '../../src/core/index.ts';
import {
  POD_SIGNATURE_HEADER,
  POD_SIGNATURE_INVALID,
  podSigningKey,
  TileSecureSessions,
} from '../../src/learn/hier/secure.ts';
import type { SecureFitHeader } from '../../src/learn/hier/wire.ts';
import {
  decodeSecAggMessage,
  encodeSecAggMessage,
  quantizationLevelsFor,
  SecAggClient,
  SecAggErrorCode,
  SecAggServer,
  type SecAggServerMessage,
} from '../../src/learn/index.ts';
import { D, startRig, type TileFault, type TileScript, weightedMean } from './hier-harness.ts';

describe('a pod rejects hostile tile replies', () => {
  it('garbage, impersonation, wrong round and stale session are typed, counted, and left out', async () => {
    const scripts = Array.from({ length: 12 }, (_, i) => ({
      delta: 0.02 * (i - 5),
      weight: i + 1,
    }));
    let round = 1;
    let stale: Uint8Array | undefined;
    let staleAdvertise: Uint8Array | undefined;
    const faults: Record<number, TileFault> = {
      // Garbage instead of its round-0 message.
      0: (kind, reply) => (kind === 'advertise' ? new Uint8Array([0xff, 0x00, 0x13]) : reply),
      // Claims to be tile id 5.
      1: (kind, reply) => {
        if (kind !== 'advertise') return reply;
        const raw = decode(reply) as Record<string, unknown>;
        return encode({ ...raw, from: 5 });
      },
      // Answers the share request with its advertise again (a message of another round).
      2: (kind, reply) => {
        if (kind === 'advertise') staleAdvertise = reply;
        return kind === 'share' ? staleAdvertise : reply;
      },
      // Round 2: replays its round-1 advertise (another session).
      3: (kind, reply) => {
        if (kind !== 'advertise') return reply;
        if (round === 1) stale = reply;
        return round === 1 ? reply : stale;
      },
    };
    const rig = await startRig({
      pods: 1,
      tilesPerPod: 12,
      script: (i) => scripts[i] as TileScript,
      fault: (i) => faults[i],
    });
    try {
      const r1 = await rig.round();
      expect(r1?.failure).toBeUndefined();
      expect(r1?.participants).toBe(9);
      round = 2;
      const before = Float32Array.from(rig.coordinator.params);
      const r2 = await rig.round();
      expect(r2?.failure).toBeUndefined();
      expect(r2?.participants).toBe(8);
      expect(r2?.rejected).toBe(4);
      const honest = scripts.slice(4);
      const expected = weightedMean(honest);
      for (let i = 0; i < before.length; i++)
        expect((rig.coordinator.params[i] as number) - (before[i] as number)).toBeCloseTo(
          expected,
          4,
        );
      const pod = [...rig.pods.values()][0];
      expect(Object.fromEntries(pod?.secureRejectedByCode ?? [])).toEqual({
        [SecAggErrorCode.Malformed]: 2,
        [SecAggErrorCode.UnknownClient]: 2,
        [SecAggErrorCode.Replay]: 3,
      });
      expect(pod?.status().secureRejected).toBe(7);
    } finally {
      await rig.stop();
    }
  }, 30_000);
});

function tileContext(): NodeContext {
  const clock = new VirtualClock();
  const logger = silentLogger();
  return {
    name: 'eu1.h1.p1.t01',
    level: 'tile',
    parent: 'eu1.h1.p1',
    children: [],
    region: 'eu1',
    labels: {},
    clock,
    rng: new SeededRng(3),
    logger,
    transport: new InprocTransport({ clock, logger }),
    metrics: createMetricsRegistry(),
    dataDir: undefined,
  };
}

const SESSION = '00112233445566778899aabbccddeeff';
const podKey = podSigningKey();
const header: SecureFitHeader = {
  session: SESSION,
  id: 1,
  mode: 'full',
  n: 3,
  t: 2,
  k: 2,
  vectorLength: D + 2,
  levels: quantizationLevelsFor(3),
  clipRange: 8,
  maxWeight: 8,
  sessionMs: 1_000,
  podKey: podKey.publicX,
};

describe('a tile rejects hostile requests', () => {
  it('refuses weak or ill-formed session parameters before training', () => {
    const tile = new TileSecureSessions(tileContext());
    expect(tile.admit({ ...header, t: 1 }, D)).toBeUndefined(); // 2t ≤ k: no honest majority
    expect(tile.admit({ ...header, vectorLength: D + 5 }, D)).toBeUndefined();
    expect(tile.admit({ ...header, n: 2, k: 1, t: 1 }, D)).toBeUndefined();
    expect(tile.admit({ ...header, session: 'zz' }, D)).toBeUndefined();
    expect(tile.admit({ ...header, levels: 2 ** 31 }, D)).toBeUndefined(); // sum could wrap
    expect(tile.admit({ ...header, podKey: 'not a key' }, D)).toBeUndefined();
    expect(Object.fromEntries(tile.rejectedByCode)).toEqual({
      [SecAggErrorCode.BadConfig]: 2,
      [SecAggErrorCode.Malformed]: 3,
      [SecAggErrorCode.QuantizationOverflow]: 1,
    });
    expect(tile.opened).toBe(0);
  });

  it('rejects unsigned, other-session, misaddressed, out-of-turn, ill-shaped and replayed requests', () => {
    const ctx = tileContext();
    const tile = new TileSecureSessions(ctx);
    const config = tile.admit(header, D);
    expect(config).toBeDefined();
    if (config === undefined) return;
    const adv = tile.start(
      header,
      config,
      { delta: new Float32Array(D).fill(0.1), loss: 0.3, weight: 4 },
      undefined,
    );
    expect(adv).toBeDefined();
    // The tile cannot open the same session twice (a replayed fit request).
    expect(tile.admit(header, D)).toBeUndefined();
    // The rest of the session: a real server and two real peers.
    const rng = new SeededRng(9);
    const server = new SecAggServer({ config, rng });
    const peers = [2, 3].map((id) => new SecAggClient({ id, config, rng }));
    server.receive(decodeSecAggMessage(adv as Uint8Array, config));
    for (const p of peers) server.receive(p.advertise());
    const rosters = server.closeAdvertise();
    const share = rosters.get(1) as SecAggServerMessage;
    const enc = (m: object): Uint8Array => encodeSecAggMessage(m as SecAggServerMessage);
    // What the pod sends: the request and its signature under the session's pod key.
    const handle = (m: object, key = podKey): Uint8Array | undefined => {
      const data = enc(m);
      return tile.handle(data, { [POD_SIGNATURE_HEADER]: key.sign(data) });
    };
    const other = { ...share, session: new Uint8Array(16).fill(7) };
    expect(tile.handle(new Uint8Array([1, 2, 3, 4]))).toBeUndefined();
    expect(handle(other)).toBeUndefined();
    expect(handle({ ...share, to: 2 })).toBeUndefined();
    expect(handle({ ...share, neighbours: 'none' })).toBeUndefined();
    // Someone else on the bus, who knows the session id but not the pod's key.
    expect(tile.handle(enc(share))).toBeUndefined();
    expect(handle(share, podSigningKey())).toBeUndefined();
    expect(tile.handle(enc(share), { [POD_SIGNATURE_HEADER]: 'AAAA' })).toBeUndefined();
    const early = {
      kind: 'unmask-request',
      session: share.session,
      to: 1,
      survivors: Uint32Array.of(1, 2, 3),
      dropped: new Uint32Array(0),
      signatures: [],
    };
    expect(handle(early)).toBeUndefined();
    const reply = handle(share);
    expect(reply).toBeDefined();
    const msg = decodeSecAggMessage(reply as Uint8Array, config);
    expect(msg).toMatchObject({ kind: 'share', from: 1 });
    expect(handle(share)).toBeUndefined(); // replayed
    expect(Object.fromEntries(tile.rejectedByCode)).toEqual({
      [POD_SIGNATURE_INVALID]: 3,
      [SecAggErrorCode.Malformed]: 2,
      [SecAggErrorCode.Replay]: 3,
      [SecAggErrorCode.UnknownClient]: 1,
      [SecAggErrorCode.WrongState]: 1,
    });
    // None of this closed the session: the honest server's next request is still answered.
    server.receive(msg);
    for (const p of peers) server.receive(p.share(rosters.get(p.id) as never));
    const masked = server.closeShare().get(1) as SecAggServerMessage;
    const y = handle(masked);
    expect(decodeSecAggMessage(y as Uint8Array, config)).toMatchObject({
      kind: 'masked-input',
      from: 1,
    });
  });
});
