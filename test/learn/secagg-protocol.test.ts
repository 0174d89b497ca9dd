import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  type AdvertiseMsg,
  type ConsistencyMsg,
  isSecAggError,
  type MaskedInputMsg,
  runSecAggSession,
  SECAGG_STAGES,
  SecAggClient,
  SecAggServer,
  type SecAggSessionConfig,
  type SecAggStage,
  type ShareMsg,
  secureAggregate,
} from '../../src/learn/secagg/index.ts';
import { config, plainSum, randomInputs } from './secagg-fixture.ts';

const stageArb = fc.constantFrom<SecAggStage>(...SECAGG_STAGES);

/** Clients that sent their masked input: not dropped before or at 'masked-input'. */
function expectedSurvivors(n: number, drops: ReadonlyMap<number, SecAggStage>): number[] {
  return Array.from({ length: n }, (_, i) => i).filter((i) => {
    const s = drops.get(i);
    return s === undefined || SECAGG_STAGES.indexOf(s) > SECAGG_STAGES.indexOf('masked-input');
  });
}

describe('secure aggregation: exactness under dropouts', () => {
  it('full SecAgg: the unmasked sum equals the plain sum exactly for every dropout set within the threshold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 4, max: 9 }),
        fc.integer(),
        fc.array(fc.tuple(fc.nat(), stageArb), { maxLength: 8 }),
        async (n, seed, rawDrops) => {
          const rng = new SeededRng(seed);
          const t = rng.int(2, n - 2);
          const drops = new Map<number, SecAggStage>();
          // Up to n − t drops: exactly t survivors must still unmask (each holds a share of its
          // own self-mask seed, Bonawitz et al. §4).
          for (const [i, s] of rawDrops) if (drops.size < n - t) drops.set(i % n, s);
          const d = 1 + rng.int(0, 40);
          const inputs = randomInputs(rng, n, d);
          const r = await runSecAggSession({
            config: config('full', n, t, n - 1, d, seed),
            inputs,
            rng,
            dropouts: drops,
          });
          expect(r.aborted).toBeUndefined();
          const who = expectedSurvivors(n, drops);
          expect(r.survivors).toEqual(who);
          expect(Array.from(r.sum as Uint32Array)).toEqual(Array.from(plainSum(inputs, who, d)));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('SecAgg+: exact sum or a typed abort, and never an abort without dropouts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 8, max: 14 }),
        fc.integer(),
        fc.array(fc.tuple(fc.nat(), stageArb), { maxLength: 4 }),
        async (n, seed, rawDrops) => {
          const rng = new SeededRng(seed);
          const k = 4 + 2 * rng.int(0, 1);
          const t = k / 2 + 1;
          const drops = new Map<number, SecAggStage>(rawDrops.map(([i, s]) => [i % n, s]));
          const d = 1 + rng.int(0, 30);
          const inputs = randomInputs(rng, n, d);
          const r = await runSecAggSession({
            config: config('plus', n, t, k, d, seed),
            inputs,
            rng,
            dropouts: drops,
          });
          if (r.aborted !== undefined) {
            expect(drops.size).toBeGreaterThan(0);
            expect(
              isSecAggError(r.aborted, 'SECAGG_TOO_FEW_CLIENTS') ||
                isSecAggError(r.aborted, 'SECAGG_TOO_FEW_SHARES'),
            ).toBe(true);
            return;
          }
          expect(Array.from(r.sum as Uint32Array)).toEqual(
            Array.from(plainSum(inputs, r.survivors, d)),
          );
          expect(r.survivors).toEqual(
            expectedSurvivors(n, drops).filter((i) => r.survivors.includes(i)),
          );
        },
      ),
      { numRuns: 25 },
    );
  });

  it('handles clients vanishing at each stage, over a multi-chunk vector', async () => {
    const n = 8;
    const d = 20_000;
    const rng = new SeededRng(42);
    const inputs = randomInputs(rng, n, d);
    for (const stage of SECAGG_STAGES) {
      const drops = new Map<number, SecAggStage>([
        [2, stage],
        [5, stage],
      ]);
      const r = await runSecAggSession({
        config: config('full', n, 4, n - 1, d, 3),
        inputs,
        rng,
        dropouts: drops,
      });
      expect(r.aborted).toBeUndefined();
      expect(r.droppedByStage[stage]).toBe(2);
      const who = expectedSurvivors(n, drops);
      expect(
        Buffer.from((r.sum as Uint32Array).buffer).equals(
          Buffer.from(plainSum(inputs, who, d).buffer),
        ),
      ).toBe(true);
      // Only clients that shared keys but sent no masked input leave pairwise masks to rebuild.
      expect(r.pairMasksRecovered).toBe(stage === 'masked-input' ? 2 * (n - 2) : 0);
    }
  });

  it('runs with the trust layer hybrid X25519+ML-KEM-768 channel, exact under dropouts', async () => {
    const n = 6;
    const d = 33;
    const rng = new SeededRng(77);
    const inputs = randomInputs(rng, n, d);
    const drops = new Map<number, SecAggStage>([[4, 'masked-input']]);
    const cfg = { ...config('full', n, 3, n - 1, d), channel: 'hybrid-kem' as const };
    const r = await runSecAggSession({ config: cfg, inputs, rng, dropouts: drops });
    expect(r.aborted).toBeUndefined();
    expect(Array.from(r.sum as Uint32Array)).toEqual(
      Array.from(plainSum(inputs, [0, 1, 2, 3, 5], d)),
    );
  });

  it('aborts cleanly with a typed error when more clients drop than the threshold allows', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 4, max: 8 }), fc.integer(), async (n, seed) => {
        const rng = new SeededRng(seed);
        const t = rng.int(2, n - 1);
        const drops = new Map<number, SecAggStage>();
        const order = Array.from({ length: n }, (_, i) => i).sort(() => rng.nextFloat() - 0.5);
        for (const i of order.slice(0, n - t + 1))
          drops.set(i, SECAGG_STAGES[rng.int(0, 4)] as SecAggStage);
        const r = await runSecAggSession({
          config: config('full', n, t, n - 1, 3, seed),
          inputs: randomInputs(rng, n, 3),
          rng,
          dropouts: drops,
        });
        expect(r.sum).toBeUndefined();
        expect(r.aborted?.code).toMatch(/^SECAGG_TOO_FEW_(CLIENTS|SHARES)$/);
      }),
      { numRuns: 20 },
    );
  });
});

