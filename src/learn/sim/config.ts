/**
 * Configuration of a federated-learning run (flat or hierarchical), with validation and
 * defaults. Shared by the simulator, the hierarchical aggregators, the CLI and the `genesis up`
 * plugin.
 */

import { PDM_FEATURES } from '../data/pdm.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';
import { type ModelSpec, mlp, validateSpec } from '../model/model.ts';
import type { OptimizerConfig } from '../model/train.ts';
import { STRATEGY_NAMES, type StrategyName, type StrategyOptions } from '../strategy/strategy.ts';

/** Largest number of simulated clients. */
export const SIM_CLIENTS_MAX = 1_000_000;
/** Largest number of rounds. */
export const SIM_ROUNDS_MAX = 100_000;

/** Secure aggregation mode of a run. */
export type SecAggSetting = 'off' | 'full' | 'plus';
/** How Byzantine clients poison their updates. */
export type AttackKind = 'sign-flip' | 'noise' | 'scale';

/** Differential-privacy settings of a run. */
export interface DpSettings {
  /** Target ε after all rounds; the noise multiplier is calibrated to it. */
  readonly epsilon?: number;
  /** Explicit noise multiplier (used when `epsilon` is absent). */
  readonly noiseMultiplier?: number;
  readonly delta: number;
  readonly clipNorm: number;
  readonly adaptiveClipping: boolean;
  readonly placement: 'central' | 'distributed';
  /** Stop before a round that would push ε above this (default: `epsilon`). */
  readonly budget?: number;
}

/** A full run configuration. */
export interface SimulationConfig {
  readonly clients: number;
  readonly rounds: number;
  /** Clients sampled per round (default min(clients, 100)). */
  readonly clientsPerRound: number;
  readonly strategy: StrategyName;
  readonly strategyOptions: StrategyOptions;
  readonly secagg: SecAggSetting;
  readonly dp: DpSettings | undefined;
  readonly model: ModelSpec;
  readonly optimizer: OptimizerConfig;
  readonly localSteps: number;
  readonly batchSize: number;
  readonly windowsPerClient: number;
  readonly testWindows: number;
  /** Probability that a sampled client vanishes during a round. */
  readonly dropoutRate: number;
  /** Fraction of all clients that are Byzantine. */
  readonly byzantineFraction: number;
  readonly attack: AttackKind;
  readonly seed: number;
}

/** Defaults for every field but `clients` and `rounds`. */
export function defaultConfig(clients: number, rounds: number): SimulationConfig {
  return {
    clients,
    rounds,
    clientsPerRound: Math.min(clients, 100),
    strategy: 'fedavg',
    strategyOptions: {},
    secagg: 'off',
    dp: undefined,
    model: mlp(PDM_FEATURES.length, 16, 1),
    optimizer: { kind: 'sgd', lr: 0.2, momentum: 0.9 },
    localSteps: 20,
    batchSize: 16,
    windowsPerClient: 64,
    testWindows: 2000,
    dropoutRate: 0,
    byzantineFraction: 0,
    attack: 'sign-flip',
    seed: 1,
  };
}

/** Validates a configuration. @throws {LearnError} `LEARN_BAD_CONFIG` naming the field. */
export function validateConfig(c: SimulationConfig): SimulationConfig {
  const bad = (field: string, msg: string): never => {
    throw new LearnError(LearnErrorCode.BadConfig, `${field}: ${msg}`, { details: { field } });
  };
  const int = (v: number, lo: number, hi: number, field: string): void => {
    if (!Number.isInteger(v) || v < lo || v > hi)
      bad(field, `must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  int(c.clients, 1, SIM_CLIENTS_MAX, 'clients');
  int(c.rounds, 1, SIM_ROUNDS_MAX, 'rounds');
  int(c.clientsPerRound, 1, c.clients, 'clientsPerRound');
  int(c.localSteps, 0, 100_000, 'localSteps');
  int(c.batchSize, 1, 65_536, 'batchSize');
  int(c.windowsPerClient, 1, 1_000_000, 'windowsPerClient');
  int(c.testWindows, 1, 10_000_000, 'testWindows');
  if (!(STRATEGY_NAMES as readonly string[]).includes(c.strategy))
    bad('strategy', `unknown "${c.strategy}"; one of ${STRATEGY_NAMES.join(', ')}`);
  if (!['off', 'full', 'plus'].includes(c.secagg))
    bad('secagg', `must be off, full or plus, got "${c.secagg}"`);
  if (!(c.dropoutRate >= 0 && c.dropoutRate < 1)) bad('dropoutRate', 'must be in [0, 1)');
  if (!(c.byzantineFraction >= 0 && c.byzantineFraction < 0.5))
    bad('byzantineFraction', 'must be in [0, 0.5)');
  if (!['sign-flip', 'noise', 'scale'].includes(c.attack))
    bad('attack', 'must be sign-flip, noise or scale');
  validateSpec(c.model);
  if (c.model.inputs !== PDM_FEATURES.length)
    bad('model', `needs ${PDM_FEATURES.length} inputs for the predictive-maintenance data`);
  const robust =
    c.strategy === 'fedmedian' ||
    c.strategy === 'fedtrimmedavg' ||
    c.strategy === 'krum' ||
    c.strategy === 'multikrum';
  if (robust && c.secagg !== 'off')
    bad(
      'strategy',
      `${c.strategy} needs individual updates; secure aggregation reveals only their sum`,
    );
  if (robust && c.dp !== undefined)
    bad('strategy', `${c.strategy} has no DP sensitivity bound; use a mean-based strategy with DP`);
  if (c.dp !== undefined) {
    const d = c.dp;
    if (!(d.delta > 0 && d.delta < 1)) bad('dp.delta', 'must be in (0, 1)');
    if (!(d.clipNorm > 0)) bad('dp.clipNorm', 'must be > 0');
    if (d.epsilon === undefined && d.noiseMultiplier === undefined)
      bad('dp', 'give epsilon or noiseMultiplier');
    if (d.epsilon !== undefined && !(d.epsilon > 0)) bad('dp.epsilon', 'must be > 0');
    if (d.placement === 'distributed' && c.secagg === 'off')
      bad('dp.placement', 'distributed noise needs secure aggregation (--secagg full|plus)');
  }
  return c;
}
