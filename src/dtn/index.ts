/**
 * Public door of the DTN layer: the RFC 9171 bundle codec, BPSec (RFC 9172/9173), contact-graph
 * and opportunistic routing, the bundle protocol agent with its persistent store, the TCPCLv4
 * (RFC 9174) and in-process convergence layers, and the interplanetary tier of the fabric.
 */

export * from './admin.ts';
export * from './agent.ts';
export * from './bpsec.ts';
export * from './bundle.ts';
export * from './cgr.ts';
export * from './cl-inproc.ts';
export * from './crc.ts';
export * from './eid.ts';
export * from './errors.ts';
export * from './fragment.ts';
export * from './interplanetary.ts';
export * from './limits.ts';
export * from './opportunistic.ts';
export * from './policy.ts';
export * from './store.ts';
export * from './tcpcl.ts';
