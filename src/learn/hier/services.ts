/**
 * Hierarchical federated learning (HierFAVG, Liu et al. 2020, "Client-Edge-Cloud Hierarchical
 * Federated Learning", Algorithm 1, generalised to four aggregation levels) as node services
 * over the core Transport:
 *
 * - a {@link TileLearner} on every tile trains κ_tile local steps from the model it is sent;
 * - a {@link LevelAggregator} on every pod, hub and region runs κ_level passes of "send the
 *   model to my children, wait until the deadline, average their replies weighted by example
 *   count" and answers its parent with the result;
 * - the {@link GlobalCoordinator} on the global node runs rounds, applies the strategy, central
 *   DP noise and the accountant, and evaluates.
 *
 * Each request carries a deadline; a node splits what it has left among its κ passes, so
 * lateness never propagates upwards: a child that misses its deadline is counted late and left
 * out. Replies are checked by the update guard (length, NaN/Inf, size, duplicates, and the
 * request nonce they must echo — a replayed reply names an old nonce and is rejected).
 *
 * With secure aggregation on, the tile ↔ pod exchange is a real SecAgg session over the
 * transport (`secure.ts`): tiles mask their own updates, the pod runs the server and learns only
 * the weighted sum. Hubs, regions and the global node then aggregate pod results, which are
 * already sums over several tiles.
 */
import type { Logger, NodeContext, NodeService, Rng } from '../../core/index.ts';
import { isGenesisError, TransportErrorCode } from '../../core/index.ts';
import { generateTileData } from '../data/pdm.ts';
import { RdpAccountant } from '../dp/accountant.ts';
import { clipL2, DpFedAvg } from '../dp/dp-fedavg.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';
import type { Dataset } from '../model/kernels.ts';
import { evaluate, initParams, type ModelSpec, paramCount } from '../model/model.ts';
import type { OptimizerConfig, TrainResult, TrainTask } from '../model/train.ts';
import { trainLocal } from '../model/train.ts';
import { SECAGG_STAGES, type SecAggStage } from '../secagg/index.ts';
import type { SecAggSetting } from '../sim/config.ts';
import { Aggregation } from '../sim/round.ts';
import type { RoundRecord } from '../sim/simulate.ts';
import {
  createStrategy,
  type Strategy,
  type StrategyName,
  type StrategyOptions,
} from '../strategy/strategy.ts';
import {
  addCounters,
  NO_SECURE_COUNTERS,
  runSecurePass,
  SECURE_PROTOCOL_ROUNDS,
  SECURE_ROUND_MS_DEFAULT,
  secureSubject,
  TileSecureSessions,
} from './secure.ts';
import {
  decodeFitReply,
  decodeFitRequest,
  encodeFitReply,
  encodeFitRequest,
  fitSubject,
  type SecureCounters,
} from './wire.ts';

/** Time each aggregator keeps back from its deadline for its own work and the reply. */
export const AGGREGATOR_MARGIN_MS = 50;
/** Smallest deadline handed to a child. */
export const CHILD_DEADLINE_MS_MIN = 20;
/** Largest κ at any level. */
export const KAPPA_MAX = 100;

/** κ per level: local steps at tiles, aggregation passes at pods, hubs and regions. */
export interface Kappa {
  readonly tile: number;
  readonly pod: number;
  readonly hub: number;
  readonly region: number;
}

/** Settings shared by every hierarchical service of one run. */
export interface HierSettings {
  readonly model: ModelSpec;
  readonly optimizer: OptimizerConfig;
  readonly batchSize: number;
  readonly windowsPerTile: number;
  readonly seed: number;
  readonly kappa: Kappa;
  /** Deadline of one tile's local training, ms. */
  readonly tileDeadlineMs: number;
  /**
   * Secure aggregation between each pod and its tiles: `'full'` (Bonawitz et al. 2017) or
   * `'plus'` (SecAgg+ neighbourhoods where the pod is large enough for them to pay off).
   * Tiles mask their own updates; the pod only learns the weighted sum.
   */
  readonly secagg: SecAggSetting;
  /** Deadline of each secure-aggregation round after round 0, ms (default 2000). */
  readonly secureRoundMs?: number;
  /**
   * Flower's MAX_WEIGHT: tiles upload w = weight / maxWeight and clamp larger weights.
   * Default: 1 with DP (weights are 1), else `windowsPerTile` (a tile's example count).
   */
  readonly secureMaxWeight?: number;
  /** Client-level DP: tiles clip their deltas to this norm and report weight 1. */
  readonly dpClipNorm?: number;
  /** Probability that a tile vanishes for one request (fault injection). */
  readonly dropoutRate: number;
  /** Trains one tile (a worker pool's `run`); inline when absent. */
  readonly train?: (task: TrainTask) => Promise<TrainResult>;
}

