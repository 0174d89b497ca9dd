/**
 * One aggregation step shared by the flat simulator and the hierarchical aggregators: the
 * update guard, Byzantine poisoning (for experiments), DP clipping and noise, secure
 * aggregation, and the strategy's server step. Mean-based strategies stream their updates into
 * a float64 accumulator when nothing needs them individually, so memory stays O(model) however
 * many clients report.
 */
import type { Logger, Rng } from '../../core/index.ts';
import { addGaussianNoise, type DpFedAvg } from '../dp/dp-fedavg.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';
import { type ReceivedUpdate, UpdateGuard } from '../guard.ts';
import { type SecAggStage, secureAggregate } from '../secagg/index.ts';
import type { ClientUpdate, Strategy } from '../strategy/strategy.ts';
import type { AttackKind, SecAggSetting } from './config.ts';

/** What one aggregation step produced. */
export interface StepOutcome {
  /** Next global parameters (unchanged global when the step failed). */
  readonly params: Float32Array;
  /** Updates aggregated. */
  readonly used: number;
  /** Sum of example counts of the used updates. */
  readonly examples: number;
  /** Clients that vanished (before upload, or during secure aggregation). */
  readonly dropped: number;
  readonly rejected: number;
  /** Set when the step could not produce a model (secure aggregation abort, too few clients). */
  readonly failure?: string;
  /** Fraction of DP deltas that fit under the clip (NaN without DP). */
  readonly unclippedFraction: number;
  readonly secaggMs: number;
}

/** Poisons a Byzantine client's model in place (sign flip ×4, noise σ=5, or scale ×20 of its delta). */
export function poison(
  params: Float32Array,
  global: Float32Array,
  attack: AttackKind,
  rng: Rng,
): void {
  for (let i = 0; i < params.length; i++) {
    const d = (params[i] as number) - (global[i] as number);
    if (attack === 'sign-flip') params[i] = (global[i] as number) - 4 * d;
    else if (attack === 'scale') params[i] = (global[i] as number) + 20 * d;
    else params[i] = (global[i] as number) + 5 * gaussianOf(rng);
  }
}

function gaussianOf(rng: Rng): number {
  const u = 1 - rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat());
}

/** Components of an {@link Aggregation}. */
export interface AggregationInit {
  readonly strategy: Strategy;
  readonly secagg: SecAggSetting;
  readonly dp: DpFedAvg | undefined;
  /** Expected clients per step (the DP denominator; sampling-rate × population). */
  readonly expectedClients: number;
  /** Expected fraction of clients that vanish (sizes distributed noise shares). */
  readonly dropoutRate: number;
  readonly paramCount: number;
  /**
   * Updates are already-clipped means with meaningful weights (tile counts): the hierarchical
   * global aggregator, whose region updates are means of tile deltas clipped at the tiles.
   */
  readonly dpPreClipped?: boolean;
  readonly rng: Rng;
  readonly logger?: Logger;
}

/**
 * Collects one step's updates and turns them into the next global model. Call {@link begin},
 * {@link add} per arriving update, {@link dropout} per vanished client, then {@link finish}.
 */
export class Aggregation {
  readonly guard: UpdateGuard;
  private global: Float32Array = new Float32Array(0);
  private sum: Float64Array = new Float64Array(0);
  private totalWeight = 0;
  private used = 0;
  private examples = 0;
  private dropped = 0;
  private unclipped = 0;
  private readonly kept: ClientUpdate[] = [];
  private readonly keptWeights: number[] = [];
  private readonly vanishAt = new Map<number, SecAggStage>();
  /** Σ weights behind the last finished step (examples, or clients under DP). */
  weightOfLastStep = 0;

  constructor(private readonly init: AggregationInit) {
    this.guard = new UpdateGuard(init.paramCount, init.logger);
  }

  private get individual(): boolean {
    return this.init.secagg !== 'off' || this.init.strategy.fromMean === undefined;
  }

  /** Starts a step from the current global model. */
  begin(round: number, global: Float32Array): void {
    this.guard.beginRound(round);
    this.global = global;
    this.sum = new Float64Array(this.individual ? 0 : global.length);
    this.totalWeight = 0;
    this.used = 0;
    this.examples = 0;
    this.dropped = 0;
    this.unclipped = 0;
    this.kept.length = 0;
    this.keptWeights.length = 0;
    this.vanishAt.clear();
  }

  /** A sampled client vanished before uploading. */
  dropout(): void {
    this.dropped++;
  }

