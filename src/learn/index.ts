/**
 * Public door of the learn layer: models, data, strategies, hierarchical federated learning,
 * secure aggregation and differential privacy.
 */
export * from './secagg/index.ts';
