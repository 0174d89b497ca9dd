/**
 * Parameter choice and neighbourhood graph of SecAgg+ (Bell et al. 2020, §3–4).
 *
 * Graph: a Harary graph H(n, k) on a uniformly random permutation of the clients — a ring where
 * each client links to its k/2 nearest clients on each side. It is k-regular, and because the
 * ring order is random, the neighbourhood of any fixed client is a uniform k-subset of the
 * others; the number of corrupt (or dropped) neighbours is therefore hypergeometric, which is
 * what the bounds below use.
 *
 * For every client u with C corrupt and D dropped-or-withholding neighbours, the round is:
 * - secure if C ≤ 2t − k − 1. A lying server can ask each honest neighbour for only one of
 *   u's two secrets (the consistency check stops it asking one neighbour for both), so it
 *   gets both secrets only with h_b + C ≥ t and h_s + C ≥ t where h_b + h_s ≤ k − C, i.e.
 *   C ≥ 2t − k. This also implies C < t (no coalition rebuilds a secret alone).
 * - correct if D ≤ k − t (u keeps at least t neighbours that answer).
 * - private beyond the sum only if the honest survivors stay connected: removing a fraction
 *   ρ = γ + δ of the ring disconnects H(n, k) only if two disjoint runs of k/2 consecutive
 *   ring positions are all removed, probability ≤ n²·ρ^k (union bound over start pairs).
 * Each per-client bound is union-bounded over the n clients. Bonawitz's full protocol is the
 * case k = n − 1, where the hypergeometric counts are exact (worst case: every corrupt client
 * is a neighbour).
 */
import type { Rng } from '../../core/index.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { SECAGG_CLIENTS_MAX } from './limits.ts';
import type { SecAggMode, SecAggThreatModel } from './types.ts';

/** Default threat model (see {@link SecAggThreatModel}). */
export const SECAGG_THREAT_DEFAULT: Required<SecAggThreatModel> = {
  dropoutRate: 0.1,
  corruptFraction: 0.05,
  securityBits: 40,
  correctnessBits: 20,
};

/** A chosen parameter set, with the bounds it achieves (log2 of failure probabilities). */
export interface SecAggParams {
  readonly mode: SecAggMode;
  readonly n: number;
  /** Neighbourhood degree (n − 1 in full mode). */
  readonly k: number;
  /** Shamir threshold. */
  readonly t: number;
  /** log2 of the probability that some client has ≥ 2t − k corrupt neighbours. */
  readonly log2InsecureBound: number;
  /** log2 of the probability that some client keeps fewer than t answering neighbours. */
  readonly log2FailureBound: number;
  /** log2 of the probability that the honest survivors' graph is disconnected (−∞ in full mode). */
  readonly log2DisconnectedBound: number;
}

const LOG2E = Math.LOG2E;

function logFactorials(n: number): Float64Array {
  const out = new Float64Array(n + 1);
  for (let i = 2; i <= n; i++) out[i] = (out[i - 1] as number) + Math.log(i);
  return out;
}

/** Natural-log tail P[X ≥ a] of the hypergeometric distribution (population N, K marked, k draws). */
function hypergeomLogTail(
  lf: Float64Array,
  populationN: number,
  marked: number,
  draws: number,
  a: number,
): number {
  const lc = (x: number, y: number): number =>
    (lf[x] as number) - (lf[y] as number) - (lf[x - y] as number);
  const hi = Math.min(draws, marked);
  const lo = Math.max(a, 0, draws - (populationN - marked));
  if (lo > hi) return Number.NEGATIVE_INFINITY;
  const total = lc(populationN, draws);
  let max = Number.NEGATIVE_INFINITY;
  const terms: number[] = [];
  for (let x = lo; x <= hi; x++) {
    const v = lc(marked, x) + lc(populationN - marked, draws - x) - total;
    terms.push(v);
    if (v > max) max = v;
  }
  let s = 0;
  for (const v of terms) s += Math.exp(v - max);
  return max + Math.log(s);
}

/** Smallest c such that P[X > c] ≤ 2^log2Bound (a high quantile), by scanning from the top. */
function quantile(
  lf: Float64Array,
  populationN: number,
  marked: number,
  draws: number,
  log2Bound: number,
): number {
  let c = Math.min(draws, marked);
  while (c > 0 && hypergeomLogTail(lf, populationN, marked, draws, c) * LOG2E <= log2Bound) c--;
  return c;
}