  /**
   * Offers one update (its `params` may be modified in place). Rejected updates are counted by
   * the guard; accepted ones are clipped (DP) and accumulated.
   * @param vanishAt for secure aggregation: the stage at which this client will vanish.
   */
  add(update: ReceivedUpdate, vanishAt?: SecAggStage): void {
    if (this.guard.filter([update]).length === 0) return;
    const dp = this.init.dp;
    const p = update.params;
    const robust = this.init.strategy.fromMean === undefined;
    if (!robust)
      for (let i = 0; i < p.length; i++) p[i] = (p[i] as number) - (this.global[i] as number);
    let weight = update.numExamples;
    if (dp !== undefined && this.init.dpPreClipped === true) this.unclipped++;
    else if (dp !== undefined) {
      if (dp.clipDelta(p)) this.unclipped++;
      // DP-FedAvg weights clients uniformly so one client's influence is bounded by C.
      weight = 1;
    }
    this.used++;
    this.examples += update.numExamples;
    if (!this.individual) {
      for (let i = 0; i < p.length; i++)
        this.sum[i] = (this.sum[i] as number) + weight * (p[i] as number);
      this.totalWeight += weight;
      return;
    }
    if (vanishAt !== undefined) this.vanishAt.set(this.kept.length, vanishAt);
    this.kept.push(update);
    this.keptWeights.push(Math.max(weight, 1e-9));
  }

  /** Produces the next global model. Never throws for expected failures: see `failure`. */
  async finish(round: number): Promise<StepOutcome> {
    const t0 = performance.now();
    let secaggMs = 0;
    const base = {
      used: this.used,
      examples: this.examples,
      rejected: this.guard.rejectedTotal,
      unclippedFraction:
        this.init.dp === undefined
          ? Number.NaN
          : this.used === 0
            ? Number.NaN
            : this.unclipped / this.used,
    };
    const failed = (failure: string, extraDropped = 0): StepOutcome => ({
      ...base,
      params: this.global,
      dropped: this.dropped + extraDropped,
      failure,
      secaggMs,
    });
    this.weightOfLastStep = 0;
    if (this.used === 0) return failed('no usable updates');
    const strategy = this.init.strategy;
    if (strategy.fromMean === undefined) {
      try {
        return {
          ...base,
          params: strategy.aggregate(this.global, this.kept, round),
          dropped: this.dropped,
          secaggMs,
        };
      } catch (e) {
        if (e instanceof LearnError) return failed(e.message);
        throw e;
      }
    }
    let meanDelta: Float32Array;
    let sumWeight: number;
    let extraDropped = 0;
    if (this.init.secagg === 'off') {
      meanDelta = new Float32Array(this.sum.length);
      for (let i = 0; i < meanDelta.length; i++)
        meanDelta[i] = (this.sum[i] as number) / this.totalWeight;
      sumWeight = this.totalWeight;
    } else {
      const r = await this.secure();
      secaggMs = performance.now() - t0;
      extraDropped = r.dropped;
      if (r.failure !== undefined)
        return failed(`secure aggregation aborted: ${r.failure}`, extraDropped);
      meanDelta = r.mean;
      sumWeight = r.weight;
    }
    this.weightOfLastStep = sumWeight;
    const dp = this.init.dp;
    if (dp !== undefined) {
      // Fixed denominator m (McMahan et al. 2018): Σ clipped deltas / m, noise on the sum.
      const m = Math.max(1, this.init.expectedClients);
      for (let i = 0; i < meanDelta.length; i++)
        meanDelta[i] = ((meanDelta[i] as number) * sumWeight) / m;
      if (dp.config.placement === 'central')
        addGaussianNoise(meanDelta, dp.sumNoiseStd(m) / m, this.init.rng);
      dp.updateClip(this.unclipped, this.used, m, this.init.rng);
    }
    const mean = new Float32Array(meanDelta.length);
    for (let i = 0; i < mean.length; i++)
      mean[i] = (this.global[i] as number) + (meanDelta[i] as number);
    return {
      ...base,
      params: strategy.fromMean(this.global, mean, round),
      dropped: this.dropped + extraDropped,
      secaggMs,
    };
  }

  private async secure(): Promise<{
    mean: Float32Array;
    weight: number;
    dropped: number;
    failure?: string;
  }> {
    const dp = this.init.dp;
    const m = Math.max(1, this.init.expectedClients);
    const share =
      dp !== undefined && dp.config.placement === 'distributed'
        ? dp.clientNoiseStd(m, m * (1 - this.init.dropoutRate))
        : 0;
    const res = await secureAggregate({
      updates: this.kept.map((u) => u.params),
      weights: this.keptWeights,
      clientIds: this.kept.map((u) => u.clientId),
      mode: this.init.secagg === 'plus' ? 'plus' : 'full',
      dropouts: this.vanishAt,
      rng: this.init.rng,
      ...(share > 0
        ? { noise: (v: Float32Array, _i: number, rng: Rng) => addGaussianNoise(v, share, rng) }
        : {}),
    });
    if (res.aborted !== undefined)
      return {
        mean: new Float32Array(0),
        weight: 0,
        dropped: res.dropped.length,
        failure: res.aborted.message,
      };
    return { mean: res.weightedMean, weight: res.totalWeight, dropped: res.dropped.length };
  }
}

/** Throws when a step failed and the caller needs a model. */
export function requireSuccess(o: StepOutcome): Float32Array {
  if (o.failure !== undefined) throw new LearnError(LearnErrorCode.TooFewClients, o.failure);
  return o.params;
}