/**
 * The deadline a node of `level` is given, from the tile deadline and the κ below it. With
 * secure aggregation each pod pass also has the four protocol rounds after training.
 */
export function levelDeadlineMs(
  level: 'tile' | 'pod' | 'hub' | 'region' | 'global',
  s: Pick<HierSettings, 'kappa' | 'tileDeadlineMs'> &
    Partial<Pick<HierSettings, 'secagg' | 'secureRoundMs'>>,
): number {
  const tile = s.tileDeadlineMs;
  const protocol =
    s.secagg === undefined || s.secagg === 'off'
      ? 0
      : SECURE_PROTOCOL_ROUNDS * (s.secureRoundMs ?? SECURE_ROUND_MS_DEFAULT);
  const pod = s.kappa.pod * (tile + protocol) + AGGREGATOR_MARGIN_MS;
  const hub = s.kappa.hub * pod + AGGREGATOR_MARGIN_MS;
  const region = s.kappa.region * hub + AGGREGATOR_MARGIN_MS;
  return { tile, pod, hub, region, global: region + AGGREGATOR_MARGIN_MS }[level];
}

function nonce(rng: Rng): string {
  return `${rng.nextU32().toString(16)}${rng.nextU32().toString(16)}`;
}

/**
 * A tile's learner: trains from the model its pod sends. Without SecAgg it replies with its
 * model; with SecAgg it keeps its update, joins the pod's session and answers the protocol
 * rounds on {@link secureSubject}, so its update leaves the tile only masked.
 */
export class TileLearner implements NodeService {
  readonly name = 'learn';
  private ctx: NodeContext | undefined;
  private data: Dataset | undefined;
  private secure: TileSecureSessions | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  trained = 0;
  vanished = 0;
  malformed = 0;

  constructor(private readonly s: HierSettings) {}

  start(ctx: NodeContext): void {
    this.ctx = ctx;
    const secure = new TileSecureSessions(ctx);
    this.secure = secure;
    const opts = { pendingMessagesMax: 16, dropPolicy: 'drop-oldest' } as const;
    const fit = ctx.transport.subscribe(
      fitSubject(ctx.name),
      (m) => this.onFit(m.data, (b) => m.respond(b)),
      opts,
    );
    const rounds = ctx.transport.subscribe(
      secureSubject(ctx.name),
      (m) => {
        const reply = secure.handle(m.data, m.headers);
        if (reply !== undefined) m.respond(reply);
      },
      opts,
    );
    this.unsubscribe.push(
      () => fit.unsubscribe(),
      () => rounds.unsubscribe(),
    );
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
  }

  status(): Record<string, number> {
    return {
      trained: this.trained,
      vanished: this.vanished + (this.secure?.vanished ?? 0),
      secureSessions: this.secure?.opened ?? 0,
      secureRejected: this.secure?.rejected ?? 0,
    };
  }

  /** Secure-aggregation messages this tile rejected, by error code. */
  get secureRejectedByCode(): ReadonlyMap<string, number> {
    return this.secure?.rejectedByCode ?? new Map();
  }

