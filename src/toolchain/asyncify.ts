/**
 * Making a module preemptible: the kernel's yield-mode fuel instrumentation followed by
 * Binaryen's Asyncify pass, so a domain that exhausts its slice unwinds its stack into its own
 * memory and is later rewound with its state intact.
 *
 * Order matters: fuel checks must exist before Asyncify runs, because Asyncify only instruments
 * the call paths that can reach an unwinding import (`genesis.fuel_yield`). The kernel then
 * applies its own trap-mode instrumentation on load, so a module that lies about its soft fuel
 * still cannot run past its hard budget.
 */
import type Binaryen from 'binaryen';
import { GenesisError } from '../core/index.ts';
import { ASYNCIFY_IMPORTS, instrument } from '../kernel/index.ts';

/** The features Node 20's V8 runs without flags (so Binaryen never emits anything newer). */
function nodeFeatures(binaryen: typeof Binaryen): number {
  const F = binaryen.Features;
  return (
    F.MVP |
    F.MutableGlobals |
    F.NontrappingFPToInt |
    F.SIMD128 |
    F.BulkMemory |
    F.BulkMemoryOpt |
    F.SignExt |
    F.ReferenceTypes |
    F.Multivalue
  );
}

/** Options of {@link makePreemptible}. */
export interface PreemptibleOptions {
  /** Binaryen optimisation level after Asyncify (0–3). Asyncify code is large; 1 is a good default. */
  readonly optimizeLevel?: number;
}

/**
 * Returns a preemptible build of `wasm`. The module must export `genesis_async_buffer` (address)
 * and `genesis_async_buffer_bytes` (size) naming a region it reserves for Asyncify's stack.
 * @throws {GenesisError} TOOLCHAIN_ASYNCIFY.
 */
export async function makePreemptible(
  wasm: Uint8Array,
  options: PreemptibleOptions = {},
): Promise<Uint8Array> {
  // Binaryen is large (seconds to load on a busy machine): load it only when needed.
  const { default: binaryen } = await import('binaryen');
  let withImport = wasm;
  const mod0 = binaryen.readBinary(wasm);
  mod0.setFeatures(nodeFeatures(binaryen));
  try {
    let hasYield = false;
    for (let i = 0; i < mod0.getNumFunctions(); i++) {
      const f = binaryen.getFunctionInfo(mod0.getFunctionByIndex(i));
      if (f.module === 'genesis' && f.base === 'fuel_yield') hasYield = true;
    }
    if (!hasYield) {
      mod0.addFunctionImport(
        '__genesis_fuel_yield',
        'genesis',
        'fuel_yield',
        binaryen.none,
        binaryen.none,
      );
      withImport = mod0.emitBinary();
    }
  } finally {
    mod0.dispose();
  }
  let soft: Uint8Array;
  try {
    soft = instrument(withImport, 'yield').bytes;
  } catch (e) {
    throw new GenesisError(
      'TOOLCHAIN_ASYNCIFY',
      `yield-mode instrumentation failed: ${String(e)}`,
      { cause: e },
    );
  }
  const mod = binaryen.readBinary(soft);
  mod.setFeatures(nodeFeatures(binaryen));
  try {
    binaryen.setPassArgument('asyncify-imports', ASYNCIFY_IMPORTS.join(','));
    mod.runPasses(['asyncify']);
    binaryen.setOptimizeLevel(options.optimizeLevel ?? 1);
    mod.optimize();
    if (!mod.validate())
      throw new GenesisError('TOOLCHAIN_ASYNCIFY', 'asyncify output failed validation');
    return mod.emitBinary();
  } finally {
    binaryen.setPassArgument('asyncify-imports', null);
    mod.dispose();
  }
}