function chiSquare(counts: Uint32Array): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  let x = 0;
  for (const c of counts) x += (c - expected) ** 2 / expected;
  return x;
}

/** Drives rounds 0–2 honestly and returns the clients, the server and the masked inputs. */
function honestToRound3(cfg: SecAggSessionConfig, inputs: readonly Uint32Array[], rng: SeededRng) {
  const clients = Array.from(
    { length: cfg.n },
    (_, i) => new SecAggClient({ id: i + 1, config: cfg, rng }),
  );
  const server = new SecAggServer({ config: cfg, rng });
  for (const c of clients) server.receive(c.advertise());
  const shareReqs = server.closeAdvertise();
  for (const c of clients) server.receive(c.share(shareReqs.get(c.id) as never));
  const maskReqs = server.closeShare();
  const masked: MaskedInputMsg[] = [];
  for (const c of clients) {
    const m = c.maskInput(maskReqs.get(c.id) as never, inputs[c.id - 1] as Uint32Array);
    masked.push(m);
    server.receive(m);
  }
  return { clients, server, masked };
}

describe('secure aggregation: privacy', () => {
  it('a masked vector alone is indistinguishable from uniform (chi-square on bytes and on top nibbles)', () => {
    const n = 5;
    const d = 50_000;
    const rng = new SeededRng(7);
    // Worst case for the test: every input is the same low-entropy vector (a quantized constant).
    const input = new Uint32Array(d).fill(2 ** 21);
    const cfg = config('full', n, 3, n - 1, d);
    const { masked } = honestToRound3(cfg, Array(n).fill(input), rng);
    const critical = 360; // χ²(255) at p ≈ 1e-6; χ²(15) critical at p ≈ 1e-6 is 55.
    for (const m of masked) {
      const bytes = new Uint8Array(m.y.buffer);
      const counts = new Uint32Array(256);
      for (const b of bytes) counts[b] = (counts[b] as number) + 1;
      expect(chiSquare(counts)).toBeLessThan(critical);
      const nibbles = new Uint32Array(16);
      for (const w of m.y) nibbles[w >>> 28] = (nibbles[w >>> 28] as number) + 1;
      expect(chiSquare(nibbles)).toBeLessThan(55);
    }
    // The same statistic flags the unmasked input, so the test can fail.
    const raw = new Uint32Array(256);
    for (const b of new Uint8Array(input.buffer)) raw[b] = (raw[b] as number) + 1;
    expect(chiSquare(raw)).toBeGreaterThan(critical);
  });
});

