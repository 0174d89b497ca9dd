/**
 * The RDP accountant of the sampled Gaussian mechanism (SGM), as TensorFlow Privacy, Google's
 * dp_accounting and Opacus compute it.
 *
 * Mironov, Talwar, Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism" (2019)
 * give A_α = E_{z∼μ0}[(μ(z)/μ0(z))^α] with μ = (1−q)μ0 + qμ1, and RDP(α) = log(A_α)/(α−1).
 * For integer α, A_α is the binomial sum of Section 3.3; for fractional α it is the two-sided
 * series of Section 3.3 (integrals split at z0 = σ²·log(1/q − 1) + 1/2), evaluated in log space
 * with log-erfc so that no term under- or overflows. Steps compose additively (RDP composition).
 *
 * Conversions to (ε, δ):
 * - `classic`: Mironov 2017, Proposition 3: ε = RDP(α) − log δ / (α − 1).
 * - `improved`: Balle, Barthe, Gaboardi, Hsu, Sato 2020 ("Hypothesis testing interpretations and
 *   Rényi DP"), Proposition 12 / Canonne et al. 2020 eq. 20:
 *   ε = RDP(α) + log1p(−1/α) − log(δ·α)/(α − 1), with dp_accounting's guards (ε = 0 when the
 *   KL bound already gives δ, +∞ for α ≤ 1.01 where the bound is numerically unstable).
 */
import { LearnError, LearnErrorCode } from '../errors.ts';

/** TF Privacy's `compute_dp_sgd_privacy` orders: 1.25…4.5, 5…63, 128, 256, 512. */
export const TF_PRIVACY_ORDERS: readonly number[] = Object.freeze([
  1.25,
  1.5,
  1.75,
  2,
  2.25,
  2.5,
  3,
  3.5,
  4,
  4.5,
  ...Array.from({ length: 59 }, (_, i) => 5 + i),
  128,
  256,
  512,
]);

/** Opacus' `DEFAULT_ALPHAS`: 1.1, 1.2, …, 10.9, then 12…63. */
export const OPACUS_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
]);

/** Default orders of this accountant (Opacus' list: dense where the optimum usually lies). */
export const DEFAULT_ORDERS: readonly number[] = OPACUS_ORDERS;

/** Bound on the terms of the fractional-order series (each term adds one binomial term). */
export const RDP_FRAC_SERIES_TERMS_MAX = 100_000;
/** The fractional series stops once both new log-terms fall below this (as TF Privacy). */
const RDP_FRAC_LOG_TERM_MIN = -30;
/** Largest order accepted; larger orders never give a useful bound for realistic δ. */
export const RDP_ORDER_MAX = 1_000_000;
/** Bisection iterations of {@link calibrateNoise}; 200 halvings exhaust double precision. */
export const CALIBRATE_ITERATIONS_MAX = 200;

/** Input of {@link computeRdp}. */
export interface ComputeRdpInput {
  /** Sampling probability of each record (or client) per step, in [0, 1]. */
  readonly q: number;
  /** Ratio of the Gaussian noise's standard deviation to the L2 sensitivity. */
  readonly noiseMultiplier: number;
  /** Number of compositions (steps or rounds). */
  readonly steps: number;
  /** Rényi orders α > 1. */
  readonly orders: readonly number[];
}

/** Input of {@link rdpToEpsilon}. */
export interface RdpToEpsilonInput {
  readonly orders: readonly number[];
  readonly rdp: readonly number[];
  readonly delta: number;
  readonly conversion: 'classic' | 'improved';
}

function bad(message: string, details: Record<string, unknown>): LearnError {
  return new LearnError(LearnErrorCode.BadConfig, message, { details });
}

/** log(exp(x) + exp(y)) without overflow. */
function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === Number.NEGATIVE_INFINITY) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(exp(x) − exp(y)) for x ≥ y. */
function logSub(x: number, y: number): number {
  if (x < y) throw bad('log-space subtraction of a larger term (numerical breakdown)', { x, y });
  if (y === Number.NEGATIVE_INFINITY) return x;
  if (x === y) return Number.NEGATIVE_INFINITY;
  const d = Math.expm1(x - y);
  // expm1 overflows only when x ≫ y, where the difference equals x to double precision.
  return Number.isFinite(d) ? Math.log(d) + y : x;
}

/**
 * erfc(x) for x ≥ 0 scaled by exp(x²) (the "erfcx" function), to full double precision:
 * the positive Maclaurin-type series of erf for small x (no cancellation), Lentz's continued
 * fraction (Abramowitz & Stegun 7.1.14) for large x.
 */
