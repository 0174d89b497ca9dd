import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  calibrateNoise,
  computeRdp,
  epsilonFor,
  isLearnError,
  logErfc,
  OPACUS_ORDERS,
  RdpAccountant,
  rdpToEpsilon,
  TF_PRIVACY_ORDERS,
} from '../../src/learn/index.ts';

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

describe('RDP accountant: published values', () => {
  it('reproduces TF Privacy compute_dp_sgd_privacy (MNIST, improved conversion)', () => {
    // compute_dp_sgd_privacy_test.py: n=60000, batch=150, σ=1.3, 15 epochs (6000 steps), δ=1e-5.
    const rdp = computeRdp({
      q: 150 / 60000,
      noiseMultiplier: 1.3,
      steps: 6000,
      orders: TF_PRIVACY_ORDERS,
    });
    const { epsilon, order } = rdpToEpsilon({
      orders: TF_PRIVACY_ORDERS,
      rdp,
      delta: 1e-5,
      conversion: 'improved',
    });
    expect(rel(epsilon, 0.7242234026109595)).toBeLessThan(1e-9);
    expect(order).toBe(19);
  });

  it("reproduces Opacus' RDP accountant test (q=0.04, σ=1.5, 2250 steps, fractional optimum)", () => {
    const rdp = computeRdp({ q: 0.04, noiseMultiplier: 1.5, steps: 2250, orders: OPACUS_ORDERS });
    const { epsilon, order } = rdpToEpsilon({
      orders: OPACUS_ORDERS,
      rdp,
      delta: 1e-5,
      conversion: 'improved',
    });
    expect(rel(epsilon, 7.32911117143)).toBeLessThan(1e-9);
    expect(Number.isInteger(order)).toBe(false);
  });

  it("reproduces TF Privacy rdp_test's compute_rdp values (integer, fractional and large orders)", () => {
    expect(
      rel(computeRdp({ q: 0.1, noiseMultiplier: 2, steps: 10, orders: [5] })[0] as number, 0.07737),
    ).toBeLessThan(1e-4);
    const got = computeRdp({
      q: 0.01,
      noiseMultiplier: 2.5,
      steps: 50,
      orders: [1.5, 2.5, 5, 50, 100, Number.POSITIVE_INFINITY],
    });
    const want = [6.5007e-4, 1.0854e-3, 2.1808e-3, 2.3846e-2, 1.6742e2];
    for (const [i, w] of want.entries()) expect(rel(got[i] as number, w)).toBeLessThan(1e-4);
    expect(got[5]).toBe(Number.POSITIVE_INFINITY);
  });

  it('classic conversion is Mironov Proposition 3 and never beats the improved one', () => {
    const orders = [2, 4, 8, 16, 32];
    const rdp = [0.1, 0.2, 0.4, 0.8, 1.6];
    const classic = rdpToEpsilon({ orders, rdp, delta: 1e-5, conversion: 'classic' });
    const expected = Math.min(
      ...orders.map((a, i) => (rdp[i] as number) - Math.log(1e-5) / (a - 1)),
    );
    expect(classic.epsilon).toBeCloseTo(expected, 12);
    expect(rdpToEpsilon({ orders, rdp, delta: 1e-5, conversion: 'improved' }).epsilon).toBeLessThan(
      classic.epsilon,
    );
  });

  it('log-erfc matches known erfc values in both tails', () => {
    expect(rel(logErfc(0.5), Math.log(0.4795001221869535))).toBeLessThan(1e-14);
    expect(rel(logErfc(3), Math.log(2.209049699858544e-5))).toBeLessThan(1e-13);
    expect(rel(logErfc(-1), Math.log(1.8427007929497148))).toBeLessThan(1e-14);
    // erfc(10) = 2.088487583762545e-45
    expect(rel(logErfc(10), Math.log(2.088487583762545e-45))).toBeLessThan(1e-13);
  });
});

