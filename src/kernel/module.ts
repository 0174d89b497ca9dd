/**
 * Loading: bytes → validated, instrumented, compiled {@link KernelModule}. The kernel runs only
 * modules that went through {@link loadModule} in this process (the constructor is private to
 * this file), which is how it knows every domain's code is metered.
 */
import { Exports, UNWINDING_SYSCALLS } from './abi.ts';
import { KernelError, KernelErrorCode } from './errors.ts';
import { MODULE_BYTES_MAX } from './limits.ts';
import { WA, type WasmModule } from './wasm-api.ts';
import { type Instrumented, instrument, type ModuleInfo } from './wasm-binary.ts';

const LOADER_TOKEN = Symbol('kernel-loader');

/** A module the kernel instrumented and compiled; spawn domains from it. */
export class KernelModule {
  /** True when the module was built for preemption with Asyncify (see docs/kernel.md). */
  readonly preemptible: boolean;

  private constructor(
    token: symbol,
    readonly name: string,
    readonly module: WasmModule,
    readonly info: ModuleInfo,
    readonly savedGlobals: readonly number[],
    readonly fuelChecks: number,
    readonly bytesIn: number,
  ) {
    if (token !== LOADER_TOKEN)
      throw new KernelError(KernelErrorCode.LOADER_NOT_INSTRUMENTED, 'use loadModule');
    const e = info.exports;
    this.preemptible =
      e.has('asyncify_start_unwind') && e.has(Exports.ASYNC_BUFFER) && e.has(Exports.SOFT_FUEL);
  }

  /** @internal */
  static create(
    name: string,
    ins: Instrumented,
    module: WasmModule,
    bytesIn: number,
  ): KernelModule {
    return new KernelModule(
      LOADER_TOKEN,
      name,
      module,
      ins.info,
      ins.savedGlobals,
      ins.checks,
      bytesIn,
    );
  }

  /** Initial memory size in bytes (0 when the module has no memory). */
  get initialMemoryBytes(): number {
    return (this.info.memory?.minPages ?? 0) * 65_536;
  }
}

/**
 * Validates, instruments and compiles a module. Every failure is a {@link KernelError} with a
 * LOADER_* code: the loader never crashes or hangs on hostile bytes.
 */
export function loadModule(bytes: Uint8Array, name = 'module'): KernelModule {
  if (!(bytes instanceof Uint8Array))
    throw new KernelError(KernelErrorCode.BAD_ARGUMENT, 'module must be bytes');
  if (bytes.length > MODULE_BYTES_MAX) {
    throw new KernelError(KernelErrorCode.LOADER_TOO_LARGE, `module is ${bytes.length} bytes`, {
      details: { limit: MODULE_BYTES_MAX },
    });
  }
  // V8 validates the original first, so the instrumenter only ever sees valid code, and no
  // instruction of the original can name the globals and locals the instrumenter appends.
  let valid = false;
  try {
    valid = WA.validate(bytes);
  } catch (e) {
    throw new KernelError(KernelErrorCode.LOADER_MALFORMED, 'validation failed', { cause: e });
  }
  if (!valid)
    throw new KernelError(KernelErrorCode.LOADER_MALFORMED, 'not a valid WebAssembly module');
  const ins = instrument(bytes, 'trap');
  for (const imp of ins.info.funcImports) {
    if (imp.name === 'fuel_yield' && !ins.info.exports.has('asyncify_start_unwind')) {
      // fuel_yield without Asyncify is harmless (the kernel ignores it) but worth rejecting
      // early: the author meant a preemptible module and forgot the toolchain step.
      throw new KernelError(
        KernelErrorCode.LOADER_UNSUPPORTED,
        'fuel_yield import needs an Asyncify build',
      );
    }
  }
  let module: WasmModule;
  try {
    module = new WA.Module(ins.bytes);
  } catch (e) {
    throw new KernelError(
      KernelErrorCode.LOADER_MALFORMED,
      'instrumented module failed to compile',
      { cause: e },
    );
  }
  return KernelModule.create(name, ins, module, bytes.length);
}

/** Syscalls an Asyncify build must list in `asyncify-imports`. */
export const ASYNCIFY_IMPORTS: readonly string[] = UNWINDING_SYSCALLS.map((n) => `genesis.${n}`);