  private async onFit(bytes: Uint8Array, respond: (b: Uint8Array) => boolean): Promise<void> {
    const ctx = this.ctx;
    const secure = this.secure;
    if (ctx === undefined || secure === undefined) return;
    let req: ReturnType<typeof decodeFitRequest>;
    try {
      req = decodeFitRequest(bytes);
    } catch (e) {
      this.malformed++;
      ctx.logger.warn({ node: ctx.name, err: String(e) }, 'learn: bad fit request');
      return;
    }
    const h = req.header.secure;
    const config = h === undefined ? undefined : secure.admit(h, req.params.length);
    if (h !== undefined && config === undefined) return;
    // Fault injection: a vanishing tile leaves at one stage (round 0 = before it answers).
    let vanishAt: SecAggStage | undefined;
    if (this.s.dropoutRate > 0 && ctx.rng.nextFloat() < this.s.dropoutRate) {
      vanishAt =
        h === undefined
          ? 'advertise'
          : (SECAGG_STAGES[ctx.rng.int(0, SECAGG_STAGES.length - 1)] as SecAggStage);
      if (vanishAt === 'advertise') {
        this.vanished++;
        return;
      }
    }
    const res = await this.train(ctx, req.params, req.header.proximalMu);
    this.trained++;
    if (h !== undefined && config !== undefined) {
      const delta = new Float32Array(res.params.length);
      for (let i = 0; i < delta.length; i++)
        delta[i] = (res.params[i] as number) - (req.params[i] as number);
      const advertise = secure.start(
        h,
        config,
        { delta, loss: res.loss, weight: res.weight },
        vanishAt,
      );
      if (advertise !== undefined) respond(advertise);
      return;
    }
    respond(
      encodeFitReply(
        {
          clientId: ctx.name,
          round: req.header.round,
          nonce: req.header.nonce,
          weight: res.weight,
          numExamples: res.numExamples,
          tiles: 1,
          loss: res.loss,
          late: 0,
          rejected: 0,
        },
        res.params,
      ),
    );
  }

  /** κ_tile local steps from `params`; under DP the delta is clipped and the weight is 1. */
  private async train(
    ctx: NodeContext,
    params: Float32Array,
    proximalMu: number,
  ): Promise<{ params: Float32Array; weight: number; numExamples: number; loss: number }> {
    this.data ??= generateTileData({
      seed: this.s.seed,
      tile: ctx.name,
      windows: this.s.windowsPerTile,
    });
    const task: TrainTask = {
      spec: this.s.model,
      params,
      data: this.data,
      optimizer: this.s.optimizer,
      localSteps: this.s.kappa.tile,
      batchSize: this.s.batchSize,
      seed: ctx.rng.nextU32(),
      proximalMu,
    };
    const res = this.s.train !== undefined ? await this.s.train(task) : trainLocal(task);
    let weight = res.numExamples;
    if (this.s.dpClipNorm !== undefined) {
      // Client-side clipping of the delta (DP-FedAvg); uniform weight bounds sensitivity by C.
      const d = new Float32Array(res.params.length);
      for (let i = 0; i < d.length; i++) d[i] = (res.params[i] as number) - (params[i] as number);
      clipL2(d, this.s.dpClipNorm);
      for (let i = 0; i < d.length; i++) res.params[i] = (params[i] as number) + (d[i] as number);
      weight = 1;
    }
    return { params: res.params, weight, numExamples: res.numExamples, loss: res.loss };
  }
}

/** Result of fanning out one pass to the children. */
interface PassResult {
  params: Float32Array;
  weight: number;
  examples: number;
  tiles: number;
  loss: number;
  late: number;
  rejected: number;
  /** Secure-aggregation counters from below (and this pass's own session, at pods). */
  secure: SecureCounters;
  failure?: string;
}

/**
 * Sends `params` to every child, waits for replies until `deadlineMs`, and aggregates them
 * through `agg`. Shared by the level aggregators and the global coordinator.
 */