function erfcScaled(x: number): number {
  if (x < 2.5) {
    // erf(x) = 2/√π · e^{−x²} · Σ (2x²)^n x / (1·3·…·(2n+1))   (A&S 7.1.6)
    let term = x;
    let sum = x;
    const x2 = 2 * x * x;
    for (let n = 1; n < 500; n++) {
      term *= x2 / (2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    const erf = (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
    return (1 - erf) * Math.exp(x * x);
  }
  // erfc(x)·e^{x²}·√π = 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …)))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 10_000; k++) {
    const a = k / 2;
    d = x + a * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return 1 / (f * Math.sqrt(Math.PI));
}

/** log(erfc(x)) for any real x, accurate in both tails. */
export function logErfc(x: number): number {
  if (x >= 0) return Math.log(erfcScaled(x)) - x * x;
  // erfc(−y) = 2 − erfc(y); for y ≥ 0 the result lies in [1, 2], so no cancellation.
  const y = -x;
  return Math.log(2 - erfcScaled(y) * Math.exp(-y * y));
}

/** log A_α for integer α (binomial expansion, Mironov et al. 2019 Section 3.3). */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = Number.NEGATIVE_INFINITY;
  let logBinom = 0; // log C(α, 0)
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log((alpha - i + 1) / i);
    const s = logBinom + i * lq + (alpha - i) * l1q + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** log A_α for fractional α (two-sided series, Mironov et al. 2019 Section 3.3). */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = Number.NEGATIVE_INFINITY;
  let logA1 = Number.NEGATIVE_INFINITY;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  const s2 = Math.SQRT2 * sigma;
  let coef = 1; // C(α, i), generalized binomial coefficient, built by recurrence
  for (let i = 0; i < RDP_FRAC_SERIES_TERMS_MAX; i++) {
    if (i > 0) coef *= (alpha - i + 1) / i;
    const logCoef = Math.log(Math.abs(coef));
    const j = alpha - i;
    const logT0 = logCoef + i * lq + j * l1q;
    const logT1 = logCoef + j * lq + i * l1q;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / s2);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / s2);
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (coef > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < RDP_FRAC_LOG_TERM_MIN) return logAdd(logA0, logA1);
  }
  throw bad('fractional RDP series did not converge', { q, sigma, alpha });
}

/** RDP of one step of the sampled Gaussian mechanism at order `alpha`. */
export function rdpSampledGaussianStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Number.POSITIVE_INFINITY;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (!Number.isFinite(alpha)) return Number.POSITIVE_INFINITY;
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

/**
 * RDP of `steps` compositions of the sampled Gaussian mechanism, one value per order.
 * @throws {LearnError} `LEARN_BAD_CONFIG` for q outside [0, 1], negative σ or steps, orders ≤ 1.
 * @example computeRdp({ q: 0.01, noiseMultiplier: 1.1, steps: 1000, orders: [2, 4, 8] })
 */
