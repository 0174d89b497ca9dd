/**
 * WebAssembly text → binary through wabt, for hand-written test modules and `genesis kernel run
 * file.wat`. wabt's parser is WebAssembly-compiled itself, so it is loaded once and cached per
 * process (loading costs ~50 ms).
 */

import type wabtInit from 'wabt';
import { GenesisError } from '../core/index.ts';

type Wabt = Awaited<ReturnType<typeof wabtInit>>;
let wabtPromise: Promise<Wabt> | undefined;

async function wabt(): Promise<Wabt> {
  if (wabtPromise === undefined) wabtPromise = import('wabt').then((m) => m.default());
  return wabtPromise;
}

/**
 * Assembles WebAssembly text. Enables the features Node 20 runs (exceptions, SIMD, bulk memory,
 * reference types, multi-value) so adversarial tests can use them.
 * @throws {GenesisError} TOOLCHAIN_WAT_PARSE with wabt's message.
 */
export async function watToWasm(text: string, filename = 'module.wat'): Promise<Uint8Array> {
  const w = await wabt();
  const features = {
    exceptions: true,
    simd: true,
    bulk_memory: true,
    reference_types: true,
    multi_value: true,
    tail_call: true,
  };
  let mod: ReturnType<Wabt['parseWat']> | undefined;
  try {
    mod = w.parseWat(filename, text, features);
    mod.resolveNames();
    mod.validate();
    const { buffer } = mod.toBinary({ log: false, write_debug_names: false });
    return new Uint8Array(buffer);
  } catch (e) {
    throw new GenesisError(
      'TOOLCHAIN_WAT_PARSE',
      `${filename}: ${e instanceof Error ? e.message.trim() : String(e)}`,
      { cause: e },
    );
  } finally {
    mod?.destroy();
  }
}
