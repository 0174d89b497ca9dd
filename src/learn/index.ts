/**
 * Public door of the learn layer: models, data, strategies, hierarchical federated learning,
 * secure aggregation and differential privacy.
 */

export { type CsvDataset, type CsvOptions, datasetToCsv, loadCsv, parseCsv } from './data/csv.ts';
export {
  concatDatasets,
  generateTileData,
  PDM_FEATURES,
  type PdmOptions,
  type TileRegime,
  tileRegime,
} from './data/pdm.ts';
export {
  type ComputeRdpInput,
  calibrateNoise,
  computeRdp,
  DEFAULT_ORDERS,
  epsilonFor,
  logErfc,
  OPACUS_ORDERS,
  type PrivacyParams,
  RdpAccountant,
  type RdpToEpsilonInput,
  rdpSampledGaussianStep,
  rdpToEpsilon,
  TF_PRIVACY_ORDERS,
} from './dp/accountant.ts';
export {
  addGaussianNoise,
  CLIP_NORM_MAX,
  clipL2,
  type DpConfig,
  DpFedAvg,
  l2Norm,
  type NoisePlacement,
} from './dp/dp-fedavg.ts';
export * from './errors.ts';
export {
  LEARN_UPDATE_BYTES_MAX,
  type ReceivedUpdate,
  type RejectionCounts,
  UpdateGuard,
} from './guard.ts';
export {
  attachLearners,
  HIER_LEVELS,
  type HierDeps,
  type HierLevel,
  type HierOptions,
  kappaFor,
  runHierarchical,
  topologyForClients,
} from './hier/run.ts';
export {
  AGGREGATOR_MARGIN_MS,
  GlobalCoordinator,
  type GlobalSettings,
  type HierSettings,
  KAPPA_MAX,
  type Kappa,
  LevelAggregator,
  levelDeadlineMs,
  TileLearner,
} from './hier/services.ts';
export {
  decodeFitReply,
  decodeFitRequest,
  encodeFitReply,
  encodeFitRequest,
  type FitReplyHeader,
  type FitRequestHeader,
  fitSubject,
} from './hier/wire.ts';
export {
  type Activation,
  type Dataset,
  deserializeModel,
  evaluate,
  initParams,
  layerSizes,
  logisticRegression,
  lossAndGradient,
  MODEL_PARAMS_MAX,
  type Model,
  type ModelSpec,
  mlp,
  paramCount,
  predict,
  serializeModel,
  validateSpec,
} from './model/model.ts';
export { TrainPool } from './model/pool.ts';
export {
  Adam,
  createOptimizer,
  type Optimizer,
  type OptimizerConfig,
  SgdMomentum,
  type TrainResult,
  type TrainTask,
  trainLocal,
} from './model/train.ts';
export * from './secagg/index.ts';
export {
  type AttackKind,
  type DpSettings,
  defaultConfig,
  type SecAggSetting,
  type SimulationConfig,
  validateConfig,
} from './sim/config.ts';
export { renderReportSvg, writeReport } from './sim/report.ts';
export { Aggregation, poison, type StepOutcome } from './sim/round.ts';
export {
  clientData,
  noiseMultiplierFor,
  type RoundRecord,
  runSimulation,
  type SimulationDeps,
  type SimulationReport,
  testSet,
} from './sim/simulate.ts';
export {
  type ClientUpdate,
  createStrategy,
  type FitConfig,
  krumScores,
  STRATEGY_NAMES,
  type Strategy,
  type StrategyName,
  type StrategyOptions,
  weightedMean,
} from './strategy/strategy.ts';
