/**
 * One aggregation step shared by the flat simulator and the hierarchical aggregators: the
 * update guard, Byzantine poisoning (for experiments), DP clipping and noise, secure
 * aggregation, and the strategy's server step. Mean-based strategies stream their updates into
 * a float64 accumulator when nothing needs them individually, so memory stays O(model) however
 * many clients report.
 */
import { assert, type Logger, type Rng } from '../../core/index.ts';
import { addGaussianNoise, type DpFedAvg } from '../dp/dp-fedavg.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';
import { type ReceivedUpdate, UpdateGuard } from '../guard.ts';
import {
  checkQuantization,
  dequantizeSum,
  quantizationLevelsFor,
  runStreamingSecAggSession,
  SECAGG_CLIP_RANGE_DEFAULT,
  SECAGG_STREAM_BATCH_CLIENTS,
  type SecAggClientHost,
  type SecAggInputEncoding,
  type SecAggRawInput,
  type SecAggStage,
  type SecAggThreatModel,
  secAggSessionConfig,
  secureAggregate,
} from '../secagg/index.ts';
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
  /**
   * Clients whose update is in the aggregate, when the step knows it directly (the streaming
   * secure path: the survivors of secure aggregation).
   */
  readonly participants?: number;
}

/**
 * Participants of a streamed secure step ({@link Aggregation.finishStreaming}): they are
 * trained (produced) on demand while secure aggregation runs, so no step holds more than a
 * bounded batch of updates.
 */
export interface StreamedParticipants {
  /** Clients in the secure-aggregation session (≥ 2). */
  readonly count: number;
  /**
   * Participant i's update, or `undefined` when it has none (it then vanishes before sending
   * its masked input). Called once per participant that reaches the masked-input stage, in
   * increasing order; may start work (e.g. on a worker pool) and resolve later.
   */
  readonly produce: (index: number) => Promise<ReceivedUpdate | undefined>;
  /** Participant index → protocol stage at which it vanishes. */
  readonly vanishAt?: ReadonlyMap<number, SecAggStage>;
  /**
   * Largest weight (example count) a participant may report; the fixed-point encoding is
   * relative to it (Flower's MAX_WEIGHT). Under DP every weight is 1 and this is ignored.
   */
  readonly maxWeight: number;
  /** Clients produced and masked together; default {@link SECAGG_STREAM_BATCH_CLIENTS}. */
  readonly batchClients?: number;
  /** Where the simulated SecAgg clients run (e.g. worker threads); default this thread. */
  readonly host?: SecAggClientHost;
  /**
   * Targets from which SecAgg+ chooses k and t (e.g. the dropout rate the simulation actually
   * applies); default the secagg module's threat model (10 % dropout, 5 % corrupt).
   */
  readonly threat?: SecAggThreatModel;
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
  private rejectedAtBegin = 0;
  /** Σ weights behind the last finished step (examples, or clients under DP). */
  weightOfLastStep = 0;
  /** Memory and time figures of the last {@link finishStreaming} (tests, benchmarks). */
  lastStream:
    | {
        /** Most client input vectors alive at once. */
        readonly peakLiveInputs: number;
        /** Most vector words the SecAgg server held at once. */
        readonly serverVectorWordsMax: number;
        readonly wallMs: number;
        /** Time the protocol waited for updates (training) and client steps. */
        readonly waitMs: number;
      }
    | undefined;

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
    this.rejectedAtBegin = this.guard.rejectedTotal;
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
    const weight = this.accept(update);
    if (weight === undefined) return;
    const p = update.params;
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

  /**
   * The guard, the delta against the global model and DP clipping (in place); returns the
   * update's aggregation weight, or undefined when the guard rejected it.
   */
  private accept(update: ReceivedUpdate): number | undefined {
    if (this.guard.filter([update]).length === 0) return undefined;
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
    return weight;
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
    return this.complete(round, meanDelta, sumWeight, base, this.dropped + extraDropped, secaggMs);
  }

  /** The DP step (fixed denominator, central noise, adaptive clip) and the strategy's server step. */
  private complete(
    round: number,
    meanDelta: Float32Array,
    sumWeight: number,
    base: Pick<StepOutcome, 'used' | 'examples' | 'rejected' | 'unclippedFraction'>,
    dropped: number,
    secaggMs: number,
    participants?: number,
  ): StepOutcome {
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
    const strategy = this.init.strategy;
    assert(strategy.fromMean !== undefined, 'mean-based strategy');
    return {
      ...base,
      params: strategy.fromMean(this.global, mean, round),
      dropped,
      secaggMs,
      ...(participants === undefined ? {} : { participants }),
    };
  }

  /** Stddev of each client's distributed DP noise share (0 without distributed DP). */
  private noiseShareStd(): number {
    const dp = this.init.dp;
    const m = Math.max(1, this.init.expectedClients);
    return dp !== undefined && dp.config.placement === 'distributed'
      ? dp.clientNoiseStd(m, m * (1 - this.init.dropoutRate))
      : 0;
  }

