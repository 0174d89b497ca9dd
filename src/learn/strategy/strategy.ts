/**
 * Aggregation strategies behind one interface, after Flower's `Strategy`: the server asks the
 * strategy what clients should do this round ({@link Strategy.configureFit}) and how to turn
 * their updates into the next global model ({@link Strategy.aggregate}).
 *
 * Mean-based strategies also expose {@link Strategy.fromMean}: the server step given only the
 * weighted mean of client models. That is all secure aggregation and central DP noise reveal,
 * so only these strategies compose with them; robust strategies (median, trimmed mean, Krum)
 * need individual updates and are refused with SecAgg or DP.
 *
 * Every strategy passes the shared compliance suite in test/learn/strategy-compliance.test.ts.
 */
import { LearnError, LearnErrorCode } from '../errors.ts';

/** One client's contribution to a round. */
export interface ClientUpdate {
  readonly clientId: string;
  /** The client's locally trained model parameters (not a delta). */
  readonly params: Float32Array;
  readonly numExamples: number;
}

/** What clients do this round. */
export interface FitConfig {
  /** FedProx proximal coefficient μ (0 = plain local SGD). */
  readonly proximalMu: number;
}

/** An aggregation strategy. */
export interface Strategy {
  readonly name: StrategyName;
  /** True when the strategy resists a fraction of Byzantine updates. */
  readonly robust: boolean;
  configureFit(round: number): FitConfig;
  /**
   * The next global parameters from `global` and the round's validated updates (same length,
   * finite). Must not modify its inputs.
   * @throws {LearnError} `LEARN_TOO_FEW_CLIENTS` when there are not enough updates.
   */
  aggregate(global: Float32Array, updates: readonly ClientUpdate[], round: number): Float32Array;
  /** For mean-based strategies: the next global parameters given the (weighted) mean model. */
  fromMean?(global: Float32Array, mean: Float32Array, round: number): Float32Array;
}

/** Names of the built-in strategies. */
export const STRATEGY_NAMES = [
  'fedavg',
  'fedavgm',
  'fedprox',
  'fedadagrad',
  'fedadam',
  'fedyogi',
  'fedmedian',
  'fedtrimmedavg',
  'krum',
  'multikrum',
] as const;
/** One of {@link STRATEGY_NAMES}. */
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** Options shared by the strategy constructors (each uses the ones it needs). */
export interface StrategyOptions {
  /** Server learning rate η (FedAvgM, FedOpt). */
  readonly serverLr?: number;
  /** Server momentum β (FedAvgM, default 0.9). */
  readonly serverMomentum?: number;
  /** FedOpt β1, β2, τ (Reddi et al. 2021, Algorithm 2). */
  readonly beta1?: number;
  readonly beta2?: number;
  readonly tau?: number;
  /** FedProx μ (default 0.01). */
  readonly proximalMu?: number;
  /** FedTrimmedAvg: fraction cut from each end (default 0.2). */
  readonly trimBeta?: number;
  /** Krum/MultiKrum: assumed Byzantine clients f (default ⌊(n−3)/2⌋ capped at 25 % of n). */
  readonly byzantine?: number;
  /** MultiKrum: updates kept (default n − f). */
  readonly keep?: number;
}

function need(updates: readonly ClientUpdate[], min: number, who: string): void {
  if (updates.length < min) {
    throw new LearnError(
      LearnErrorCode.TooFewClients,
      `${who} needs at least ${min} updates, got ${updates.length}`,
      {
        details: { strategy: who, got: updates.length, min },
      },
    );
  }
}

/** Σ n_i·w_i / Σ n_i (FedAvg, McMahan et al. 2017, Algorithm 1), accumulated in float64. */
export function weightedMean(updates: readonly ClientUpdate[]): Float32Array {
  need(updates, 1, 'weighted mean');
  const len = (updates[0] as ClientUpdate).params.length;
  const acc = new Float64Array(len);
  let total = 0;
  for (const u of updates) {
    const w = u.numExamples;
    total += w;
    const p = u.params;
    for (let i = 0; i < len; i++) acc[i] = (acc[i] as number) + w * (p[i] as number);
  }
  const out = new Float32Array(len);
  if (total <= 0) {
    // All clients report zero examples: fall back to the plain mean.
    for (const u of updates)
      for (let i = 0; i < len; i++)
        out[i] = (out[i] as number) + (u.params[i] as number) / updates.length;
    return out;
  }
  for (let i = 0; i < len; i++) out[i] = (acc[i] as number) / total;
  return out;
}

class FedAvg implements Strategy {
  readonly robust = false;
  constructor(
    readonly name: StrategyName = 'fedavg',
    private readonly mu = 0,
  ) {}
  configureFit(): FitConfig {
    return { proximalMu: this.mu };
  }
  aggregate(global: Float32Array, updates: readonly ClientUpdate[]): Float32Array {
    need(updates, 1, this.name);
    return this.fromMean(global, weightedMean(updates));
  }
  fromMean(_global: Float32Array, mean: Float32Array): Float32Array {
    return Float32Array.from(mean);
  }
}

