/**
 * The flat federated simulator (Flower's simulation engine in spirit): N virtual clients, each
 * a tile with its own non-IID predictive-maintenance data; every round samples clients, trains
 * them on the worker pool, lets some vanish, poisons the Byzantine ones, aggregates (guard, DP,
 * secure aggregation, strategy), evaluates on a held-out fleet, and records ε spent so far.
 * Training stops early when the next round would exceed the privacy budget.
 */
import { type Logger, type Rng, SeededRng, silentLogger } from '../../core/index.ts';
import { concatDatasets, generateTileData } from '../data/pdm.ts';
import { calibrateNoise, RdpAccountant } from '../dp/accountant.ts';
import { DpFedAvg } from '../dp/dp-fedavg.ts';
import type { ReceivedUpdate } from '../guard.ts';
import type { Dataset } from '../model/kernels.ts';
import { evaluate, initParams, paramCount } from '../model/model.ts';
import type { TrainPool } from '../model/pool.ts';
import { type TrainTask, trainLocal } from '../model/train.ts';
import { SECAGG_STAGES, type SecAggStage } from '../secagg/index.ts';
import { createStrategy } from '../strategy/strategy.ts';
import { type SimulationConfig, validateConfig } from './config.ts';
import { Aggregation, poison, type StepOutcome } from './round.ts';
import { WorkerClientHost } from './secagg-hosts.ts';

/** Largest number of client datasets kept in memory between rounds. */
export const SIM_DATA_CACHE_CLIENTS_MAX = 20_000;

/** What one round produced. */
export interface RoundRecord {
  readonly round: number;
  readonly accuracy: number;
  readonly loss: number;
  readonly trainLoss: number;
  /** ε spent after this round (0 without DP). */
  readonly epsilon: number;
  readonly sampled: number;
  readonly participants: number;
  readonly dropped: number;
  readonly rejected: number;
  readonly clipNorm: number;
  readonly failure?: string;
  readonly secaggMs: number;
  readonly durationMs: number;
}

/** The report of a run. */
export interface SimulationReport {
  readonly config: SimulationConfig;
  readonly paramCount: number;
  readonly noiseMultiplier: number;
  readonly samplingRate: number;
  readonly rounds: RoundRecord[];
  readonly stopped: 'completed' | 'budget-exhausted' | 'aborted';
  readonly finalAccuracy: number;
  readonly epsilon: number;
  readonly delta: number | undefined;
  readonly baselineAccuracy: number;
  readonly rejectedByCode: Readonly<Record<string, number>>;
  readonly elapsedMs: number;
  readonly peakRssBytes: number;
}

/** Components of a run. */
export interface SimulationDeps {
  /** Training pool; inline training on this thread when absent. */
  readonly pool?: TrainPool;
  readonly logger?: Logger;
  readonly onRound?: (r: RoundRecord) => void;
  /** Polled between rounds; return true to stop. */
  readonly shouldStop?: () => boolean;
  /**
   * Worker threads hosting the simulated SecAgg clients (their keys, shares and masking), so
   * secure rounds use every core; 0 runs them on this thread. Default: the training pool's size
   * (0 without a pool).
   */
  readonly secaggWorkers?: number;
}

/** A client's dataset, deterministic in (seed, client). */
export function clientData(seed: number, client: number, windows: number): Dataset {
  return generateTileData({ seed, tile: `client-${client}`, windows });
}

/** A held-out test set drawn from tiles no client owns. */
export function testSet(seed: number, windows: number): Dataset {
  const tiles = Math.max(1, Math.min(50, Math.ceil(windows / 40)));
  const per = Math.ceil(windows / tiles);
  return concatDatasets(
    Array.from({ length: tiles }, (_, i) =>
      generateTileData({ seed, tile: `test-${i}`, windows: per }),
    ),
  );
}

function sample(rng: SeededRng, n: number, k: number): number[] {
  // Partial Fisher–Yates over an index map: O(k) memory for any n.
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const j = rng.int(i, n - 1);
    const vi = swapped.get(i) ?? i;
    const vj = swapped.get(j) ?? j;
    swapped.set(j, vi);
    out.push(vj);
  }
  return out;
}

