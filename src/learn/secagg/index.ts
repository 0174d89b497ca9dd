/**
 * Secure aggregation for the learn layer: the protocol of Bonawitz et al. 2017 ("Practical
 * Secure Aggregation for Privacy-Preserving Machine Learning", CCS '17, Fig. 4) and SecAgg+
 * (Bell et al. 2020, "Secure Single-Server Aggregation with (Poly)Logarithmic Overhead", CCS '20),
 * with Flower-style fixed-point quantization so that the result is a weighted mean.
 *
 * Two levels of API:
 * - {@link secureAggregate}: one call that runs a whole round in process (clients and server
 *   state machines, dropout plan, quantization, weighting) and returns the weighted mean. This is
 *   what the simulator and the hierarchical aggregators call.
 * - {@link SecAggClient} / {@link SecAggServer}: the state machines of rounds 0–4 with explicit,
 *   serialisable messages ({@link encodeSecAggMessage}/{@link decodeSecAggMessage}), so the
 *   same code runs over the core `Transport` between real nodes.
 *
 * See docs/learn-secagg.md for the protocol, the parameter choice of SecAgg+ and the limits.
 */

export * from './client.ts';
export * from './errors.ts';
export * from './field.ts';
export * from './key-jobs.ts';
export * from './keys.ts';
export * from './limits.ts';
export * from './mask-job.ts';
export * from './messages.ts';
export * from './packed.ts';
export * from './params.ts';
export * from './pool.ts';
export * from './prg.ts';
export * from './quantize.ts';
export * from './server.ts';
export * from './simulate.ts';
export * from './types.ts';
