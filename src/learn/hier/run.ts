/**
 * Runs a hierarchical simulation: builds a topology whose tiles are the clients, boots it as an
 * embedded fabric over the in-process transport, attaches the learn services (the same ones
 * `genesis up` attaches), runs the rounds from the global node and stops the fabric.
 */
import {
  EmbeddedFabric,
  generateTopology,
  type Logger,
  SeededRng,
  SystemClock,
  silentLogger,
  type Topology,
} from '../../core/index.ts';
import { generateTileData } from '../data/pdm.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';
import { evaluate, initParams, paramCount } from '../model/model.ts';
import type { TrainPool } from '../model/pool.ts';
import { type SimulationConfig, validateConfig } from '../sim/config.ts';
import {
  noiseMultiplierFor,
  type RoundRecord,
  type SimulationReport,
  testSet,
} from '../sim/simulate.ts';
import { SECURE_ROUND_MS_DEFAULT } from './secure.ts';
import {
  GlobalCoordinator,
  type HierSettings,
  KAPPA_MAX,
  type Kappa,
  LevelAggregator,
  TileLearner,
} from './services.ts';

/** Aggregation levels that may be listed in `--hierarchy`. */
export const HIER_LEVELS = ['pod', 'hub', 'region'] as const;
/** One of {@link HIER_LEVELS}. */
export type HierLevel = (typeof HIER_LEVELS)[number];

/** Options of a hierarchical run. */
export interface HierOptions {
  /** Levels that aggregate with their κ; unlisted levels relay (κ = 1). */
  readonly levels: readonly HierLevel[];
  /** κ of listed levels (default pod 2, hub 1, region 1). */
  readonly kappa?: Partial<Omit<Kappa, 'tile'>>;
  /** Deadline of one tile's training, ms (default 5000). */
  readonly tileDeadlineMs?: number;
  /**
   * With SecAgg: deadline of each protocol round after round 0, ms (default: 2000, or
   * {@link SIM_SECURE_ROUND_MS_PER_TILE} per tile when that is more).
   */
  readonly secureRoundMs?: number;
}

/**
 * In a simulation every tile's and pod's secure-aggregation work shares one thread, so a
 * protocol round's deadline grows with the number of tiles by this much (unless given).
 */
export const SIM_SECURE_ROUND_MS_PER_TILE = 50;

/** A topology with about `clients` tiles: 8 tiles a pod, 4 pods a hub, 2 hubs a region. */
export function topologyForClients(clients: number): Topology {
  if (clients <= 8) return generateTopology({ regions: 1, hubs: 1, pods: 1, tiles: clients });
  const pods = Math.min(4, Math.ceil(clients / 8));
  const hubs = Math.min(2, Math.ceil(clients / (8 * pods)));
  const regions = Math.min(64, Math.ceil(clients / (8 * pods * hubs)));
  const tiles = Math.ceil(clients / (regions * hubs * pods));
  return generateTopology({ regions, hubs, pods, tiles });
}

/** Builds the κ of each level from the options (tile κ = local steps). */
export function kappaFor(localSteps: number, o: HierOptions): Kappa {
  const pick = (level: HierLevel, dflt: number): number => {
    if (!o.levels.includes(level)) return 1;
    const k = o.kappa?.[level] ?? dflt;
    if (!Number.isInteger(k) || k < 1 || k > KAPPA_MAX)
      throw new LearnError(
        LearnErrorCode.BadConfig,
        `kappa.${level} must be in [1, ${KAPPA_MAX}]`,
        { details: { field: `kappa.${level}` } },
      );
    return k;
  };
  return { tile: localSteps, pod: pick('pod', 2), hub: pick('hub', 1), region: pick('region', 1) };
}

/** Components of a hierarchical run. */
export interface HierDeps {
  readonly pool?: TrainPool;
  readonly logger?: Logger;
  readonly onRound?: (r: RoundRecord) => void;
  readonly shouldStop?: () => boolean;
}

/** The services {@link attachLearners} attached, for counters. */
export interface AttachedLearners {
  readonly tiles: TileLearner[];
  readonly aggregators: LevelAggregator[];
}

/**
 * Attaches learn services to every node of a fabric (tiles learn, pods/hubs/regions aggregate,
 * global coordinates). Used by {@link runHierarchical} and the `genesis up` plugin.
 * @param attached when given, receives the tile and aggregator services.
 */
export function attachLearners(
  fabric: EmbeddedFabric,
  settings: HierSettings,
  global: Omit<ConstructorParameters<typeof GlobalCoordinator>[0], keyof HierSettings>,
  attached?: AttachedLearners,
): GlobalCoordinator {
  const coordinator = new GlobalCoordinator({ ...settings, ...global });
  for (const node of fabric.nodes.values()) {
    if (node.level === 'tile') {
      const t = new TileLearner(settings);
      attached?.tiles.push(t);
      node.attach(t);
    } else if (node.level === 'global') node.attach(coordinator);
    else {
      const a = new LevelAggregator(settings);
      attached?.aggregators.push(a);
      node.attach(a);
    }
  }
  return coordinator;
}