async function fanOut(
  ctx: NodeContext,
  agg: Aggregation,
  round: number,
  step: number,
  params: Float32Array,
  deadlineMs: number,
  proximalMu: number,
  log: Logger,
): Promise<PassResult> {
  const stepId = round * (KAPPA_MAX + 1) + step;
  agg.begin(stepId, params);
  let late = 0;
  let rejected = 0;
  let tiles = 0;
  let loss = 0;
  let replies = 0;
  let examples = 0;
  let secure = NO_SECURE_COUNTERS;
  await Promise.all(
    ctx.children.map(async (child) => {
      const n = nonce(ctx.rng);
      const req = encodeFitRequest({ round, step, nonce: n, deadlineMs, proximalMu }, params);
      let reply: Awaited<ReturnType<typeof ctx.transport.request>>;
      try {
        reply = await ctx.transport.request(fitSubject(child), req, { timeoutMs: deadlineMs });
      } catch (e) {
        if (
          isGenesisError(e, TransportErrorCode.Timeout) ||
          isGenesisError(e, TransportErrorCode.NoResponders)
        ) {
          late++;
          log.debug(
            { node: ctx.name, child, round, step, code: (e as LearnError).code },
            'learn: child missed the deadline',
          );
          return;
        }
        throw e;
      }
      try {
        const r = decodeFitReply(reply.data);
        if (r.header.nonce !== n)
          throw new LearnError(
            LearnErrorCode.Replay,
            `reply from ${r.header.clientId} echoes another request's nonce`,
            { details: { child } },
          );
        if (r.header.clientId !== child)
          throw new LearnError(
            LearnErrorCode.DuplicateClient,
            `reply on ${child}'s inbox names ${r.header.clientId}`,
            { details: { child } },
          );
        late += r.header.late;
        rejected += r.header.rejected;
        secure = addCounters(secure, r.header.secure);
        if (r.header.weight <= 0) return;
        tiles += r.header.tiles;
        loss += r.header.loss * r.header.tiles;
        replies++;
        agg.add({
          clientId: r.header.clientId,
          params: r.params,
          numExamples: r.header.weight,
          round: stepId,
          nonce: n,
          bytes: r.bytes,
        });
        examples += r.header.numExamples;
      } catch (e) {
        if (!(e instanceof LearnError)) throw e;
        agg.guard.count(e);
      }
    }),
  );
  const out = await agg.finish(stepId);
  const base = {
    params: out.params,
    weight: agg.weightOfLastStep,
    examples,
    tiles,
    loss: tiles === 0 ? 0 : loss / tiles,
    late,
    rejected: rejected + out.rejected,
    secure,
  };
  if (replies === 0 || out.failure !== undefined)
    return { ...base, weight: 0, failure: out.failure ?? 'no child answered' };
  return base;
}

/**
 * A pod, hub or region aggregator: κ_level passes of fan-out and weighted averaging. With SecAgg
 * a pod's pass is a secure-aggregation session with its tiles ({@link runSecurePass}); hubs and
 * regions average pod results (already sums over several tiles) as without SecAgg.
 */
export class LevelAggregator implements NodeService {
  readonly name = 'learn';
  private ctx: NodeContext | undefined;
  private unsubscribe: (() => void) | undefined;
  passes = 0;
  failedPasses = 0;
  late = 0;
  /** Secure sessions this node ran (pods) and how many aborted. */
  secureSessions = 0;
  secureAborted = 0;
  /** Protocol messages this pod rejected, by error code. */
  readonly secureRejectedByCode = new Map<string, number>();

  constructor(private readonly s: HierSettings) {}

  start(ctx: NodeContext): void {
    this.ctx = ctx;
    const sub = ctx.transport.subscribe(
      fitSubject(ctx.name),
      (m) => this.onFit(m.data, (b) => m.respond(b)),
      { pendingMessagesMax: 16, dropPolicy: 'drop-oldest' },
    );
    this.unsubscribe = () => sub.unsubscribe();
  }

  stop(): void {
    this.unsubscribe?.();
  }

  status(): Record<string, number> {
    let rejected = 0;
    for (const v of this.secureRejectedByCode.values()) rejected += v;
    return {
      passes: this.passes,
      failedPasses: this.failedPasses,
      late: this.late,
      ...(this.secureSessions > 0
        ? {
            secureSessions: this.secureSessions,
            secureAborted: this.secureAborted,
            secureRejected: rejected,
          }
        : {}),
    };
  }

  private kappa(level: string): number {
    return level === 'pod'
      ? this.s.kappa.pod
      : level === 'hub'
        ? this.s.kappa.hub
        : this.s.kappa.region;
  }