export function computeRdp(input: ComputeRdpInput): number[] {
  const { q, noiseMultiplier: sigma, steps, orders } = input;
  if (!(q >= 0 && q <= 1)) throw bad(`q must be in [0, 1], got ${q}`, { field: 'q', q });
  if (!(sigma >= 0) || !Number.isFinite(sigma))
    throw bad(`noiseMultiplier must be ≥ 0 and finite, got ${sigma}`, { field: 'noiseMultiplier' });
  if (!(steps >= 0) || !Number.isFinite(steps))
    throw bad(`steps must be ≥ 0, got ${steps}`, { field: 'steps' });
  if (orders.length === 0) throw bad('orders must not be empty', { field: 'orders' });
  return orders.map((alpha) => {
    if (alpha === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
    if (!(alpha > 1 && alpha <= RDP_ORDER_MAX))
      throw bad(`order must be in (1, ${RDP_ORDER_MAX}], got ${alpha}`, { field: 'orders', alpha });
    return rdpSampledGaussianStep(q, sigma, alpha) * steps;
  });
}

/** ε of one order under one conversion; +∞ where the bound does not apply. */
function epsilonAt(
  alpha: number,
  rdp: number,
  delta: number,
  conversion: 'classic' | 'improved',
): number {
  if (Number.isNaN(rdp)) return Number.NaN;
  if (conversion === 'classic') return rdp - Math.log(delta) / (alpha - 1);
  // dp_accounting: when δ ≥ sqrt(1 − e^{−KL}) the KL bound already gives ε = 0.
  if (delta * delta + Math.expm1(-rdp) > 0) return 0;
  if (alpha > 1.01) return rdp + Math.log1p(-1 / alpha) - Math.log(delta * alpha) / (alpha - 1);
  return Number.POSITIVE_INFINITY;
}

/**
 * Converts RDP at several orders to (ε, δ)-DP, returning the smallest ε and its order.
 * @throws {LearnError} `LEARN_BAD_CONFIG` for δ outside (0, 1), mismatched lengths, negative RDP.
 */
export function rdpToEpsilon(input: RdpToEpsilonInput): { epsilon: number; order: number } {
  const { orders, rdp, delta, conversion } = input;
  if (orders.length !== rdp.length || orders.length === 0) {
    throw bad(
      `orders (${orders.length}) and rdp (${rdp.length}) must be non-empty and of equal length`,
      { field: 'rdp' },
    );
  }
  if (!(delta > 0 && delta < 1))
    throw bad(`delta must be in (0, 1), got ${delta}`, { field: 'delta', delta });
  if (conversion !== 'classic' && conversion !== 'improved')
    throw bad(`unknown conversion "${String(conversion)}"`, { field: 'conversion' });
  let best = Number.POSITIVE_INFINITY;
  let bestOrder = Number.NaN;
  for (let i = 0; i < orders.length; i++) {
    const alpha = orders[i] as number;
    const r = rdp[i] as number;
    if (!(alpha >= 1)) throw bad(`order must be ≥ 1, got ${alpha}`, { field: 'orders', alpha });
    if (r < 0) throw bad(`RDP must be ≥ 0, got ${r}`, { field: 'rdp', rdp: r });
    const eps = epsilonAt(alpha, r, delta, conversion);
    // NaN never wins (numpy's nanargmin); ties keep the first order (argmin).
    if (eps < best || (Number.isNaN(bestOrder) && !Number.isNaN(eps))) {
      best = eps;
      bestOrder = alpha;
    }
  }
  return { epsilon: Math.max(0, best), order: bestOrder };
}

/** Options of {@link epsilonFor} and {@link calibrateNoise}. */
export interface PrivacyParams {
  readonly q: number;
  readonly steps: number;
  readonly delta: number;
  readonly orders?: readonly number[];
  readonly conversion?: 'classic' | 'improved';
}

/** ε after `steps` steps at noise multiplier `noiseMultiplier` (improved conversion by default). */
export function epsilonFor(params: PrivacyParams & { readonly noiseMultiplier: number }): number {
  const orders = params.orders ?? DEFAULT_ORDERS;
  const rdp = computeRdp({
    q: params.q,
    noiseMultiplier: params.noiseMultiplier,
    steps: params.steps,
    orders,
  });
  return rdpToEpsilon({
    orders,
    rdp,
    delta: params.delta,
    conversion: params.conversion ?? 'improved',
  }).epsilon;
}

/**
 * The smallest noise multiplier whose ε after `steps` steps is at most `targetEpsilon`
 * (bisection on σ, ε being decreasing in σ), to a relative tolerance of `tolerance`.
 * @throws {LearnError} `LEARN_BAD_CONFIG` when the target is not positive or not reachable.
 */
export function calibrateNoise(
  params: PrivacyParams & { readonly targetEpsilon: number; readonly tolerance?: number },
): number {
  const target = params.targetEpsilon;
  if (!(target > 0) || !Number.isFinite(target))
    throw bad(`target ε must be > 0 and finite, got ${target}`, { field: 'targetEpsilon' });
  const tol = params.tolerance ?? 1e-6;
  let hi = 1;
  let guard = 0;
  while (epsilonFor({ ...params, noiseMultiplier: hi }) > target) {
    hi *= 2;
    if (++guard > 40)
      throw bad(`no noise multiplier ≤ ${hi} reaches ε = ${target}`, { targetEpsilon: target });
  }
  let lo = 0;
  for (let i = 0; i < CALIBRATE_ITERATIONS_MAX && hi - lo > tol * hi; i++) {
    const mid = (lo + hi) / 2;
    if (epsilonFor({ ...params, noiseMultiplier: mid }) > target) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * A running accountant: one composition of the sampled Gaussian mechanism per step, with the
 * RDP vector kept so ε can be read after every round. Heterogeneous steps (q or σ changing
 * between rounds, as with adaptive clipping's noise split) compose by adding RDP vectors.
 */
export class RdpAccountant {
  private readonly rdp: number[];
  private stepsTaken = 0;

  constructor(readonly orders: readonly number[] = DEFAULT_ORDERS) {
    this.rdp = orders.map(() => 0);
  }

  /** Composes `steps` steps at sampling rate `q` and noise multiplier `noiseMultiplier`. */
  step(q: number, noiseMultiplier: number, steps = 1): void {
    const add = computeRdp({ q, noiseMultiplier, steps, orders: this.orders });
    for (let i = 0; i < add.length; i++) this.rdp[i] = (this.rdp[i] as number) + (add[i] as number);
    this.stepsTaken += steps;
  }

  /** ε spent so far at `delta`. */
  epsilon(delta: number, conversion: 'classic' | 'improved' = 'improved'): number {
    if (this.stepsTaken === 0) return 0;
    return rdpToEpsilon({ orders: this.orders, rdp: this.rdp, delta, conversion }).epsilon;
  }

  /** ε that one more step would bring the total to (for stopping before the budget is crossed). */
  epsilonAfter(
    q: number,
    noiseMultiplier: number,
    delta: number,
    conversion: 'classic' | 'improved' = 'improved',
  ): number {
    const add = computeRdp({ q, noiseMultiplier, steps: 1, orders: this.orders });
    const rdp = this.rdp.map((r, i) => r + (add[i] as number));
    return rdpToEpsilon({ orders: this.orders, rdp, delta, conversion }).epsilon;
  }

  get steps(): number {
    return this.stepsTaken;
  }
}