  /**
   * Secure aggregation with streamed updates, instead of {@link add} + {@link finish}: after
   * {@link begin}, runs a SecAgg(+) session over `p.count` participants in which each
   * participant's update is produced on demand, checked by the guard, clipped (DP), noised
   * (distributed DP), quantized, masked by its own SecAgg client and added to the server's
   * running sum, then dropped. Memory is O(model + batch × model + n·k protocol state), not
   * O(n × model). Never throws for expected failures: see `failure`.
   */
  async finishStreaming(round: number, p: StreamedParticipants): Promise<StepOutcome> {
    const t0 = performance.now();
    const strategy = this.init.strategy;
    assert(this.init.secagg !== 'off', 'streaming is the secure path');
    assert(strategy.fromMean !== undefined, 'secure aggregation needs a mean-based strategy');
    assert(this.kept.length === 0, 'finishStreaming after add()');
    const base = (): Pick<StepOutcome, 'used' | 'examples' | 'rejected' | 'unclippedFraction'> => ({
      used: this.used,
      examples: this.examples,
      rejected: this.guard.rejectedTotal,
      unclippedFraction:
        this.init.dp === undefined || this.used === 0 ? Number.NaN : this.unclipped / this.used,
    });
    this.weightOfLastStep = 0;
    const failed = (failure: string, dropped: number, secaggMs: number): StepOutcome => ({
      ...base(),
      params: this.global,
      dropped: this.dropped + dropped,
      failure,
      secaggMs,
      participants: 0,
    });
    if (p.count < 2)
      return failed(`secure aggregation needs at least 2 clients, has ${p.count}`, p.count, 0);
    const d = this.global.length;
    const config = secAggSessionConfig({
      n: p.count,
      paramLength: d,
      mode: this.init.secagg === 'plus' ? 'plus' : 'full',
      ...(p.threat === undefined ? {} : { threat: p.threat }),
    });
    const clipRange = SECAGG_CLIP_RANGE_DEFAULT;
    const levels = quantizationLevelsFor(p.count);
    checkQuantization(p.count, levels, clipRange);
    const dp = this.init.dp;
    const uniform = dp !== undefined && this.init.dpPreClipped !== true;
    const maxWeight = uniform ? 1 : p.maxWeight;
    const rng = this.init.rng;
    // Each client adds its noise share and quantizes on its host (where a real client would),
    // with its own seeded stream; this thread only checks, clips and hands the update over.
    const encoding: SecAggInputEncoding = {
      maxWeight,
      clipRange,
      levels,
      noiseStd: this.noiseShareStd(),
    };
    let encodeMs = 0;
    // Updates are checked in participant order whatever order they are produced in, so a seeded
    // run is reproducible with a worker pool.
    let tail: Promise<unknown> = Promise.resolve();
    const input = (i: number): Promise<SecAggRawInput | undefined> => {
      const produced = p.produce(i);
      const out = tail.then(async () => {
        const u = await produced;
        if (u === undefined) return undefined;
        const t1 = performance.now();
        try {
          const weight = this.accept(u);
          if (weight === undefined) return undefined;
          if (!(weight <= maxWeight)) {
            this.init.logger?.warn(
              { client: u.clientId, weight, maxWeight },
              'learn: update weight above the announced maximum; left out',
            );
            return undefined;
          }
          return { update: u.params, weight: Math.max(weight, 1e-9) };
        } finally {
          encodeMs += performance.now() - t1;
        }
      });
      tail = out.then(
        () => undefined,
        () => undefined,
      );
      return out;
    };
    const r = await runStreamingSecAggSession({
      config,
      input,
      encoding,
      rng,
      ...(p.vanishAt === undefined ? {} : { dropouts: p.vanishAt }),
      batchClients: p.batchClients ?? SECAGG_STREAM_BATCH_CLIENTS,
      ...(p.host === undefined ? {} : { host: p.host }),
    });
    const secaggMs = r.serverMs + r.clientMs.reduce((a, b) => a + b, 0) + encodeMs;
    this.lastStream = {
      peakLiveInputs: r.peakLiveInputs,
      serverVectorWordsMax: r.serverVectorWordsMax,
      wallMs: performance.now() - t0,
      waitMs: r.waitMs,
    };
    // Clients not in the sum, except those the guard rejected (counted as rejected).
    const rejectedHere = this.guard.rejectedTotal - this.rejectedAtBegin;
    const notIn = p.count - r.survivors.length - rejectedHere;
    if (r.aborted !== undefined || r.sum === undefined)
      return failed(
        `secure aggregation aborted: ${r.aborted?.message ?? 'no sum'}`,
        p.count - rejectedHere,
        secaggMs,
      );
    const sumX = dequantizeSum(r.sum, r.survivors.length, clipRange, levels);
    const wsum = sumX[0] as number;
    const meanDelta = new Float32Array(d);
    for (let i = 0; i < d; i++) meanDelta[i] = (sumX[i + 1] as number) / wsum;
    return this.complete(
      round,
      meanDelta,
      wsum * maxWeight,
      base(),
      this.dropped + notIn,
      secaggMs,
      r.survivors.length,
    );
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