/** Secure-aggregation rejections at pods and tiles, by error code. */
function secureRejections(a: AttachedLearners): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (m: ReadonlyMap<string, number>): void => {
    for (const [code, v] of m) out[code] = (out[code] ?? 0) + v;
  };
  for (const x of a.aggregators) add(x.secureRejectedByCode);
  for (const t of a.tiles) add(t.secureRejectedByCode);
  return out;
}

/** Runs a hierarchical simulation and returns the same report as the flat simulator. */
export async function runHierarchical(
  config: SimulationConfig,
  o: HierOptions,
  deps: HierDeps = {},
): Promise<SimulationReport> {
  const c = validateConfig(config);
  if (c.dp?.placement === 'distributed')
    throw new LearnError(
      LearnErrorCode.BadConfig,
      'hierarchical runs add DP noise centrally at the global node; use --dp-placement central',
    );
  if (c.dp?.adaptiveClipping === true)
    throw new LearnError(
      LearnErrorCode.BadConfig,
      'hierarchical runs use fixed clipping at the tiles',
    );
  const t0 = performance.now();
  const topology = topologyForClients(c.clients);
  const tiles = [...topology.nodes.values()].filter((n) => n.level === 'tile').length;
  const rng = new SeededRng(c.seed);
  const fabric = new EmbeddedFabric({
    topology,
    clock: new SystemClock(),
    rng,
    logger: deps.logger ?? silentLogger(),
    heartbeatIntervalMs: 60_000,
  });
  const pool = deps.pool;
  const settings: HierSettings = {
    model: c.model,
    optimizer: c.optimizer,
    batchSize: c.batchSize,
    windowsPerTile: c.windowsPerClient,
    seed: c.seed,
    kappa: kappaFor(c.localSteps, o),
    tileDeadlineMs: o.tileDeadlineMs ?? 5000,
    secagg: c.secagg,
    secureRoundMs:
      o.secureRoundMs ?? Math.max(SECURE_ROUND_MS_DEFAULT, tiles * SIM_SECURE_ROUND_MS_PER_TILE),
    ...(c.dp === undefined ? {} : { dpClipNorm: c.dp.clipNorm }),
    dropoutRate: c.dropoutRate,
    ...(pool === undefined ? {} : { train: (t) => pool.run(t) }),
  };
  const z =
    c.dp === undefined ? 0 : noiseMultiplierFor({ ...c, clients: tiles, clientsPerRound: tiles });
  const test = testSet(c.seed ^ 0x5eed, c.testWindows);
  const attached: AttachedLearners = { tiles: [], aggregators: [] };
  const coordinator = attachLearners(
    fabric,
    settings,
    {
      strategy: c.strategy,
      strategyOptions: c.strategyOptions,
      ...(c.dp === undefined
        ? {}
        : {
            dp: {
              noiseMultiplier: z,
              delta: c.dp.delta,
              budget: c.dp.budget ?? c.dp.epsilon ?? Number.POSITIVE_INFINITY,
            },
          }),
      expectedTiles: tiles,
      test,
      ...(deps.onRound === undefined ? {} : { onRound: deps.onRound }),
    },
    attached,
  );
  const baselineAccuracy = evaluate(
    c.model,
    initParams(c.model, new SeededRng(c.seed)),
    test,
  ).accuracy;
  let stopped: SimulationReport['stopped'] = 'completed';
  let peakRss = process.memoryUsage().rss;
  if (pool !== undefined) {
    // Worker threads take seconds to start (each registers tsx); that must not eat the first
    // round's training deadline, so one tiny task waits for them before the clock starts.
    await pool.run({
      spec: c.model,
      params: initParams(c.model, new SeededRng(c.seed)),
      data: generateTileData({ seed: c.seed, tile: 'warm-up', windows: 1 }),
      optimizer: c.optimizer,
      localSteps: 1,
      batchSize: 1,
      seed: 0,
      proximalMu: 0,
    });
  }
  await fabric.start();
  try {
    for (let round = 1; round <= c.rounds; round++) {
      if (deps.shouldStop?.()) {
        stopped = 'aborted';
        break;
      }
      const rec = await coordinator.runRound();
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      if (rec === undefined) {
        stopped = 'budget-exhausted';
        break;
      }
    }
  } finally {
    await fabric.stop();
  }
  const last = coordinator.records[coordinator.records.length - 1];
  return {
    config: { ...c, clients: tiles, clientsPerRound: tiles },
    paramCount: paramCount(c.model),
    noiseMultiplier: z,
    samplingRate: 1,
    rounds: coordinator.records,
    stopped,
    finalAccuracy: last?.accuracy ?? baselineAccuracy,
    epsilon: last?.epsilon ?? 0,
    delta: c.dp?.delta,
    baselineAccuracy,
    // Update-guard rejections are counted along the tree (per round, in `rejected`); the
    // secure-aggregation ones are also kept by code at the pods and tiles.
    rejectedByCode: secureRejections(attached),
    elapsedMs: performance.now() - t0,
    peakRssBytes: peakRss,
  };
}