/** FedAvgM (Hsu et al. 2019): server momentum on the pseudo-gradient Δ = w − mean. */
class FedAvgM implements Strategy {
  readonly name = 'fedavgm';
  readonly robust = false;
  private v: Float32Array | undefined;
  constructor(
    private readonly lr: number,
    private readonly beta: number,
  ) {}
  configureFit(): FitConfig {
    return { proximalMu: 0 };
  }
  aggregate(global: Float32Array, updates: readonly ClientUpdate[]): Float32Array {
    need(updates, 1, this.name);
    return this.fromMean(global, weightedMean(updates));
  }
  fromMean(global: Float32Array, mean: Float32Array): Float32Array {
    const v = this.v ?? new Float32Array(global.length);
    const out = new Float32Array(global.length);
    for (let i = 0; i < global.length; i++) {
      const g = (global[i] as number) - (mean[i] as number);
      const vi = this.beta * (v[i] as number) + g;
      v[i] = vi;
      out[i] = (global[i] as number) - this.lr * vi;
    }
    this.v = v;
    return out;
  }
}

/** FedOpt (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2). */
class FedOpt implements Strategy {
  readonly robust = false;
  private m: Float64Array | undefined;
  private v: Float64Array | undefined;
  constructor(
    readonly name: 'fedadagrad' | 'fedadam' | 'fedyogi',
    private readonly lr: number,
    private readonly beta1: number,
    private readonly beta2: number,
    private readonly tau: number,
  ) {}
  configureFit(): FitConfig {
    return { proximalMu: 0 };
  }
  aggregate(global: Float32Array, updates: readonly ClientUpdate[]): Float32Array {
    need(updates, 1, this.name);
    return this.fromMean(global, weightedMean(updates));
  }
  fromMean(global: Float32Array, mean: Float32Array): Float32Array {
    const n = global.length;
    const m = this.m ?? new Float64Array(n);
    const v = this.v ?? new Float64Array(n).fill(this.tau * this.tau);
    const out = new Float32Array(n);
    const { beta1, beta2 } = this;
    for (let i = 0; i < n; i++) {
      const d = (mean[i] as number) - (global[i] as number);
      const mi = beta1 * (m[i] as number) + (1 - beta1) * d;
      const d2 = d * d;
      let vi = v[i] as number;
      if (this.name === 'fedadagrad') vi += d2;
      else if (this.name === 'fedadam') vi = beta2 * vi + (1 - beta2) * d2;
      else vi -= (1 - beta2) * d2 * Math.sign(vi - d2);
      m[i] = mi;
      v[i] = vi;
      out[i] = (global[i] as number) + (this.lr * mi) / (Math.sqrt(vi) + this.tau);
    }
    this.m = m;
    this.v = v;
    return out;
  }
}

function columnSorted(
  updates: readonly ClientUpdate[],
  i: number,
  buf: Float64Array,
): Float64Array {
  for (let k = 0; k < updates.length; k++)
    buf[k] = (updates[k] as ClientUpdate).params[i] as number;
  return buf.sort();
}

/** Coordinate-wise median (Yin et al. 2018). */
class FedMedian implements Strategy {
  readonly name = 'fedmedian';
  readonly robust = true;
  configureFit(): FitConfig {
    return { proximalMu: 0 };
  }
  aggregate(global: Float32Array, updates: readonly ClientUpdate[]): Float32Array {
    need(updates, 1, this.name);
    const n = updates.length;
    const buf = new Float64Array(n);
    const out = new Float32Array(global.length);
    for (let i = 0; i < global.length; i++) {
      const s = columnSorted(updates, i, buf);
      out[i] =
        n % 2 === 1
          ? (s[(n - 1) / 2] as number)
          : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
    }
    return out;
  }
}

/** Coordinate-wise trimmed mean (Yin et al. 2018): drop the β fraction at each end. */
class FedTrimmedAvg implements Strategy {
  readonly name = 'fedtrimmedavg';
  readonly robust = true;
  constructor(private readonly beta: number) {}
  configureFit(): FitConfig {
    return { proximalMu: 0 };
  }
  aggregate(global: Float32Array, updates: readonly ClientUpdate[]): Float32Array {
    need(updates, 1, this.name);
    const n = updates.length;
    const cut = Math.floor(this.beta * n);
    const keep = n - 2 * cut;
    const buf = new Float64Array(n);
    const out = new Float32Array(global.length);
    for (let i = 0; i < global.length; i++) {
      const s = columnSorted(updates, i, buf);
      let sum = 0;
      for (let k = cut; k < n - cut; k++) sum += s[k] as number;
      out[i] = sum / keep;
    }
    return out;
  }
}

/** Default f for Krum: the largest f with n > 2f + 2, capped at a quarter of n. */
function defaultByzantine(n: number): number {
  return Math.max(0, Math.min(Math.floor((n - 3) / 2), Math.floor(n / 4)));
}

