/**
 * Subcommands contributed by layers. Each layer's file exports `register(program)`; add one
 * line per layer below.
 */
import type { Command } from 'commander';

/** A function that adds a layer's subcommands to the program. */
export type CommandRegistrar = (program: Command) => void;

export const LAYER_COMMANDS: readonly CommandRegistrar[] = [
  // layer commands: keep one per line
  (await import('./dtn.ts')).register,
  (await import('./learn.ts')).register,
  (await import('./fabric.ts')).register,
  (await import('./trust.ts')).register,
  (await import('./kernel.ts')).register,
  (await import('./store.ts')).register,
];
