/**
 * Public door of the fabric layer: the NATS transport, nats-server configuration and process
 * management, wire envelopes, membership, workload specs, the scheduler, the controller and the
 * node agents that make a real multi-process fabric.
 */

export * from './controller.ts';
export * from './errors.ts';
export * from './hub-agent.ts';
export * from './kernel-runner.ts';
export * from './launcher.ts';
export * from './limits.ts';
export * from './messages.ts';
export * from './nats-config.ts';
export * from './nats-server.ts';
export * from './nats-transport.ts';
export * from './node-process.ts';
export * from './pod-agent.ts';
export * from './region-directory.ts';
export * from './scheduler.ts';
export * from './state-store.ts';
export * from './tile-agent.ts';
export * from './wire.ts';
export * from './workload.ts';