/** Krum scores (Blanchard et al. 2017): sum of squared distances to the n − f − 2 nearest. */
export function krumScores(updates: readonly ClientUpdate[], f: number): number[] {
  const n = updates.length;
  const dist = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    const pa = (updates[a] as ClientUpdate).params;
    for (let b = a + 1; b < n; b++) {
      const pb = (updates[b] as ClientUpdate).params;
      let s = 0;
      for (let i = 0; i < pa.length; i++) {
        const d = (pa[i] as number) - (pb[i] as number);
        s += d * d;
      }
      dist[a * n + b] = s;
      dist[b * n + a] = s;
    }
  }
  const nearest = Math.max(1, n - f - 2);
  const scores: number[] = [];
  const row = new Float64Array(n - 1);
  for (let a = 0; a < n; a++) {
    let k = 0;
    for (let b = 0; b < n; b++) if (b !== a) row[k++] = dist[a * n + b] as number;
    row.sort();
    let s = 0;
    for (let j = 0; j < Math.min(nearest, row.length); j++) s += row[j] as number;
    scores.push(s);
  }
  return scores;
}

/** Krum (keep = 1) and Multi-Krum (keep = m, weighted mean of the m best-scored updates). */
class Krum implements Strategy {
  readonly robust = true;
  constructor(
    readonly name: 'krum' | 'multikrum',
    private readonly f: number | undefined,
    private readonly keep: number | undefined,
  ) {}
  configureFit(): FitConfig {
    return { proximalMu: 0 };
  }
  aggregate(_global: Float32Array, updates: readonly ClientUpdate[]): Float32Array {
    need(updates, 1, this.name);
    const n = updates.length;
    const f = Math.min(this.f ?? defaultByzantine(n), defaultByzantine(n));
    const scores = krumScores(updates, f);
    const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const m = this.name === 'krum' ? 1 : Math.max(1, Math.min(n, this.keep ?? n - f));
    const chosen = order.slice(0, m).map(([, i]) => updates[i] as ClientUpdate);
    if (m === 1) return Float32Array.from((chosen[0] as ClientUpdate).params);
    return weightedMean(chosen);
  }
}

/**
 * Builds a strategy by name with Flower's defaults where Flower has them.
 * @throws {LearnError} `LEARN_BAD_CONFIG` for an unknown name or out-of-range option.
 */
export function createStrategy(name: string, o: StrategyOptions = {}): Strategy {
  const between = (v: number, lo: number, hi: number, field: string): number => {
    if (!(v >= lo && v <= hi))
      throw new LearnError(
        LearnErrorCode.BadConfig,
        `${field} must be in [${lo}, ${hi}], got ${v}`,
        { details: { field } },
      );
    return v;
  };
  switch (name) {
    case 'fedavg':
      return new FedAvg('fedavg');
    case 'fedprox':
      return new FedAvg('fedprox', between(o.proximalMu ?? 0.01, 0, 100, 'proximalMu'));
    case 'fedavgm':
      return new FedAvgM(
        between(o.serverLr ?? 1, 0, 100, 'serverLr'),
        between(o.serverMomentum ?? 0.9, 0, 0.999, 'serverMomentum'),
      );
    case 'fedadagrad':
      return new FedOpt(
        'fedadagrad',
        o.serverLr ?? 0.1,
        between(o.beta1 ?? 0, 0, 0.999, 'beta1'),
        0,
        between(o.tau ?? 1e-2, 1e-12, 1, 'tau'),
      );
    case 'fedadam':
      return new FedOpt(
        'fedadam',
        o.serverLr ?? 0.05,
        between(o.beta1 ?? 0.9, 0, 0.999, 'beta1'),
        between(o.beta2 ?? 0.99, 0, 0.9999, 'beta2'),
        between(o.tau ?? 1e-2, 1e-12, 1, 'tau'),
      );
    case 'fedyogi':
      return new FedOpt(
        'fedyogi',
        o.serverLr ?? 0.05,
        between(o.beta1 ?? 0.9, 0, 0.999, 'beta1'),
        between(o.beta2 ?? 0.99, 0, 0.9999, 'beta2'),
        between(o.tau ?? 1e-2, 1e-12, 1, 'tau'),
      );
    case 'fedmedian':
      return new FedMedian();
    case 'fedtrimmedavg':
      return new FedTrimmedAvg(between(o.trimBeta ?? 0.2, 0, 0.49, 'trimBeta'));
    case 'krum':
      return new Krum('krum', o.byzantine, 1);
    case 'multikrum':
      return new Krum('multikrum', o.byzantine, o.keep);
    default:
      throw new LearnError(
        LearnErrorCode.BadConfig,
        `unknown strategy "${name}"; one of ${STRATEGY_NAMES.join(', ')}`,
        { details: { field: 'strategy', name } },
      );
  }
}
