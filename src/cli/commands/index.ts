/**
 * Subcommands contributed by layers. Each layer's file exports `register(program)`. Layers are
 * loaded lazily: `genesis kernel run ...` imports only the kernel's commands, so a command never
 * pays for the start-up cost of layers it does not use (Binaryen, ML-DSA tables, Automerge's
 * WebAssembly). Add one entry per layer with the top-level command names it registers.
 */
import type { Command } from 'commander';

/** A function that adds a layer's subcommands to the program. */
export type CommandRegistrar = (program: Command) => void;

/** A layer's commands: the top-level names it owns and how to load its registrar. */
export interface LayerCommands {
  readonly layer: string;
  readonly names: readonly string[];
  load(): Promise<CommandRegistrar>;
}

export const LAYER_COMMANDS: readonly LayerCommands[] = [
  { layer: 'dtn', names: ['dtn'], load: async () => (await import('./dtn.ts')).register },
  { layer: 'learn', names: ['learn'], load: async () => (await import('./learn.ts')).register },
  {
    layer: 'fabric',
    names: ['topology', 'fabric', 'node', 'apply', 'get', 'explain', 'drain'],
    load: async () => (await import('./fabric.ts')).register,
  },
  {
    layer: 'trust',
    names: ['keys', 'log', 'update'],
    load: async () => (await import('./trust.ts')).register,
  },
  { layer: 'kernel', names: ['kernel'], load: async () => (await import('./kernel.ts')).register },
  { layer: 'store', names: ['store'], load: async () => (await import('./store.ts')).register },
];

/**
 * The registrars needed for `argv`: the layer owning the first command word, or every layer
 * when there is none (bare `--help`) or it is unknown (so commander's suggestions stay complete).
 */
export async function registrarsFor(
  argv: readonly string[],
  builtIn: readonly string[],
): Promise<CommandRegistrar[]> {
  const word = argv.find((a) => !a.startsWith('-'));
  if (word !== undefined && builtIn.includes(word) && word !== 'topology') return [];
  const owners = LAYER_COMMANDS.filter((l) => word !== undefined && l.names.includes(word));
  const chosen = owners.length > 0 ? owners : LAYER_COMMANDS;
  return Promise.all(chosen.map((l) => l.load()));
}
