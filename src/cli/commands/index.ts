/**
 * Subcommands contributed by layers. Each layer's file exports `register(program)`; add one
 * line per layer below.
 */
import type { Command } from 'commander';

/** A function that adds a layer's subcommands to the program. */
export type CommandRegistrar = (program: Command) => void;

export const LAYER_COMMANDS: readonly CommandRegistrar[] = [
  // layer commands: keep one per line
  (await import('./store.ts')).register,
];