  /** One pass: a secure session at a pod with SecAgg on, a plaintext fan-out otherwise. */
  private async pass(
    ctx: NodeContext,
    agg: Aggregation,
    req: ReturnType<typeof decodeFitRequest>,
    step: number,
    params: Float32Array,
    deadlineMs: number,
  ): Promise<PassResult> {
    if (ctx.level !== 'pod' || this.s.secagg === 'off')
      return fanOut(
        ctx,
        agg,
        req.header.round,
        step,
        params,
        deadlineMs,
        req.header.proximalMu,
        ctx.logger,
      );
    const r = await runSecurePass(
      ctx,
      {
        setting: this.s.secagg,
        dropoutRate: this.s.dropoutRate,
        roundMs: this.s.secureRoundMs ?? SECURE_ROUND_MS_DEFAULT,
        maxWeight:
          this.s.secureMaxWeight ?? (this.s.dpClipNorm === undefined ? this.s.windowsPerTile : 1),
      },
      {
        round: req.header.round,
        step,
        params,
        deadlineMs,
        proximalMu: req.header.proximalMu,
        nonce: nonce(ctx.rng),
      },
    );
    this.secureSessions += r.counters.sessions;
    this.secureAborted += r.counters.aborted;
    let rejected = 0;
    for (const [code, v] of Object.entries(r.rejectedByCode)) {
      this.secureRejectedByCode.set(code, (this.secureRejectedByCode.get(code) ?? 0) + v);
      rejected += v;
    }
    return {
      params: r.params,
      weight: r.weight,
      examples: r.examples,
      tiles: r.tiles,
      loss: r.loss,
      late: r.late,
      rejected,
      secure: r.counters,
      ...(r.failure === undefined ? {} : { failure: r.failure }),
    };
  }

  private async onFit(bytes: Uint8Array, respond: (b: Uint8Array) => boolean): Promise<void> {
    const ctx = this.ctx;
    if (ctx === undefined) return;
    let req: ReturnType<typeof decodeFitRequest>;
    try {
      req = decodeFitRequest(bytes);
    } catch (e) {
      ctx.logger.warn({ node: ctx.name, err: String(e) }, 'learn: bad fit request');
      return;
    }
    const kappa = this.kappa(ctx.level);
    const childDeadline = Math.max(
      CHILD_DEADLINE_MS_MIN,
      Math.floor((req.header.deadlineMs - AGGREGATOR_MARGIN_MS) / kappa),
    );
    // Plaintext aggregation of the children's replies (pods only use it without SecAgg).
    const agg = new Aggregation({
      strategy: createStrategy('fedavg'),
      secagg: 'off',
      dp: undefined,
      expectedClients: ctx.children.length,
      dropoutRate: this.s.dropoutRate,
      paramCount: paramCount(this.s.model),
      rng: ctx.rng,
      logger: ctx.logger,
    });
    let params = req.params;
    let last: PassResult | undefined;
    let late = 0;
    let rejected = 0;
    let secure = NO_SECURE_COUNTERS;
    for (let step = 1; step <= kappa; step++) {
      const r = await this.pass(ctx, agg, req, step, params, childDeadline);
      this.passes++;
      late += r.late;
      rejected += r.rejected;
      secure = addCounters(secure, r.secure);
      if (r.failure !== undefined) {
        this.failedPasses++;
        continue;
      }
      params = r.params;
      last = r;
    }
    this.late += late;
    const h = last ?? { weight: 0, examples: 0, tiles: 0, loss: 0 };
    respond(
      encodeFitReply(
        {
          clientId: ctx.name,
          round: req.header.round,
          nonce: req.header.nonce,
          // SecAgg recovers Σ weights from a quantized coordinate (≈ exact); weights are counts.
          weight: Math.round(h.weight),
          numExamples: h.examples,
          tiles: h.tiles,
          loss: h.loss,
          late,
          rejected,
          ...(secure.sessions > 0 ? { secure } : {}),
        },
        params,
      ),
    );
  }
}

/** Settings of the global coordinator. */
export interface GlobalSettings extends HierSettings {
  readonly strategy: StrategyName;
  readonly strategyOptions?: StrategyOptions;
  /** Central DP: noise multiplier z on the sum of clipped tile deltas. */
  readonly dp?: {
    readonly noiseMultiplier: number;
    readonly delta: number;
    readonly budget: number;
  };
  /** Total tiles (the DP denominator and the accountant's population). */
  readonly expectedTiles: number;
  readonly test: Dataset;
  readonly onRound?: (r: RoundRecord) => void;
}