/** The noise multiplier a config implies (calibrated from a target ε when given). */
export function noiseMultiplierFor(c: SimulationConfig): number {
  if (c.dp === undefined) return 0;
  if (c.dp.noiseMultiplier !== undefined && c.dp.epsilon === undefined) return c.dp.noiseMultiplier;
  return calibrateNoise({
    q: c.clientsPerRound / c.clients,
    steps: c.rounds,
    delta: c.dp.delta,
    targetEpsilon: c.dp.epsilon ?? 1,
    tolerance: 1e-4,
  });
}

/** Runs a flat simulation. @throws {LearnError} `LEARN_BAD_CONFIG` for a bad configuration. */
export async function runSimulation(
  config: SimulationConfig,
  deps: SimulationDeps = {},
): Promise<SimulationReport> {
  const c = validateConfig(config);
  const t0 = performance.now();
  const logger = deps.logger ?? silentLogger();
  const rng = new SeededRng(c.seed);
  const strategy = createStrategy(c.strategy, c.strategyOptions);
  const z = noiseMultiplierFor(c);
  const q = c.clientsPerRound / c.clients;
  const dp =
    c.dp === undefined
      ? undefined
      : new DpFedAvg({
          noiseMultiplier: z,
          clipNorm: c.dp.clipNorm,
          placement: c.dp.placement,
          ...(c.dp.adaptiveClipping ? { adaptive: {} } : {}),
        });
  const accountant = new RdpAccountant();
  const budget =
    c.dp === undefined
      ? Number.POSITIVE_INFINITY
      : (c.dp.budget ?? c.dp.epsilon ?? Number.POSITIVE_INFINITY);
  const n = paramCount(c.model);
  let global = initParams(c.model, rng.fork());
  const test = testSet(c.seed ^ 0x5eed, c.testWindows);
  const baselineAccuracy = evaluate(c.model, global, test).accuracy;
  const agg = new Aggregation({
    strategy,
    secagg: c.secagg,
    dp,
    expectedClients: c.clientsPerRound,
    dropoutRate: c.dropoutRate,
    paramCount: n,
    rng: rng.fork(),
    logger,
  });
  const byzantineCount = Math.floor(c.byzantineFraction * c.clients);
  const cache = new Map<number, Dataset>();
  const dataOf = (id: number): Dataset => {
    const hit = cache.get(id);
    if (hit !== undefined) return hit;
    const d = clientData(c.seed, id, c.windowsPerClient);
    if (cache.size < SIM_DATA_CACHE_CLIENTS_MAX) cache.set(id, d);
    return d;
  };
  const hostWorkers = c.secagg === 'off' ? 0 : (deps.secaggWorkers ?? deps.pool?.size ?? 0);
  const host = hostWorkers > 0 ? new WorkerClientHost(hostWorkers) : undefined;
  try {
    return await simulateRounds();
  } finally {
    await host?.close();
  }

  async function simulateRounds(): Promise<SimulationReport> {
    const rounds: RoundRecord[] = [];
    let stopped: SimulationReport['stopped'] = 'completed';
    let peakRss = process.memoryUsage().rss;
    for (let round = 1; round <= c.rounds; round++) {
      if (deps.shouldStop?.()) {
        stopped = 'aborted';
        break;
      }
      if (
        dp !== undefined &&
        accountant.epsilonAfter(q, z, c.dp?.delta ?? 1e-5) > budget * (1 + 1e-9)
      ) {
        stopped = 'budget-exhausted';
        logger.info({ round, budget }, 'learn: privacy budget reached; stopping');
        break;
      }
      const r0 = performance.now();
      const sampled = sample(rng, c.clients, c.clientsPerRound);
      agg.begin(round, global);
      const fit = strategy.configureFit(round);
      const roundRng = rng.fork();
      const live: number[] = [];
      const vanish = new Map<number, SecAggStage>();
      for (const id of sampled) {
        if (roundRng.nextFloat() < c.dropoutRate) {
          // Without SecAgg a vanished client simply never uploads; with SecAgg it may vanish at
          // any protocol stage, exercising every recovery path.
          if (c.secagg === 'off') {
            agg.dropout();
            continue;
          }
          vanish.set(id, SECAGG_STAGES[roundRng.int(0, SECAGG_STAGES.length - 1)] as SecAggStage);
        }
        live.push(id);
      }
      let trainLoss = 0;
      const taskOf = (id: number): TrainTask => ({
        spec: c.model,
        params: global,
        data: dataOf(id),
        optimizer: c.optimizer,
        localSteps: c.localSteps,
        batchSize: c.batchSize,
        seed: (c.seed * 1_000_003 + round * 7919 + id) >>> 0,
        proximalMu: fit.proximalMu,
      });
      const received = (
        id: number,
        res: { params: Float32Array; numExamples: number; loss: number },
        poisonRng: Rng,
      ): ReceivedUpdate => {
        trainLoss += res.loss;
        if (id < byzantineCount) poison(res.params, global, c.attack, poisonRng);
        return {
          clientId: `client-${id}`,
          params: res.params,
          numExamples: res.numExamples,
          round,
          nonce: `${round}:${id}`,
        };
      };
      let out: StepOutcome;
      if (c.secagg !== 'off') {
        // Streamed secure aggregation: each client is trained when the protocol reaches its
        // masked input, masked, summed by the server and dropped, so the round holds a bounded
        // batch of updates, not one per client. Clients that vanish before that are not trained.
        const vanishAt = new Map<number, SecAggStage>();
        live.forEach((id, i) => {
          const s = vanish.get(id);
          if (s !== undefined) vanishAt.set(i, s);
        });
        const poisonSeed = roundRng.nextU32();
        out = await agg.finishStreaming(round, {
          count: live.length,
          vanishAt,
          // Every client holds windowsPerClient examples (its announced maximum weight).
          maxWeight: c.windowsPerClient,
          ...(host === undefined ? {} : { host }),
          // SecAgg+ sizes k and t for the dropout this simulation applies (Bell et al. 2020, §4):
          // at 10,000 clients, k = 62 without dropout instead of 136 for the default 10 %.
          threat: { dropoutRate: c.dropoutRate },
          produce: async (i) => {
            const id = live[i] as number;
            const task = taskOf(id);
            const res = deps.pool !== undefined ? await deps.pool.run(task) : trainLocal(task);
            // Per-client poisoning randomness: results may arrive in any order.
            return received(id, res, new SeededRng((poisonSeed ^ Math.imul(id, 0x9e3779b1)) >>> 0));
          },
        });
      } else {
        const tasks = function* (): Generator<TrainTask> {
          for (const id of live) yield taskOf(id);
        };
        const onResult = (
          res: { params: Float32Array; numExamples: number; loss: number },
          i: number,
        ): void => {
          const id = live[i] as number;
          agg.add(received(id, res, roundRng), vanish.get(id));
        };
        if (deps.pool !== undefined) await deps.pool.runAll(tasks(), onResult);
        else {
          let i = 0;
          for (const t of tasks()) onResult(trainLocal(t), i++);
        }
        out = await agg.finish(round);
      }
      global = out.params;
      // With adaptive clipping the delta sum (z_Δ) and the clipped count (σ_b) together cost one
      // Gaussian release at multiplier z (Andrew et al. 2021, Theorem 1).
      if (dp !== undefined) accountant.step(q, z);
      const ev = evaluate(c.model, global, test);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      const rec: RoundRecord = {
        round,
        accuracy: ev.accuracy,
        loss: ev.loss,
        trainLoss: live.length === 0 ? 0 : trainLoss / live.length,
        epsilon: dp === undefined ? 0 : accountant.epsilon(c.dp?.delta ?? 1e-5),
        sampled: sampled.length,
        participants: out.participants ?? out.used - (out.dropped - (sampled.length - live.length)),
        dropped: out.dropped,
        rejected: out.rejected,
        clipNorm: dp?.clipNorm ?? 0,
        ...(out.failure === undefined ? {} : { failure: out.failure }),
        secaggMs: out.secaggMs,
        durationMs: performance.now() - r0,
      };
      rounds.push(rec);
      deps.onRound?.(rec);
    }
    const last = rounds[rounds.length - 1];
    return {
      config: c,
      paramCount: n,
      noiseMultiplier: z,
      samplingRate: q,
      rounds,
      stopped,
      finalAccuracy: last?.accuracy ?? baselineAccuracy,
      epsilon: last?.epsilon ?? 0,
      delta: c.dp?.delta,
      baselineAccuracy,
      rejectedByCode: { ...agg.guard.rejected },
      elapsedMs: performance.now() - t0,
      peakRssBytes: peakRss,
    };
  }
}
