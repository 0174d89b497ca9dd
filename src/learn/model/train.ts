/**
 * Local training with validated inputs: see `train-kernel.ts` for the optimisers and the loop.
 */
import { LearnError, LearnErrorCode } from '../errors.ts';
import { paramCount } from './kernels.ts';
import {
  makeOptimizer,
  type Optimizer,
  type OptimizerConfig,
  runTraining,
  type TrainResult,
  type TrainTask,
} from './train-kernel.ts';

export {
  Adam,
  type Optimizer,
  type OptimizerConfig,
  SgdMomentum,
  type TrainResult,
  type TrainTask,
} from './train-kernel.ts';

/** Largest number of local steps in one training call. */
export const LOCAL_STEPS_MAX = 100_000;
/** Largest mini-batch. */
export const BATCH_SIZE_MAX = 65_536;

/** Builds an optimiser. @throws {LearnError} `LEARN_BAD_CONFIG` */
export function createOptimizer(config: OptimizerConfig, size: number): Optimizer {
  if (!(config.lr > 0) || !Number.isFinite(config.lr)) {
    throw new LearnError(LearnErrorCode.BadConfig, `learning rate must be > 0, got ${config.lr}`, {
      details: { field: 'lr' },
    });
  }
  if (config.kind === 'sgd' || config.kind === 'adam') return makeOptimizer(config, size);
  throw new LearnError(
    LearnErrorCode.BadConfig,
    `unknown optimizer "${String((config as { kind: unknown }).kind)}"`,
  );
}

/** Validates a training task. @throws {LearnError} `LEARN_BAD_CONFIG` */
export function checkTask(t: TrainTask): void {
  const bad = (msg: string): never => {
    throw new LearnError(LearnErrorCode.BadConfig, `train task: ${msg}`);
  };
  if (t.params.length !== paramCount(t.spec))
    bad(`params length ${t.params.length} != ${paramCount(t.spec)}`);
  if (t.data.d !== t.spec.inputs)
    bad(`data has ${t.data.d} features, model expects ${t.spec.inputs}`);
  if (!Number.isInteger(t.localSteps) || t.localSteps < 0 || t.localSteps > LOCAL_STEPS_MAX)
    bad(`localSteps outside [0, ${LOCAL_STEPS_MAX}]`);
  if (!Number.isInteger(t.batchSize) || t.batchSize < 1 || t.batchSize > BATCH_SIZE_MAX)
    bad(`batchSize outside [1, ${BATCH_SIZE_MAX}]`);
}

/** Trains one client locally after validating the task (see {@link runTraining}). */
export function trainLocal(task: TrainTask): TrainResult {
  checkTask(task);
  createOptimizer(task.optimizer, 0);
  return runTraining(task);
}