/** The global node: runs rounds over the regions, applies strategy and DP, evaluates. */
export class GlobalCoordinator implements NodeService {
  readonly name = 'learn';
  private ctx: NodeContext | undefined;
  private global: Float32Array;
  private readonly strategy: Strategy;
  private readonly dp: DpFedAvg | undefined;
  private readonly accountant = new RdpAccountant();
  private agg: Aggregation | undefined;
  readonly records: RoundRecord[] = [];
  round = 0;
  budgetExhausted = false;
  /** Pod-level secure sessions over all rounds, aborted ones, and tiles recovered mid-protocol. */
  secure: SecureCounters = NO_SECURE_COUNTERS;

  constructor(private readonly s: GlobalSettings) {
    if (s.dp !== undefined && s.dpClipNorm === undefined)
      throw new LearnError(
        LearnErrorCode.BadConfig,
        'hierarchical DP needs dpClipNorm (tiles clip their deltas)',
      );
    this.strategy = createStrategy(s.strategy, s.strategyOptions ?? {});
    this.dp =
      s.dp === undefined
        ? undefined
        : new DpFedAvg({
            noiseMultiplier: s.dp.noiseMultiplier,
            clipNorm: s.dpClipNorm ?? 1,
            placement: 'central',
          });
    this.global = new Float32Array(paramCount(s.model));
  }

  start(ctx: NodeContext): void {
    this.ctx = ctx;
    this.global = initParams(this.s.model, ctx.rng);
    this.agg = new Aggregation({
      strategy: this.strategy,
      secagg: 'off',
      dp: this.dp,
      dpPreClipped: true,
      expectedClients: this.s.expectedTiles,
      dropoutRate: this.s.dropoutRate,
      paramCount: this.global.length,
      rng: ctx.rng,
      logger: ctx.logger,
    });
  }

  stop(): void {}

  /** The current global model. */
  get params(): Float32Array {
    return this.global;
  }

  /** ε spent so far. */
  get epsilon(): number {
    return this.s.dp === undefined ? 0 : this.accountant.epsilon(this.s.dp.delta);
  }

  status(): Record<string, number> {
    const last = this.records[this.records.length - 1];
    return {
      round: this.round,
      accuracy: Number((last?.accuracy ?? 0).toFixed(4)),
      epsilon: Number(this.epsilon.toFixed(3)),
      ...(this.secure.sessions > 0
        ? { secureSessions: this.secure.sessions, secureAborted: this.secure.aborted }
        : {}),
    };
  }

  /**
   * Runs one global round. Returns undefined (and sets {@link budgetExhausted}) when the next
   * round would exceed the privacy budget.
   */
  async runRound(): Promise<RoundRecord | undefined> {
    const ctx = this.ctx;
    const agg = this.agg;
    if (ctx === undefined || agg === undefined)
      throw new LearnError(LearnErrorCode.BadConfig, 'coordinator not started');
    const dp = this.s.dp;
    // Every tile takes part in every hierarchical round: q = 1, no sampling amplification.
    if (
      dp !== undefined &&
      this.accountant.epsilonAfter(1, dp.noiseMultiplier, dp.delta) > dp.budget * (1 + 1e-9)
    ) {
      this.budgetExhausted = true;
      return undefined;
    }
    const t0 = performance.now();
    this.round++;
    const deadline = levelDeadlineMs('region', this.s);
    const fit = this.strategy.configureFit(this.round);
    const r = await fanOut(
      ctx,
      agg,
      this.round,
      1,
      this.global,
      deadline,
      fit.proximalMu,
      ctx.logger,
    );
    if (r.failure === undefined) this.global = r.params;
    this.secure = addCounters(this.secure, r.secure);
    if (dp !== undefined) this.accountant.step(1, dp.noiseMultiplier);
    const ev = evaluate(this.s.model, this.global, this.s.test);
    const rec: RoundRecord = {
      round: this.round,
      accuracy: ev.accuracy,
      loss: ev.loss,
      trainLoss: r.loss,
      epsilon: this.epsilon,
      sampled: this.s.expectedTiles,
      participants: r.tiles,
      dropped: r.late,
      rejected: r.rejected,
      clipNorm: this.s.dpClipNorm ?? 0,
      ...(r.failure === undefined ? {} : { failure: r.failure }),
      secaggMs: 0,
      durationMs: performance.now() - t0,
    };
    this.records.push(rec);
    this.s.onRound?.(rec);
    return rec;
  }
}