describe('RDP accountant: properties', () => {
  it('fractional orders are continuous with the integer binomial formula', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: 0.5, noNaN: true }),
        fc.double({ min: 0.6, max: 5, noNaN: true }),
        fc.integer({ min: 2, max: 30 }),
        (q, sigma, a) => {
          const [lo, mid, hi] = computeRdp({
            q,
            noiseMultiplier: sigma,
            steps: 1,
            orders: [a - 1e-7, a, a + 1e-7],
          });
          expect(Math.abs((lo as number) - (mid as number))).toBeLessThan(
            1e-5 * (mid as number) + 1e-12,
          );
          expect(Math.abs((hi as number) - (mid as number))).toBeLessThan(
            1e-5 * (mid as number) + 1e-12,
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('RDP grows with order and with q, shrinks with σ, and composes linearly in steps', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: 0.3, noNaN: true }),
        fc.double({ min: 0.7, max: 4, noNaN: true }),
        (q, sigma) => {
          const orders = [1.5, 2, 2.5, 3, 4.25, 8];
          const r = computeRdp({ q, noiseMultiplier: sigma, steps: 1, orders });
          for (let i = 1; i < r.length; i++)
            expect(r[i] as number).toBeGreaterThanOrEqual((r[i - 1] as number) * (1 - 1e-9));
          const moreQ = computeRdp({
            q: Math.min(1, q * 1.5),
            noiseMultiplier: sigma,
            steps: 1,
            orders,
          });
          const moreSigma = computeRdp({ q, noiseMultiplier: sigma * 1.5, steps: 1, orders });
          const tenSteps = computeRdp({ q, noiseMultiplier: sigma, steps: 10, orders });
          r.forEach((v, i) => {
            expect(moreQ[i] as number).toBeGreaterThan(v);
            expect(moreSigma[i] as number).toBeLessThan(v);
            expect(rel(tenSteps[i] as number, 10 * v)).toBeLessThan(1e-12);
          });
        },
      ),
      { numRuns: 40 },
    );
  });

  it('q = 1 is the plain Gaussian mechanism α/(2σ²), q = 0 is free', () => {
    expect(computeRdp({ q: 1, noiseMultiplier: 2, steps: 3, orders: [2.5] })[0]).toBeCloseTo(
      (3 * 2.5) / 8,
      14,
    );
    expect(computeRdp({ q: 0, noiseMultiplier: 2, steps: 3, orders: [2.5] })[0]).toBe(0);
  });

  it('calibrateNoise finds the σ whose ε meets the target', () => {
    const params = { q: 0.01, steps: 1000, delta: 1e-5 };
    const sigma = calibrateNoise({ ...params, targetEpsilon: 2 });
    expect(epsilonFor({ ...params, noiseMultiplier: sigma })).toBeLessThanOrEqual(2);
    expect(epsilonFor({ ...params, noiseMultiplier: sigma * 0.99 })).toBeGreaterThan(2);
  });

  it('the running accountant equals one computeRdp over the same steps', () => {
    const acc = new RdpAccountant(TF_PRIVACY_ORDERS);
    for (let i = 0; i < 100; i++) acc.step(0.02, 1.1);
    const rdp = computeRdp({
      q: 0.02,
      noiseMultiplier: 1.1,
      steps: 100,
      orders: TF_PRIVACY_ORDERS,
    });
    expect(
      rel(
        acc.epsilon(1e-5),
        rdpToEpsilon({ orders: TF_PRIVACY_ORDERS, rdp, delta: 1e-5, conversion: 'improved' })
          .epsilon,
      ),
    ).toBeLessThan(1e-12);
    expect(acc.epsilonAfter(0.02, 1.1, 1e-5)).toBeGreaterThan(acc.epsilon(1e-5));
  });

  it('rejects bad input with LEARN_BAD_CONFIG', () => {
    const bad = [
      () => computeRdp({ q: 1.5, noiseMultiplier: 1, steps: 1, orders: [2] }),
      () => computeRdp({ q: 0.1, noiseMultiplier: -1, steps: 1, orders: [2] }),
      () => computeRdp({ q: 0.1, noiseMultiplier: 1, steps: 1, orders: [0.5] }),
      () => rdpToEpsilon({ orders: [2], rdp: [1, 2], delta: 1e-5, conversion: 'classic' }),
      () => rdpToEpsilon({ orders: [2], rdp: [1], delta: 0, conversion: 'classic' }),
      () => rdpToEpsilon({ orders: [2], rdp: [-1], delta: 1e-5, conversion: 'improved' }),
    ];
    for (const f of bad) {
      let caught: unknown;
      try {
        f();
      } catch (e) {
        caught = e;
      }
      expect(isLearnError(caught, 'LEARN_BAD_CONFIG')).toBe(true);
    }
  });
});
