/**
 * Public door of the core layer: errors, limits, clock, randomness, logging, metrics, topology,
 * the transport contract with its in-process implementation, the node runtime and the embedded
 * fabric. Every other layer may import this module; core imports no other layer.
 */

export * from './bounded-queue.ts';
export * from './clock.ts';
export * from './errors.ts';
export * from './fabric-embedded.ts';
export * from './limits.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './node.ts';
export * from './rng.ts';
export * from './topology.ts';
export * from './transport.ts';
export * from './transport-inproc.ts';