function validateThreat(n: number, threat: SecAggThreatModel): Required<SecAggThreatModel> {
  const th = { ...SECAGG_THREAT_DEFAULT, ...threat };
  const bad = (field: string, why: string): never => {
    throw new SecAggError(SecAggErrorCode.BadConfig, `${field} ${why}`, { details: { field } });
  };
  if (!Number.isInteger(n) || n < 2 || n > SECAGG_CLIENTS_MAX)
    bad('n', `must be an integer in [2, ${SECAGG_CLIENTS_MAX}]`);
  if (!(th.dropoutRate >= 0 && th.dropoutRate < 1)) bad('dropoutRate', 'must be in [0, 1)');
  if (!(th.corruptFraction >= 0 && th.corruptFraction < 1))
    bad('corruptFraction', 'must be in [0, 1)');
  if (th.dropoutRate + th.corruptFraction >= 1) bad('dropoutRate', '+ corruptFraction must be < 1');
  if (!(th.securityBits > 0 && th.securityBits <= 256)) bad('securityBits', 'must be in (0, 256]');
  if (!(th.correctnessBits > 0 && th.correctnessBits <= 256))
    bad('correctnessBits', 'must be in (0, 256]');
  return th;
}

/** Evaluates (k, t) for n clients: the smallest secure t and whether it is also correct. */
function evaluate(
  lf: Float64Array,
  n: number,
  k: number,
  th: Required<SecAggThreatModel>,
): SecAggParams | undefined {
  const others = n - 1;
  const corrupt = Math.ceil(th.corruptFraction * others);
  const removed = Math.min(others, Math.ceil((th.corruptFraction + th.dropoutRate) * others));
  const log2n = Math.log2(n);
  const cStar = quantile(lf, others, corrupt, k, -th.securityBits - log2n);
  const dStar = quantile(lf, others, removed, k, -th.correctnessBits - log2n);
  const t = Math.max(1, Math.floor((k + cStar) / 2) + 1);
  if (t > k - dStar || t > k) return undefined;
  const full = k === others;
  const rho = removed / others;
  return {
    mode: full ? 'full' : 'plus',
    n,
    k,
    t,
    log2InsecureBound: Math.min(
      0,
      hypergeomLogTail(lf, others, corrupt, k, 2 * t - k) * LOG2E + log2n,
    ),
    log2FailureBound: Math.min(
      0,
      hypergeomLogTail(lf, others, removed, k, k - t + 1) * LOG2E + log2n,
    ),
    log2DisconnectedBound: full
      ? Number.NEGATIVE_INFINITY
      : Math.min(0, 2 * log2n + k * Math.log2(rho)),
  };
}

/**
 * Chooses the threshold t (and, for SecAgg+, the smallest even degree k) that meet the threat
 * model for n clients. In `'plus'` mode, when no k < n − 1 suffices, the complete graph (full
 * SecAgg) is returned with `mode: 'full'`.
 * @throws {SecAggError} SECAGG_PARAMS_INFEASIBLE when even the complete graph cannot meet it.
 */
export function chooseSecAggParams(
  n: number,
  mode: SecAggMode,
  threat: SecAggThreatModel = {},
): SecAggParams {
  const th = validateThreat(n, threat);
  const lf = logFactorials(n);
  if (mode === 'plus') {
    for (let k = 2; k < n - 1; k += 2) {
      const p = evaluate(lf, n, k, th);
      if (p !== undefined && p.log2DisconnectedBound <= -th.securityBits) return p;
    }
  }
  const p = evaluate(lf, n, n - 1, th);
  if (p === undefined) {
    throw new SecAggError(
      SecAggErrorCode.ParamsInfeasible,
      `no threshold meets the threat model for n = ${n}`,
      { details: { n, ...th } },
    );
  }
  return p;
}

/**
 * Neighbourhoods of the Harary graph H(n, k) on a random permutation of `ids` (Bell et al. 2020
 * use a random k-regular graph). k must be even and < n − 1; otherwise the complete graph is
 * returned. Result: id → sorted neighbour ids (never the id itself).
 */
export function buildNeighbourhoods(
  ids: readonly number[],
  k: number,
  rng: Rng,
): Map<number, number[]> {
  const n = ids.length;
  const out = new Map<number, number[]>();
  if (k >= n - 1) {
    const sorted = [...ids].sort((a, b) => a - b);
    for (const id of ids)
      out.set(
        id,
        sorted.filter((x) => x !== id),
      );
    return out;
  }
  if (k % 2 !== 0 || k < 2)
    throw new SecAggError(SecAggErrorCode.BadConfig, `neighbours ${k} must be even and ≥ 2`, {
      details: { field: 'neighbours' },
    });
  const ring = [...ids];
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [ring[i], ring[j]] = [ring[j] as number, ring[i] as number];
  }
  for (let i = 0; i < n; i++) {
    const nb: number[] = [];
    for (let d = 1; d <= k / 2; d++)
      nb.push(ring[(i + d) % n] as number, ring[(i - d + n) % n] as number);
    out.set(
      ring[i] as number,
      nb.sort((a, b) => a - b),
    );
  }
  return out;
}
