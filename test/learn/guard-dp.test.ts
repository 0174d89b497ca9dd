import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  Aggregation,
  clipL2,
  createStrategy,
  DpFedAvg,
  defaultConfig,
  isLearnError,
  LEARN_UPDATE_BYTES_MAX,
  l2Norm,
  type ReceivedUpdate,
  runSimulation,
  UpdateGuard,
} from '../../src/learn/index.ts';

const upd = (over: Partial<ReceivedUpdate> = {}): ReceivedUpdate => ({
  clientId: 'c1',
  params: new Float32Array([1, 2, 3]),
  numExamples: 10,
  round: 1,
  nonce: 'n1',
  ...over,
});

describe('update guard: bad input is rejected with typed errors and counted', () => {
  it.each([
    ['wrong length', upd({ params: new Float32Array(4) }), 'LEARN_WRONG_LENGTH'],
    ['NaN', upd({ params: new Float32Array([1, Number.NaN, 3]) }), 'LEARN_NON_FINITE'],
    [
      'Infinity',
      upd({ params: new Float32Array([1, 2, Number.POSITIVE_INFINITY]) }),
      'LEARN_NON_FINITE',
    ],
    ['oversized', upd({ bytes: LEARN_UPDATE_BYTES_MAX + 1 }), 'LEARN_OVERSIZED'],
    ['other round', upd({ round: 0 }), 'LEARN_REPLAY'],
    ['negative examples', upd({ numExamples: -1 }), 'LEARN_MALFORMED'],
  ] as const)('%s', (_name, u, code) => {
    const g = new UpdateGuard(3);
    g.beginRound(1);
    let caught: unknown;
    try {
      g.check(u);
    } catch (e) {
      caught = e;
    }
    expect(isLearnError(caught, code)).toBe(true);
    g.filter([u]);
    expect(g.rejected[code]).toBe(1);
    expect(g.accepted).toBe(0);
  });

  it('duplicates within a round and replays across rounds', () => {
    const g = new UpdateGuard(3);
    g.beginRound(1);
    expect(g.filter([upd(), upd({ nonce: 'n2' }), upd()])).toHaveLength(1);
    expect(g.rejected.LEARN_DUPLICATE_CLIENT).toBe(1);
    expect(g.rejected.LEARN_REPLAY).toBe(1);
    g.beginRound(2);
    // A recorded round-1 message replayed in round 2 names the wrong round.
    expect(g.filter([upd()])).toHaveLength(0);
    expect(g.filter([upd({ round: 2, nonce: 'n3' })])).toHaveLength(1);
    expect(g.rejected.LEARN_REPLAY).toBe(2);
  });

  it('an aggregation never lets a poisoned value through', async () => {
    const agg = new Aggregation({
      strategy: createStrategy('fedavg'),
      secagg: 'off',
      dp: undefined,
      expectedClients: 3,
      dropoutRate: 0,
      paramCount: 3,
      rng: new SeededRng(1),
    });
    agg.begin(1, new Float32Array(3));
    agg.add(upd({ clientId: 'a', nonce: 'a' }));
    agg.add(upd({ clientId: 'b', nonce: 'b', params: new Float32Array([Number.NaN, 0, 0]) }));
    agg.add(upd({ clientId: 'c', nonce: 'c', params: new Float32Array(2) }));
    const out = await agg.finish(1);
    expect(Array.from(out.params)).toEqual([1, 2, 3]);
    expect(out.used).toBe(1);
    expect(out.rejected).toBe(2);
  });
});

