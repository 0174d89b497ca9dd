/**
 * `genesis learn ...`: federated-learning simulations and the privacy accountant.
 *
 * - `genesis learn simulate`: flat or hierarchical simulation with a progress bar, per-round
 *   accuracy, loss, ε and dropout; writes `report.json` and `report.svg` to `--out`.
 * - `genesis learn accountant`: ε of the sampled Gaussian mechanism from q, σ, steps and δ, or
 *   the σ that reaches a target ε.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  calibrateNoise,
  computeRdp,
  DEFAULT_ORDERS,
  defaultConfig,
  HIER_LEVELS,
  type HierLevel,
  logisticRegression,
  mlp,
  PDM_FEATURES,
  type RoundRecord,
  rdpToEpsilon,
  runHierarchical,
  runSimulation,
  type SimulationConfig,
  type SimulationReport,
  STRATEGY_NAMES,
  TF_PRIVACY_ORDERS,
  TrainPool,
  writeReport,
} from '../../learn/index.ts';
import {
  CliError,
  parseDuration,
  parseIntFlag,
  printJson,
  renderBar,
  StatusLine,
} from '../util.ts';

function parseNumber(text: string, flag: string, min: number, max: number, open = false): number {
  const n = Number(text);
  const okRange = open ? n > min && n < max : n >= min && n <= max;
  if (text.trim() === '' || !Number.isFinite(n) || !okRange) {
    throw new CliError(
      'CLI_BAD_NUMBER',
      `${flag} must be a number in ${open ? '(' : '['}${min}, ${max}${open ? ')' : ']'}, got "${text}"`,
    );
  }
  return n;
}

function oneOf<T extends string>(text: string, flag: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text))
    throw new CliError(
      'CLI_BAD_CHOICE',
      `${flag} must be one of ${allowed.join(', ')}, got "${text}"`,
    );
  return text as T;
}

interface SimulateFlags {
  clients: string;
  rounds: string;
  clientsPerRound?: string;
  strategy: string;
  secagg: string;
  dpEpsilon?: string;
  dpSigma?: string;
  dpDelta: string;
  clip: string;
  adaptiveClip?: boolean;
  dpPlacement?: string;
  hierarchy?: string;
  kappa?: string;
  deadline: string;
  localSteps: string;
  dropout: string;
  byzantine: string;
  attack: string;
  model: string;
  width: string;
  depth: string;
  seed: string;
  workers: string;
  out: string;
  json?: boolean;
}

function parseHierarchy(text: string | undefined): HierLevel[] | undefined {
  if (text === undefined) return undefined;
  const levels = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (levels.length === 0)
    throw new CliError('CLI_BAD_CHOICE', '--hierarchy needs at least one of pod,hub,region');
  return levels.map((l) => oneOf(l, '--hierarchy', HIER_LEVELS));
}

function parseKappa(text: string | undefined): Partial<Record<HierLevel, number>> {
  const out: Partial<Record<HierLevel, number>> = {};
  for (const part of (text ?? '').split(',').filter((s) => s.trim() !== '')) {
    const [k, v] = part.split('=');
    out[oneOf((k ?? '').trim(), '--kappa', HIER_LEVELS)] = parseIntFlag(
      (v ?? '').trim(),
      `--kappa ${k}`,
      1,
      100,
    );
  }
  return out;
}

/** Turns flags into a run configuration. @throws {CliError} on bad flags. */
export function simulationConfigFromFlags(f: SimulateFlags): SimulationConfig {
  const clients = parseIntFlag(f.clients, '--clients', 1, 1_000_000);
  const rounds = parseIntFlag(f.rounds, '--rounds', 1, 100_000);
  const base = defaultConfig(clients, rounds);
  const secagg = oneOf(f.secagg, '--secagg', ['off', 'full', 'plus'] as const);
  const width = parseIntFlag(f.width, '--width', 1, 4096);
  const depth = parseIntFlag(f.depth, '--depth', 0, 16);
  const model =
    oneOf(f.model, '--model', ['mlp', 'logreg'] as const) === 'logreg' || depth === 0
      ? logisticRegression(PDM_FEATURES.length)
      : mlp(PDM_FEATURES.length, width, depth);
  const wantDp = f.dpEpsilon !== undefined || f.dpSigma !== undefined;
  // Hierarchical runs add noise once, at the global node (distributed noise would have to be
  // split across pods of different sizes): central is their default, whatever --secagg says.
  const placement = oneOf(
    f.dpPlacement ?? (secagg === 'off' || f.hierarchy !== undefined ? 'central' : 'distributed'),
    '--dp-placement',
    ['central', 'distributed'] as const,
  );
  return {
    ...base,
    clientsPerRound:
      f.clientsPerRound === undefined
        ? base.clientsPerRound
        : parseIntFlag(f.clientsPerRound, '--clients-per-round', 1, clients),
    strategy: oneOf(f.strategy, '--strategy', STRATEGY_NAMES),
    secagg,
    dp: wantDp
      ? {
          ...(f.dpEpsilon === undefined
            ? {}
            : { epsilon: parseNumber(f.dpEpsilon, '--dp-epsilon', 0, 1e6, true) }),
          ...(f.dpSigma === undefined
            ? {}
            : { noiseMultiplier: parseNumber(f.dpSigma, '--dp-sigma', 0, 1e6) }),
          delta: parseNumber(f.dpDelta, '--dp-delta', 0, 1, true),
          clipNorm: parseNumber(f.clip, '--clip', 0, 1e6, true),
          adaptiveClipping: f.adaptiveClip === true,
          placement,
        }
      : undefined,
    model,
    localSteps: parseIntFlag(f.localSteps, '--local-steps', 0, 100_000),
    dropoutRate: parseNumber(f.dropout, '--dropout', 0, 0.99),
    byzantineFraction: parseNumber(f.byzantine, '--byzantine', 0, 0.49),
    attack: oneOf(f.attack, '--attack', ['sign-flip', 'noise', 'scale'] as const),
    seed: parseIntFlag(f.seed, '--seed', 0, 0xffffffff),
  };
}

