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

/** State of a fresh instance before its start function ran: what recycling restores. */
export interface PristineState {
  /** Initial linear memory (zeros plus active data segments), or undefined without memory. */
  readonly memory: Uint8Array | undefined;
  /** Initial values of the module's mutable globals, in `savedGlobals` order. */
  readonly globals: readonly unknown[];
}

/** A module the kernel instrumented and compiled; spawn domains from it. */
export class KernelModule {
  /** True when the module was built for preemption with Asyncify (see docs/kernel.md). */
  readonly preemptible: boolean;
  /**
   * Why instances of this module are never recycled through the spawn pool (undefined: they
   * can be). See {@link poolBlocker}.
   */
  readonly poolBlocker: string | undefined;
  /**
   * State of an instance the kernel cannot read from JS and that the code may change at run
   * time (a table's contents, a passive data segment's dropped flag), or undefined. Such an
   * instance can be neither recycled nor checkpointed faithfully.
   */
  readonly hiddenState: string | undefined;
  /** @internal Captured from the first instance; set by the kernel. */
  pristine: PristineState | undefined;

  private constructor(
    token: symbol,
    readonly name: string,
    readonly module: WasmModule,
    readonly info: ModuleInfo,
    readonly savedGlobals: readonly number[],
    readonly fuelChecks: number,
    readonly bytesIn: number,
    poolBlocker: string | undefined,
  ) {
    if (token !== LOADER_TOKEN)
      throw new KernelError(KernelErrorCode.LOADER_NOT_INSTRUMENTED, 'use loadModule');
    const e = info.exports;
    this.preemptible =
      e.has('asyncify_start_unwind') && e.has(Exports.ASYNC_BUFFER) && e.has(Exports.SOFT_FUEL);
    this.hiddenState = poolBlocker;
    this.poolBlocker = this.preemptible ? 'preemptible (Asyncify) build' : poolBlocker;
  }

  /** @internal */
  static create(
    name: string,
    ins: Instrumented,
    module: WasmModule,
    bytesIn: number,
    poolBlocker: string | undefined = undefined,
  ): KernelModule {
    return new KernelModule(
      LOADER_TOKEN,
      name,
      module,
      ins.info,
      ins.savedGlobals,
      ins.checks,
      bytesIn,
      poolBlocker,
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
  return KernelModule.create(name, ins, module, bytes.length, poolBlocker(bytes));
}

const SEC_TABLE = 4;
const SEC_CODE = 10;
const SEC_DATA_COUNT = 12;
/** Opcodes that change a table: table.set, and 0xFC-prefixed table.init, elem.drop,
 * table.copy, table.grow, table.fill (table.size, 0xFC 16, is listed too: harmless). */
const OP_TABLE_SET = 0x26;
const OP_PREFIX_FC = 0xfc;
const FC_MEMORY_INIT = 8;
const FC_TABLE_OPS_MIN = 12;
const FC_TABLE_OPS_MAX = 17;

/**
 * Decides whether a recycled instance can be made indistinguishable from a fresh one (the
 * spawn pool, docs/kernel.md). Memory and mutable globals are reset by the kernel; what it
 * cannot reach from JS is a table's contents and a passive data segment's dropped state. So:
 *  - a module with no table section has no table (imported tables are refused) → fine;
 *    with one, any byte that could be a table-mutating opcode in the code section blocks it;
 *  - `memory.init`/`data.drop` need a data count section; with one, any byte pair that could be
 *    `memory.init` blocks it (active segments are dropped at instantiation in both cases).
 * The scan is conservative — an immediate that happens to equal an opcode byte also blocks
 * pooling — so it can only make a module slower to spawn, never leak state.
 * Returns the reason, or undefined when recycling is safe. Input: the validated original bytes.
 */
export function poolBlocker(bytes: Uint8Array): string | undefined {
  let pos = 8;
  let hasTable = false;
  let hasDataCount = false;
  let code: [number, number] | undefined;
  const u32 = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++] as number;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  while (pos < bytes.length) {
    const id = bytes[pos++] as number;
    const len = u32();
    if (id === SEC_TABLE) hasTable = true;
    if (id === SEC_DATA_COUNT) hasDataCount = true;
    if (id === SEC_CODE) code = [pos, pos + len];
    pos += len;
  }
  if (code === undefined || (!hasTable && !hasDataCount)) return undefined;
  for (let i = code[0]; i < code[1]; i++) {
    const b = bytes[i] as number;
    if (hasTable && b === OP_TABLE_SET) return 'code may mutate a table';
    if (b !== OP_PREFIX_FC) continue;
    const op = bytes[i + 1] as number;
    if (hasTable && op >= FC_TABLE_OPS_MIN && op <= FC_TABLE_OPS_MAX)
      return 'code may mutate a table';
    if (hasDataCount && op === FC_MEMORY_INIT) return 'code may use passive data segments';
  }
  return undefined;
}

/** Syscalls an Asyncify build must list in `asyncify-imports`. */
export const ASYNCIFY_IMPORTS: readonly string[] = UNWINDING_SYSCALLS.map((n) => `genesis.${n}`);
