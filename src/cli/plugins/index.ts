/**
 * The plugins `genesis up` loads, in attach order. Each layer adds one line.
 */
import type { FabricPluginFactory } from '../plugin.ts';

export const FABRIC_PLUGINS: readonly FabricPluginFactory[] = [
  // layer plugins: keep one per line
  (await import('./learn.ts')).learnPlugin,
  (await import('./trust.ts')).trustPlugin,
  (await import('./dtn.ts')).dtnPlugin,
  (await import('./kernel.ts')).kernelPlugin,
  (await import('./store.ts')).storePlugin,
];