describe('secure aggregation: the consistency check', () => {
  const n = 6;
  const t = 4;
  const d = 8;

  it('a server that shows different survivor sets to different clients gets no shares', () => {
    const rng = new SeededRng(11);
    const cfg = config('full', n, t, n - 1, d);
    const { clients, server } = honestToRound3(cfg, randomInputs(rng, n, d), rng);
    const honest = server.closeMaskedInput();
    const all = (honest.get(1) as { survivors: Uint32Array }).survivors;
    const without6 = all.filter((v) => v !== 6);
    // Clients 1–3 are told that 6 dropped (to get its s^SK), clients 4–6 that it survived (to get b_6).
    const sigs = new Map<number, ConsistencyMsg>();
    for (const c of clients) {
      const survivors = c.id <= 3 ? without6 : all;
      sigs.set(
        c.id,
        c.consistency({ kind: 'consistency-request', session: cfg.sessionId, to: c.id, survivors }),
      );
    }
    const signatures = [...sigs.values()]
      .filter((m) => m.from !== 1)
      .map((m) => ({ from: m.from, signature: m.signature }));
    const c1 = clients[0] as SecAggClient;
    expect(() =>
      c1.unmask({
        kind: 'unmask-request',
        session: cfg.sessionId,
        to: 1,
        survivors: without6,
        dropped: Uint32Array.of(6),
        signatures,
      }),
    ).toThrowError(expect.objectContaining({ code: 'SECAGG_CONSISTENCY' }));
    // With only the signatures that match its view, client 2 sees fewer than t and also refuses.
    const c2 = clients[1] as SecAggClient;
    const matching = [1, 3].map((v) => ({
      from: v,
      signature: (sigs.get(v) as ConsistencyMsg).signature,
    }));
    expect(() =>
      c2.unmask({
        kind: 'unmask-request',
        session: cfg.sessionId,
        to: 2,
        survivors: without6,
        dropped: Uint32Array.of(6),
        signatures: matching,
      }),
    ).toThrowError(expect.objectContaining({ code: 'SECAGG_TOO_FEW_CLIENTS' }));
  });

  it('a client asked for both the self-mask share and the key share of the same peer reveals neither', () => {
    const rng = new SeededRng(12);
    const cfg = config('full', n, t, n - 1, d);
    const { clients, server } = honestToRound3(cfg, randomInputs(rng, n, d), rng);
    const reqs = server.closeMaskedInput();
    const sigs = clients.map((c) => c.consistency(reqs.get(c.id) as never));
    const survivors = (reqs.get(1) as { survivors: Uint32Array }).survivors;
    const signatures = sigs.map((m) => ({ from: m.from, signature: m.signature }));
    const c1 = clients[0] as SecAggClient;
    expect(() =>
      c1.unmask({
        kind: 'unmask-request',
        session: cfg.sessionId,
        to: 1,
        survivors,
        dropped: Uint32Array.of(4),
        signatures,
      }),
    ).toThrowError(expect.objectContaining({ code: 'SECAGG_CONSISTENCY' }));
    // The refusal is final: no second chance to ask again.
    expect(() =>
      c1.unmask({
        kind: 'unmask-request',
        session: cfg.sessionId,
        to: 1,
        survivors,
        dropped: new Uint32Array(0),
        signatures,
      }),
    ).toThrowError(expect.objectContaining({ code: 'SECAGG_WRONG_STATE' }));
    // An honest request to another client works and carries only self-mask shares: one per
    // surviving neighbour and its own (Bonawitz et al. §4: every user holds a share of its b).
    const c2 = clients[1] as SecAggClient;
    const ok = c2.unmask({
      kind: 'unmask-request',
      session: cfg.sessionId,
      to: 2,
      survivors,
      dropped: new Uint32Array(0),
      signatures,
    });
    expect(ok.keyShares).toHaveLength(0);
    expect(ok.selfShares.map((s) => s.of).sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('aborts when the key shares of a dropped client do not rebuild its advertised key', () => {
    const rng = new SeededRng(14);
    const cfg = config('full', 5, 3, 4, d);
    // Client 5 shares its keys, then vanishes before sending its masked input.
    const srv = new SecAggServer({ config: cfg, rng });
    const cs = Array.from(
      { length: 5 },
      (_, i) => new SecAggClient({ id: i + 1, config: cfg, rng }),
    );
    for (const c of cs) srv.receive(c.advertise());
    const sr = srv.closeAdvertise();
    for (const c of cs) srv.receive(c.share(sr.get(c.id) as never));
    const mr = srv.closeShare();
    for (const c of cs.slice(0, 4))
      srv.receive(c.maskInput(mr.get(c.id) as never, new Uint32Array(d)));
    const cr = srv.closeMaskedInput();
    for (const c of cs.slice(0, 4)) srv.receive(c.consistency(cr.get(c.id) as never));
    const ur = srv.closeConsistency();
    for (const c of cs.slice(0, 4)) {
      const m = c.unmask(ur.get(c.id) as never);
      // A lying client corrupts its share of client 5's masking key.
      const keyShares =
        c.id === 1
          ? m.keyShares.map((k) => ({ of: k.of, share: k.share.map((x) => (x + 1) % 67_108_859) }))
          : m.keyShares;
      srv.receive({ ...m, keyShares });
    }
    expect(() => srv.closeUnmask()).toThrowError(
      expect.objectContaining({ code: 'SECAGG_TOO_FEW_SHARES' }),
    );
  });

  it('a tampered share ciphertext is rejected with SECAGG_DECRYPT', () => {
    const rng = new SeededRng(13);
    const cfg = config('full', 4, 2, 3, d);
    const clients = Array.from(
      { length: 4 },
      (_, i) => new SecAggClient({ id: i + 1, config: cfg, rng }),
    );
    const server = new SecAggServer({ config: cfg, rng });
    for (const c of clients) server.receive(c.advertise());
    const shareReqs = server.closeAdvertise();
    for (const c of clients) server.receive(c.share(shareReqs.get(c.id) as never));
    const req = server.closeShare().get(1) as {
      kind: 'masked-input-request';
      session: Uint8Array;
      to: number;
      ciphertexts: { from: number; ct: Uint8Array }[];
    };
    const ct = Uint8Array.from((req.ciphertexts[0] as { ct: Uint8Array }).ct);
    ct[3] = (ct[3] as number) ^ 1;
    const tampered = {
      ...req,
      ciphertexts: [
        { from: (req.ciphertexts[0] as { from: number }).from, ct },
        ...req.ciphertexts.slice(1),
      ],
    };
    expect(() => (clients[0] as SecAggClient).maskInput(tampered, new Uint32Array(d))).toThrowError(
      expect.objectContaining({ code: 'SECAGG_DECRYPT' }),
    );
  });
});

describe('secure aggregation: hostile and broken messages at the server', () => {
  it('rejects malformed, replayed, duplicate and unknown-sender messages with typed errors and counts them', () => {
    const rng = new SeededRng(21);
    const cfg = config('full', 4, 2, 3, 5);
    const other = config('full', 4, 2, 3, 5, 99);
    const clients = Array.from(
      { length: 4 },
      (_, i) => new SecAggClient({ id: i + 1, config: cfg, rng }),
    );
    const server = new SecAggServer({ config: cfg, rng });
    const ads = clients.slice(0, 3).map((c) => c.advertise());
    for (const a of ads) server.receive(a);
    const code = (f: () => void): string => {
      try {
        f();
      } catch (e) {
        return isSecAggError(e) ? e.code : 'untyped';
      }
      return 'accepted';
    };
    const a1 = ads[0] as AdvertiseMsg;
    expect(code(() => server.receive(a1))).toBe('SECAGG_DUPLICATE');
    expect(code(() => server.receive({ ...a1, session: other.sessionId }))).toBe('SECAGG_REPLAY');
    expect(code(() => server.receive({ ...a1, cPk: new Uint8Array(5) }))).toBe('SECAGG_MALFORMED');
    expect(code(() => server.receive({ ...a1, from: 17 }))).toBe('SECAGG_MALFORMED');
    expect(code(() => server.receive('not a message'))).toBe('SECAGG_MALFORMED');
    expect(
      code(() => server.receive({ kind: 'share', session: cfg.sessionId, from: 1, shares: [] })),
    ).toBe('SECAGG_REPLAY');
    const shareReqs = server.closeAdvertise();
    // Round 0 is over: its messages are now replays; client 4 never advertised.
    expect(code(() => server.receive(a1))).toBe('SECAGG_REPLAY');
    const shares = clients.slice(0, 3).map((c) => c.share(shareReqs.get(c.id) as never));
    expect(code(() => server.receive({ ...(shares[0] as ShareMsg), from: 4 }))).toBe(
      'SECAGG_UNKNOWN_CLIENT',
    );
    expect(
      code(() =>
        server.receive({
          ...(shares[0] as ShareMsg),
          shares: (shares[0] as ShareMsg).shares.slice(1),
        }),
      ),
    ).toBe('SECAGG_MALFORMED');
    for (const s of shares) server.receive(s);
    const maskReqs = server.closeShare();
    const m1 = (clients[0] as SecAggClient).maskInput(maskReqs.get(1) as never, new Uint32Array(5));
    expect(code(() => server.receive({ ...m1, y: new Uint32Array(4) }))).toBe('SECAGG_MALFORMED');
    server.receive(m1);
    expect(code(() => server.receive(m1))).toBe('SECAGG_DUPLICATE');
    expect(server.rejected).toEqual({
      SECAGG_DUPLICATE: 2,
      SECAGG_REPLAY: 3,
      SECAGG_MALFORMED: 5,
      SECAGG_UNKNOWN_CLIENT: 1,
    });
  });
});

describe('secureAggregate', () => {
  const n = 12;
  const d = 50;
  const rng = new SeededRng(31);
  const updates = Array.from({ length: n }, () =>
    Float32Array.from({ length: d }, () => (rng.nextFloat() - 0.5) * 4),
  );
  const weights = Array.from({ length: n }, () => rng.int(1, 500));

  function plainWeightedMean(who: readonly number[]): Float64Array {
    const out = new Float64Array(d);
    let ws = 0;
    for (const i of who) {
      ws += weights[i] as number;
      for (let j = 0; j < d; j++)
        out[j] =
          (out[j] as number) + (weights[i] as number) * ((updates[i] as Float32Array)[j] as number);
    }
    return out.map((x) => x / ws);
  }

  for (const mode of ['full', 'plus'] as const) {
    it(`${mode}: returns the weighted mean of the survivors within quantization error`, async () => {
      const dropouts = new Map<number, SecAggStage>([
        [3, 'share'],
        [7, 'unmask'],
      ]);
      const r = await secureAggregate({
        updates,
        weights,
        mode,
        rng: new SeededRng(mode === 'full' ? 1 : 2),
        dropouts,
        threshold: 6,
        neighbours: 8,
      });
      expect(r.aborted).toBeUndefined();
      expect(r.dropped).toEqual(['c3']);
      const who = Array.from({ length: n }, (_, i) => i).filter((i) => i !== 3);
      const exact = plainWeightedMean(who);
      for (let j = 0; j < d; j++)
        expect(Math.abs((r.weightedMean[j] as number) - (exact[j] as number))).toBeLessThan(1e-4);
      const ws = who.reduce((a, i) => a + (weights[i] as number), 0);
      expect(Math.abs(r.totalWeight - ws) / ws).toBeLessThan(1e-4);
      expect(r.stats.neighbours).toBe(mode === 'full' ? n - 1 : 8);
    });
  }

  it('applies the distributed-noise hook once per client before masking', async () => {
    const seen: number[] = [];
    const r = await secureAggregate({
      updates,
      weights: Array(n).fill(1),
      mode: 'full',
      rng: new SeededRng(3),
      threshold: 6,
      noise: (v, i) => {
        seen.push(i);
        return v.map((x) => x + 0.5);
      },
    });
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    const plain = plainWeightedMean(Array.from({ length: n }, (_, i) => i).map((i) => i));
    // Equal weights: each client adds 0.5 to w·x with w = 1, so the mean moves by ≈ 0.5 − (bias of unequal weights).
    const shift =
      (r.weightedMean[0] as number) -
      ((updates.reduce((a, u) => a + (u[0] as number), 0) / n) as number);
    expect(Math.abs(shift - 0.5)).toBeLessThan(1e-3);
    expect(plain.length).toBe(d);
  });

  it('reports an abort in the result when too many clients vanish, and rejects bad options', async () => {
    const dropouts = new Map<number, SecAggStage>(
      Array.from({ length: 8 }, (_, i) => [i, 'masked-input'] as const),
    );
    const r = await secureAggregate({
      updates,
      weights,
      mode: 'full',
      rng: new SeededRng(4),
      dropouts,
      threshold: 6,
    });
    expect(r.aborted?.code).toBe('SECAGG_TOO_FEW_CLIENTS');
    expect(r.weightedMean).toHaveLength(0);
    await expect(
      secureAggregate({ updates, weights: weights.slice(1), mode: 'full', rng: new SeededRng(4) }),
    ).rejects.toMatchObject({ code: 'SECAGG_BAD_CONFIG' });
    await expect(
      secureAggregate({
        updates: [...updates.slice(1), new Float32Array(d).fill(Number.POSITIVE_INFINITY)],
        weights,
        mode: 'full',
        rng: new SeededRng(4),
        threshold: 6,
      }),
    ).rejects.toMatchObject({ code: 'SECAGG_MALFORMED' });
    await expect(
      secureAggregate({
        updates,
        weights,
        mode: 'full',
        rng: new SeededRng(4),
        quantizationLevels: 2 ** 30,
      }),
    ).rejects.toMatchObject({
      code: 'SECAGG_QUANTIZATION_OVERFLOW',
    });
  });
});
