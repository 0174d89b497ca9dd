/**
 * Public door of the learn layer: models, data, strategies, hierarchical federated learning,
 * secure aggregation and differential privacy.
 */

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
export * from './errors.ts';
export * from './secagg/index.ts';