describe('DP-FedAvg', () => {
  it('clipping bounds the L2 norm and keeps the direction', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -100, max: 100, noNaN: true }), { minLength: 1, maxLength: 50 }),
        fc.double({ min: 0.01, max: 10, noNaN: true }),
        (xs, c) => {
          const v = Float32Array.from(xs);
          const before = Float32Array.from(v);
          const norm = clipL2(v, c);
          expect(l2Norm(v)).toBeLessThanOrEqual(c * (1 + 1e-5));
          if (norm <= c) expect(Array.from(v)).toEqual(Array.from(before));
          else
            for (let i = 0; i < v.length; i++)
              expect((v[i] as number) * (before[i] as number)).toBeGreaterThanOrEqual(0);
        },
      ),
    );
  });

  it('adaptive clipping converges to the target quantile of update norms', () => {
    const dp = new DpFedAvg({
      noiseMultiplier: 1,
      clipNorm: 10,
      placement: 'central',
      adaptive: { targetQuantile: 0.5, lr: 0.2, countStd: 1 },
    });
    const rng = new SeededRng(3);
    // Norms uniform on [0, 2]: the median is 1.
    for (let round = 0; round < 300; round++) {
      let unclipped = 0;
      for (let i = 0; i < 100; i++) if (rng.nextFloat() * 2 <= dp.clipNorm) unclipped++;
      dp.updateClip(unclipped, 100, 100, rng);
    }
    expect(dp.clipNorm).toBeGreaterThan(0.8);
    expect(dp.clipNorm).toBeLessThan(1.2);
  });

  it('adaptive clipping raises the delta noise (Andrew et al. Theorem 1)', () => {
    const fixed = new DpFedAvg({ noiseMultiplier: 1, clipNorm: 1, placement: 'central' });
    const adaptive = new DpFedAvg({
      noiseMultiplier: 1,
      clipNorm: 1,
      placement: 'central',
      adaptive: { countStd: 5 },
    });
    expect(fixed.deltaNoiseMultiplier(100)).toBe(1);
    expect(adaptive.deltaNoiseMultiplier(100)).toBeCloseTo((1 - 1 / 100) ** -0.5, 12);
    const tooSmall = new DpFedAvg({
      noiseMultiplier: 2,
      clipNorm: 1,
      placement: 'central',
      adaptive: { countStd: 0.5 },
    });
    expect(() => tooSmall.deltaNoiseMultiplier(100)).toThrow(/too small/);
  });

  it('central noise has the calibrated standard deviation', async () => {
    const dp = new DpFedAvg({ noiseMultiplier: 2, clipNorm: 0.5, placement: 'central' });
    const agg = new Aggregation({
      strategy: createStrategy('fedavg'),
      secagg: 'off',
      dp,
      expectedClients: 10,
      dropoutRate: 0,
      paramCount: 20_000,
      rng: new SeededRng(9),
    });
    agg.begin(1, new Float32Array(20_000));
    for (let i = 0; i < 10; i++)
      agg.add({
        clientId: `c${i}`,
        params: new Float32Array(20_000),
        numExamples: 5,
        round: 1,
        nonce: `${i}`,
      });
    const out = await agg.finish(1);
    let s2 = 0;
    for (const v of out.params) s2 += v * v;
    // Sum noise std z·C = 1, divided by m = 10 → 0.1 per coordinate of the mean.
    expect(Math.sqrt(s2 / out.params.length)).toBeCloseTo(0.1, 2);
  });

  it('every round records ε, which grows, and training stops at the budget', async () => {
    const cfg = {
      ...defaultConfig(200, 12),
      clientsPerRound: 40,
      windowsPerClient: 32,
      testWindows: 400,
      localSteps: 5,
    };
    const r = await runSimulation({
      ...cfg,
      dp: {
        noiseMultiplier: 1.2,
        delta: 1e-5,
        clipNorm: 1,
        adaptiveClipping: false,
        placement: 'central',
        budget: 3,
      },
    });
    expect(r.stopped).toBe('budget-exhausted');
    expect(r.rounds.length).toBeGreaterThan(0);
    expect(r.rounds.length).toBeLessThan(12);
    for (let i = 1; i < r.rounds.length; i++)
      expect((r.rounds[i]?.epsilon ?? 0) > (r.rounds[i - 1]?.epsilon ?? 0)).toBe(true);
    expect(r.epsilon).toBeLessThanOrEqual(3);
    const calibrated = await runSimulation({
      ...cfg,
      rounds: 5,
      dp: { epsilon: 2, delta: 1e-5, clipNorm: 1, adaptiveClipping: true, placement: 'central' },
    });
    expect(calibrated.stopped).toBe('completed');
    expect(calibrated.epsilon).toBeLessThanOrEqual(2 * (1 + 1e-6));
    expect(calibrated.epsilon).toBeGreaterThan(1.9);
    expect(calibrated.finalAccuracy).toBeGreaterThan(calibrated.baselineAccuracy);
  }, 60_000);

  it('refuses DP with robust strategies and distributed noise without SecAgg', async () => {
    const cfg = defaultConfig(10, 1);
    const dp = {
      noiseMultiplier: 1,
      delta: 1e-5,
      clipNorm: 1,
      adaptiveClipping: false,
      placement: 'central' as const,
    };
    await expect(runSimulation({ ...cfg, strategy: 'krum', dp })).rejects.toMatchObject({
      code: 'LEARN_BAD_CONFIG',
    });
    await expect(
      runSimulation({ ...cfg, dp: { ...dp, placement: 'distributed' } }),
    ).rejects.toMatchObject({ code: 'LEARN_BAD_CONFIG' });
    await expect(
      runSimulation({ ...cfg, strategy: 'fedmedian', secagg: 'plus' }),
    ).rejects.toMatchObject({ code: 'LEARN_BAD_CONFIG' });
  });
});