function roundLine(r: RoundRecord, dp: boolean): string {
  const eps = dp ? `  ε ${r.epsilon.toFixed(3)}` : '';
  const fail = r.failure === undefined ? '' : `  FAILED: ${r.failure}`;
  return `round ${String(r.round).padStart(4)}  acc ${r.accuracy.toFixed(4)}  loss ${r.loss.toFixed(4)}${eps}  clients ${r.participants}/${r.sampled}  dropped ${r.dropped}  rejected ${r.rejected}  ${r.durationMs.toFixed(0)} ms${fail}`;
}

async function simulate(f: SimulateFlags): Promise<void> {
  const config = simulationConfigFromFlags(f);
  const levels = parseHierarchy(f.hierarchy);
  const kappa = parseKappa(f.kappa);
  const tileDeadlineMs = parseDuration(f.deadline, '--deadline');
  const workers = parseIntFlag(f.workers, '--workers', 0, 64);
  const outDir = resolve(f.out);
  const status = new StatusLine(2_000);
  const dp = config.dp !== undefined;
  let stop = false;
  const onSigint = (): void => {
    stop = true;
  };
  process.once('SIGINT', onSigint);
  const pool = workers > 0 ? new TrainPool(workers) : undefined;
  const onRound = (r: RoundRecord): void => {
    if (f.json !== true) {
      status.done();
      process.stdout.write(`${roundLine(r, dp)}\n`);
    }
    status.update(
      renderBar(
        r.round,
        config.rounds,
        `acc ${r.accuracy.toFixed(3)}${dp ? ` ε ${r.epsilon.toFixed(2)}` : ''}`,
      ),
      true,
    );
  };
  status.update(
    renderBar(
      0,
      config.rounds,
      levels === undefined ? 'starting' : `starting hierarchy ${levels.join(',')}`,
    ),
    true,
  );
  let report: SimulationReport;
  try {
    const deps = { ...(pool === undefined ? {} : { pool }), onRound, shouldStop: () => stop };
    report =
      levels === undefined
        ? await runSimulation(config, deps)
        : await runHierarchical(config, { levels, kappa, tileDeadlineMs }, deps);
  } finally {
    process.removeListener('SIGINT', onSigint);
    await pool?.close();
  }
  const paths = writeReport(report, outDir);
  status.done();
  const summary = {
    stopped: report.stopped,
    rounds: report.rounds.length,
    clients: report.config.clients,
    paramCount: report.paramCount,
    finalAccuracy: report.finalAccuracy,
    baselineAccuracy: report.baselineAccuracy,
    epsilon: report.epsilon,
    delta: report.delta,
    noiseMultiplier: report.noiseMultiplier,
    elapsedMs: Math.round(report.elapsedMs),
    peakRssBytes: report.peakRssBytes,
    rejected: report.rejectedByCode,
    report: paths.json,
    chart: paths.svg,
  };
  if (f.json === true) printJson(summary);
  else {
    process.stdout.write(
      `${report.stopped}: ${report.rounds.length} rounds, accuracy ${report.baselineAccuracy.toFixed(3)} → ${report.finalAccuracy.toFixed(3)}` +
        `${dp ? `, ε = ${report.epsilon.toFixed(3)} at δ = ${report.delta} (z = ${report.noiseMultiplier.toFixed(3)})` : ''}, ${(report.elapsedMs / 1000).toFixed(1)} s\n` +
        `report ${paths.json}\nchart  ${paths.svg}\n`,
    );
  }
}

interface AccountantFlags {
  q: string;
  sigma?: string;
  epsilon?: string;
  steps: string;
  delta: string;
  conversion: string;
  orders: string;
  json?: boolean;
}

