/**
 * One compliance suite every aggregation strategy passes, plus strategy-specific known answers
 * and the Byzantine experiment (robust strategies measured against FedAvg).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../src/core/index.ts';
import {
  type ClientUpdate,
  createStrategy,
  defaultConfig,
  isLearnError,
  krumScores,
  runSimulation,
  STRATEGY_NAMES,
  weightedMean,
} from '../../src/learn/index.ts';

function updates(rng: SeededRng, n: number, len: number, around = 0): ClientUpdate[] {
  return Array.from({ length: n }, (_, i) => ({
    clientId: `c${i}`,
    params: Float32Array.from({ length: len }, () => around + rng.nextFloat() - 0.5),
    numExamples: rng.int(1, 100),
  }));
}

describe.each(STRATEGY_NAMES)('strategy compliance: %s', (name) => {
  it('returns a finite vector of the model length and does not mutate its inputs', () => {
    const rng = new SeededRng(1);
    const s = createStrategy(name);
    const global = new Float32Array(17);
    const ups = updates(rng, 9, 17);
    const copies = ups.map((u) => Array.from(u.params));
    const out = s.aggregate(global, ups, 1);
    expect(out.length).toBe(17);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(Array.from(global).every((v) => v === 0)).toBe(true);
    for (const [i, u] of ups.entries()) expect(Array.from(u.params)).toEqual(copies[i]);
  });

  it('moves towards unanimous updates (exactly onto them for non-adaptive strategies)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 7 }),
        (target, n) => {
          const s = createStrategy(name);
          const global = new Float32Array(target.length);
          const ups = Array.from({ length: n }, (_, i) => ({
            clientId: `c${i}`,
            params: Float32Array.from(target),
            numExamples: 5 + i,
          }));
          const out = s.aggregate(global, ups, 1);
          for (let i = 0; i < target.length; i++) {
            const t = Math.fround(target[i] as number);
            if (['fedadagrad', 'fedadam', 'fedyogi'].includes(name)) {
              if (Math.abs(t) > 1e-3) expect(Math.sign(out[i] as number)).toBe(Math.sign(t));
            } else expect(out[i]).toBeCloseTo(t, 5);
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('is invariant to the order of updates', () => {
    const rng = new SeededRng(2);
    const ups = updates(rng, 8, 11);
    const global = new Float32Array(11);
    const a = createStrategy(name).aggregate(global, ups, 1);
    const b = createStrategy(name).aggregate(global, [...ups].reverse(), 1);
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i] as number, 5);
  });

  it('refuses an empty round with LEARN_TOO_FEW_CLIENTS', () => {
    let caught: unknown;
    try {
      createStrategy(name).aggregate(new Float32Array(3), [], 1);
    } catch (e) {
      caught = e;
    }
    expect(isLearnError(caught, 'LEARN_TOO_FEW_CLIENTS')).toBe(true);
  });

  it('declares whether it composes with secure aggregation (fromMean) consistently', () => {
    const s = createStrategy(name);
    expect(s.robust).toBe(s.fromMean === undefined);
  });
});

describe('strategy known answers', () => {
  const u = (id: string, params: number[], numExamples: number): ClientUpdate => ({
    clientId: id,
    params: Float32Array.from(params),
    numExamples,
  });

  it('FedAvg is the example-weighted mean', () => {
    const out = weightedMean([u('a', [0, 10], 1), u('b', [4, 2], 3)]);
    expect(Array.from(out)).toEqual([3, 4]);
  });

  it('FedMedian and FedTrimmedAvg ignore one outlier', () => {
    const ups = [u('a', [1], 1), u('b', [2], 1), u('c', [3], 1), u('d', [4], 1), u('e', [1000], 1)];
    expect(createStrategy('fedmedian').aggregate(new Float32Array(1), ups, 1)[0]).toBe(3);
    expect(
      createStrategy('fedtrimmedavg', { trimBeta: 0.2 }).aggregate(new Float32Array(1), ups, 1)[0],
    ).toBe(3);
  });

  it('Krum picks the update closest to its neighbours; MultiKrum averages the best', () => {
    const ups = [
      u('a', [0, 0], 1),
      u('b', [0.1, 0], 1),
      u('c', [0, 0.1], 1),
      u('d', [0.1, 0.1], 1),
      u('e', [0.05, 0.05], 1),
      u('x', [50, -50], 1),
    ];
    const scores = krumScores(ups, 1);
    expect(scores.indexOf(Math.max(...scores))).toBe(5);
    expect(
      Array.from(createStrategy('krum', { byzantine: 1 }).aggregate(new Float32Array(2), ups, 1)),
    ).toEqual([Math.fround(0.05), Math.fround(0.05)]);
    const mk = createStrategy('multikrum', { byzantine: 1 }).aggregate(new Float32Array(2), ups, 1);
    expect(Math.abs(mk[0] as number)).toBeLessThan(0.2);
  });

  it('FedAvgM accumulates server momentum across rounds', () => {
    const s = createStrategy('fedavgm', { serverMomentum: 0.5 });
    const g1 = s.aggregate(new Float32Array([0]), [u('a', [1], 1)], 1);
    expect(g1[0]).toBeCloseTo(1, 6);
    // Round 2: pseudo-gradient −1 again, momentum 0.5 → step 1.5.
    const g2 = s.aggregate(g1, [u('a', [2], 1)], 2);
    expect(g2[0]).toBeCloseTo(2.5, 6);
  });

  it('FedProx asks clients for a proximal term; the others do not', () => {
    expect(createStrategy('fedprox', { proximalMu: 0.3 }).configureFit(1).proximalMu).toBe(0.3);
    expect(createStrategy('fedavg').configureFit(1).proximalMu).toBe(0);
  });

  it('rejects unknown names and bad options with LEARN_BAD_CONFIG', () => {
    expect(() => createStrategy('fedfoo')).toThrow(/unknown strategy/);
    expect(() => createStrategy('fedtrimmedavg', { trimBeta: 0.6 })).toThrow(/trimBeta/);
  });
});

describe('Byzantine clients (20% poisoned, sign-flip ×4)', () => {
  it('robust strategies keep their accuracy where FedAvg collapses', async () => {
    const base = {
      ...defaultConfig(30, 6),
      clientsPerRound: 15,
      windowsPerClient: 48,
      testWindows: 800,
      localSteps: 10,
      seed: 11,
    };
    const clean = await runSimulation({ ...base, strategy: 'fedavg' });
    const acc: Record<string, number> = {};
    for (const strategy of ['fedavg', 'fedmedian', 'fedtrimmedavg', 'krum', 'multikrum'] as const) {
      const r = await runSimulation({
        ...base,
        strategy,
        byzantineFraction: 0.2,
        attack: 'sign-flip',
      });
      acc[strategy] = r.finalAccuracy;
    }
    const fedavg = acc.fedavg as number;
    for (const s of ['fedmedian', 'fedtrimmedavg', 'krum', 'multikrum']) {
      expect(acc[s] as number).toBeGreaterThan(fedavg + 0.05);
      expect(acc[s] as number).toBeGreaterThan(clean.finalAccuracy - 0.06);
    }
  }, 60_000);
});