function accountant(f: AccountantFlags): void {
  const q = parseNumber(f.q, '--q', 0, 1);
  const steps = parseIntFlag(f.steps, '--steps', 0, 1e12);
  const delta = parseNumber(f.delta, '--delta', 0, 1, true);
  const conversion = oneOf(f.conversion, '--conversion', ['improved', 'classic'] as const);
  const orders =
    oneOf(f.orders, '--orders', ['opacus', 'tf'] as const) === 'tf'
      ? TF_PRIVACY_ORDERS
      : DEFAULT_ORDERS;
  if ((f.sigma === undefined) === (f.epsilon === undefined))
    throw new CliError(
      'CLI_BAD_FLAGS',
      'give exactly one of --sigma (to get ε) or --epsilon (to get σ)',
    );
  if (f.sigma !== undefined) {
    const sigma = parseNumber(f.sigma, '--sigma', 0, 1e6);
    const rdp = computeRdp({ q, noiseMultiplier: sigma, steps, orders });
    const { epsilon, order } = rdpToEpsilon({ orders, rdp, delta, conversion });
    if (f.json === true) printJson({ q, sigma, steps, delta, conversion, epsilon, order });
    else
      process.stdout.write(
        `ε = ${epsilon} at δ = ${delta} (optimal order ${order}, ${conversion} conversion)\n`,
      );
    return;
  }
  const target = parseNumber(f.epsilon ?? '', '--epsilon', 0, 1e6, true);
  const sigma = calibrateNoise({
    q,
    steps,
    delta,
    targetEpsilon: target,
    orders,
    conversion,
    tolerance: 1e-9,
  });
  if (f.json === true) printJson({ q, steps, delta, conversion, targetEpsilon: target, sigma });
  else
    process.stdout.write(
      `σ = ${sigma} reaches ε ≤ ${target} at δ = ${delta} after ${steps} steps with q = ${q}\n`,
    );
}

/** Adds `genesis learn ...`. */
export function register(program: Command): void {
  const learn = program
    .command('learn')
    .description('federated learning: simulations and the privacy accountant');
  learn
    .command('simulate')
    .description(
      'simulate federated training on non-IID predictive-maintenance data; writes report.json and report.svg',
    )
    .option('--clients <n>', 'clients (tiles)', '100')
    .option('--rounds <n>', 'rounds', '20')
    .option(
      '--clients-per-round <n>',
      'clients sampled per round (flat mode; default min(clients, 100))',
    )
    .option('--strategy <name>', `one of ${STRATEGY_NAMES.join(', ')}`, 'fedavg')
    .option(
      '--secagg <mode>',
      'secure aggregation: off, full (Bonawitz 2017) or plus (SecAgg+)',
      'off',
    )
    .option(
      '--dp-epsilon <e>',
      'client-level DP: target ε after all rounds (noise calibrated to it; training stops at it)',
    )
    .option('--dp-sigma <z>', 'client-level DP with an explicit noise multiplier')
    .option('--dp-delta <d>', 'DP δ', '1e-5')
    .option('--clip <c>', 'L2 clipping norm of client deltas', '1')
    .option('--adaptive-clip', 'adaptive clipping (Andrew et al. 2021, target quantile 0.5)')
    .option(
      '--dp-placement <p>',
      'central or distributed noise (default: distributed with --secagg, central otherwise and in hierarchical runs)',
    )
    .option(
      '--hierarchy <levels>',
      'hierarchical run aggregating at these levels, e.g. pod,hub,region',
    )
    .option('--kappa <list>', 'aggregation passes per level, e.g. pod=2,hub=1 (HierFAVG κ)')
    .option(
      '--deadline <duration>',
      "hierarchical runs: deadline of one tile's training (e.g. 500ms, 2s)",
      '1s',
    )
    .option('--local-steps <n>', 'local SGD steps per client per round (κ at the tiles)', '20')
    .option('--dropout <p>', 'probability that a client vanishes during a round', '0')
    .option('--byzantine <f>', 'fraction of clients sending poisoned updates', '0')
    .option('--attack <kind>', 'sign-flip, noise or scale', 'sign-flip')
    .option('--model <kind>', 'mlp or logreg', 'mlp')
    .option('--width <n>', 'MLP hidden width', '16')
    .option('--depth <n>', 'MLP hidden layers', '1')
    .option('--seed <n>', 'seed of data, sampling and initialisation', '1')
    .option('--workers <n>', 'training worker threads (0 = train on the main thread)', '2')
    .option('--out <dir>', 'report directory', 'learn-report')
    .option('--json', 'print the summary as JSON')
    .action(async (flags: SimulateFlags) => simulate(flags));
  learn
    .command('accountant')
    .description('ε of the sampled Gaussian mechanism (RDP accountant), or σ for a target ε')
    .requiredOption('--q <q>', 'sampling probability per step')
    .option('--sigma <z>', 'noise multiplier')
    .option('--epsilon <e>', 'target ε (prints the σ that reaches it)')
    .requiredOption('--steps <n>', 'number of steps')
    .option('--delta <d>', 'δ', '1e-5')
    .option(
      '--conversion <c>',
      'improved (Balle et al. 2020) or classic (Mironov 2017)',
      'improved',
    )
    .option(
      '--orders <set>',
      'opacus (default) or tf (TF Privacy compute_dp_sgd_privacy orders)',
      'opacus',
    )
    .option('--json', 'print JSON')
    .action((flags: AccountantFlags) => accountant(flags));
}
