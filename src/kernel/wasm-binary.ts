/**
 * A small WebAssembly binary reader and the kernel's load-time instrumenter.
 *
 * The instrumenter rewrites a module (binary format, WebAssembly Core Specification 2.0 §5) so
 * that CPU use is metered inline, without a JS call per block (issue 3, "Scheduling"):
 *  - a mutable i32 fuel global is appended to the global section and exported to the kernel;
 *  - at every function entry and at the head of every loop (so every back-edge pays), a
 *    straight-line sequence subtracts the static instruction count of that region and traps
 *    (`unreachable`, after recording the fault kind in a second global) when fuel goes negative;
 *  - in functions with loops the counter lives in an appended local (a register), loaded at
 *    entry, written back before every call, exit, throw and explicit trap and reloaded after
 *    every call and catch, so the global stays exact wherever the kernel or another function
 *    can see it, at a fraction of the cost of a global load/store per back-edge (see scanBody);
 *  - every `memory.grow` is preceded by a check against a quota global, so growth beyond the
 *    domain's MemoryQuota faults the domain instead of silently returning -1;
 *  - every mutable global and the memory are exported under `__genesis_*` names so the kernel can
 *    checkpoint and restore them.
 * Appending globals and locals never shifts an existing index, and no function import is added,
 * so no call, export or element needs renumbering: the rewrite is a splice, not a re-encode.
 *
 * In `yield` mode (used by the toolchain before Binaryen's Asyncify pass) the out-of-fuel branch
 * calls the module's own `genesis.fuel_yield` import instead of trapping, so the domain can be
 * unwound and later resumed. The kernel still applies its own trap-mode pass on load: the
 * guarantee that a runaway loop cannot stall the kernel never depends on the toolchain.
 */
import { ABI_NAMESPACE, FaultKind, KERNEL_EXPORT_PREFIX, SYSCALLS } from './abi.ts';
import { KernelError, KernelErrorCode } from './errors.ts';
import {
  BLOCK_DEPTH_MAX,
  FUNCTION_INSTRUCTIONS_MAX,
  MODULE_BYTES_MAX,
  MODULE_ENTRIES_MAX,
} from './limits.ts';

const malformed = (msg: string, details: Record<string, unknown> = {}): KernelError =>
  new KernelError(KernelErrorCode.LOADER_MALFORMED, msg, { details });

/** A bounds-checked cursor over a byte array; every read past `end` throws LOADER_MALFORMED. */
export class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public pos = 0,
    public end = bytes.length,
  ) {}

  u8(): number {
    if (this.pos >= this.end) throw malformed('unexpected end of section', { at: this.pos });
    return this.bytes[this.pos++] as number;
  }

  /** Unsigned LEB128, at most 32 bits (§5.2.2). */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.u8();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) throw malformed('u32 out of range', { at: this.pos });
        return result;
      }
      shift += 7;
    }
    throw malformed('LEB128 too long', { at: this.pos });
  }

  /** Skips a signed LEB128 of at most `maxBytes` bytes. */
  skipSigned(maxBytes: number): void {
    for (let i = 0; i < maxBytes; i++) if ((this.u8() & 0x80) === 0) return;
    throw malformed('signed LEB128 too long', { at: this.pos });
  }

  skip(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw malformed('length past end', { at: this.pos, n });
    this.pos += n;
  }

  name(): string {
    const n = this.u32();
    const start = this.pos;
    this.skip(n);
    return Buffer.from(this.bytes.subarray(start, start + n)).toString('utf8');
  }

  count(what: string): number {
    const n = this.u32();
    if (n > MODULE_ENTRIES_MAX) throw malformed(`too many ${what}`, { n });
    return n;
  }
}

/** A growable byte buffer with LEB128 writers. */
export class Writer {
  private buf = new Uint8Array(256);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(b: number): this {
    this.room(1);
    this.buf[this.length++] = b & 0xff;
    return this;
  }

  u32(v: number): this {
    let x = v >>> 0;
    do {
      let b = x & 0x7f;
      x >>>= 7;
      if (x !== 0) b |= 0x80;
      this.u8(b);
    } while (x !== 0);
    return this;
  }

  s32(v: number): this {
    let x = v | 0;
    for (;;) {
      const b = x & 0x7f;
      x >>= 7;
      if ((x === 0 && (b & 0x40) === 0) || (x === -1 && (b & 0x40) !== 0)) return this.u8(b);
      this.u8(b | 0x80);
    }
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  name(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.u32(b.length).bytes(b);
  }

  /** Appends `w` prefixed with its length (a vector or section payload). */
  sized(w: Writer): this {
    return this.u32(w.length).bytes(w.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** A function type. */
export interface FuncType {
  readonly params: readonly number[];
  readonly results: readonly number[];
}

/** What the loader learned about a module. */
export interface ModuleInfo {
  readonly types: readonly FuncType[];
  readonly funcImports: readonly {
    readonly module: string;
    readonly name: string;
    readonly type: number;
  }[];
  readonly definedFuncTypes: readonly number[];
  readonly memory: { readonly minPages: number; readonly maxPages: number | undefined } | undefined;
  readonly globals: readonly { readonly type: number; readonly mutable: boolean }[];
  readonly exports: ReadonlyMap<string, { readonly kind: number; readonly index: number }>;
  readonly hasStart: boolean;
}

interface Section {
  readonly id: number;
  readonly start: number;
  readonly end: number;
}

const SECTION_ORDER: Readonly<Record<number, number>> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  13: 6,
  6: 7,
  7: 8,
  8: 9,
  9: 10,
  12: 11,
  10: 12,
  11: 13,
};
const SEC_TYPE = 1;
const SEC_IMPORT = 2;
const SEC_FUNCTION = 3;
const SEC_MEMORY = 5;
const SEC_GLOBAL = 6;
const SEC_EXPORT = 7;
const SEC_START = 8;
const SEC_CODE = 10;
const KIND_FUNC = 0;
const KIND_MEMORY = 2;
const KIND_GLOBAL = 3;

function splitSections(bytes: Uint8Array): Section[] {
  if (bytes.length > MODULE_BYTES_MAX) {
    throw new KernelError(KernelErrorCode.LOADER_TOO_LARGE, `module is ${bytes.length} bytes`, {
      details: { limit: MODULE_BYTES_MAX },
    });
  }
  const r = new Reader(bytes);
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const m of magic) if (r.u8() !== m) throw malformed('bad magic or version');
  const sections: Section[] = [];
  let lastRank = 0;
  while (r.pos < r.end) {
    const id = r.u8();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    if (id !== 0) {
      const rank = SECTION_ORDER[id];
      if (rank === undefined || rank <= lastRank)
        throw malformed('unknown or out-of-order section', { id });
      lastRank = rank;
    }
    sections.push({ id, start, end: r.pos });
  }
  return sections;
}

function readValType(r: Reader): number {
  const t = r.u8();
  if (
    t === 0x7f ||
    t === 0x7e ||
    t === 0x7d ||
    t === 0x7c ||
    t === 0x7b ||
    t === 0x70 ||
    t === 0x6f
  )
    return t;
  throw new KernelError(KernelErrorCode.LOADER_UNSUPPORTED, 'unsupported value type', {
    details: { type: t },
  });
}

function readLimits(r: Reader): { min: number; max: number | undefined; flags: number } {
  const flags = r.u8();
  if (flags > 1) {
    throw new KernelError(
      KernelErrorCode.LOADER_UNSUPPORTED,
      'shared or 64-bit memory/table limits',
      {
        details: { flags },
      },
    );
  }
  const min = r.u32();
  return { min, max: flags === 1 ? r.u32() : undefined, flags };
}

/** Skips a constant expression up to and including its `end` (§3.3.10). */
function skipConstExpr(r: Reader): void {
  for (let i = 0; i < 64; i++) {
    const op = r.u8();
    if (op === 0x0b) return;
    if (op === 0x41) r.skipSigned(5);
    else if (op === 0x42) r.skipSigned(10);
    else if (op === 0x43) r.skip(4);
    else if (op === 0x44) r.skip(8);
    else if (op === 0x23 || op === 0xd2) r.u32();
    else if (op === 0xd0) r.u8();
    else if (op === 0xfd && r.u32() === 12) r.skip(16);
    else if (
      op !== 0x6a &&
      op !== 0x6b &&
      op !== 0x6c &&
      op !== 0x7c &&
      op !== 0x7d &&
      op !== 0x7e
    ) {
      throw malformed('unsupported constant expression', { op });
    }
  }
  throw malformed('constant expression too long');
}

function parseTypes(r: Reader): FuncType[] {
  const n = r.count('types');
  const types: FuncType[] = [];
  for (let i = 0; i < n; i++) {
    if (r.u8() !== 0x60)
      throw new KernelError(KernelErrorCode.LOADER_UNSUPPORTED, 'non-function type');
    const params = Array.from({ length: r.count('params') }, () => readValType(r));
    const results = Array.from({ length: r.count('results') }, () => readValType(r));
    types.push({ params, results });
  }
  return types;
}

function parseImports(r: Reader, types: readonly FuncType[]): ModuleInfo['funcImports'] {
  const n = r.count('imports');
  const out: { module: string; name: string; type: number }[] = [];
  for (let i = 0; i < n; i++) {
    const module = r.name();
    const name = r.name();
    const kind = r.u8();
    if (kind !== KIND_FUNC) {
      throw new KernelError(
        KernelErrorCode.LOADER_IMPORT,
        `import ${module}.${name} is not a function`,
        {
          details: { module, name, kind },
        },
      );
    }
    const type = r.u32();
    const sig = SYSCALLS[name];
    const t = types[type];
    if (module !== ABI_NAMESPACE || sig === undefined || !Object.hasOwn(SYSCALLS, name)) {
      throw new KernelError(KernelErrorCode.LOADER_IMPORT, `unknown import ${module}.${name}`, {
        details: { module, name },
      });
    }
    if (t === undefined || !sameList(t.params, sig[0]) || !sameList(t.results, sig[1])) {
      throw new KernelError(
        KernelErrorCode.LOADER_IMPORT,
        `import ${module}.${name} has the wrong type`,
        {
          details: { module, name },
        },
      );
    }
    out.push({ module, name, type });
  }
  return out;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Parses the module's header sections (everything but code and data). */
export function parseModule(bytes: Uint8Array): ModuleInfo {
  return parseWithSections(bytes, splitSections(bytes));
}

function parseWithSections(bytes: Uint8Array, sections: readonly Section[]): ModuleInfo {
  let types: FuncType[] = [];
  let funcImports: ModuleInfo['funcImports'] = [];
  let definedFuncTypes: number[] = [];
  let memory: ModuleInfo['memory'];
  const globals: { type: number; mutable: boolean }[] = [];
  const exports = new Map<string, { kind: number; index: number }>();
  let hasStart = false;
  for (const s of sections) {
    const r = new Reader(bytes, s.start, s.end);
    if (s.id === SEC_TYPE) types = parseTypes(r);
    else if (s.id === SEC_IMPORT) funcImports = parseImports(r, types);
    else if (s.id === SEC_FUNCTION)
      definedFuncTypes = Array.from({ length: r.count('functions') }, () => r.u32());
    else if (s.id === SEC_MEMORY) {
      const n = r.count('memories');
      if (n > 1) throw new KernelError(KernelErrorCode.LOADER_UNSUPPORTED, 'more than one memory');
      if (n === 1) {
        const l = readLimits(r);
        memory = { minPages: l.min, maxPages: l.max };
      }
    } else if (s.id === SEC_GLOBAL) {
      const n = r.count('globals');
      for (let i = 0; i < n; i++) {
        const type = readValType(r);
        const mutable = r.u8() === 1;
        skipConstExpr(r);
        globals.push({ type, mutable });
      }
    } else if (s.id === SEC_EXPORT) {
      const n = r.count('exports');
      for (let i = 0; i < n; i++) {
        const name = r.name();
        const kind = r.u8();
        const index = r.u32();
        if (name.startsWith(KERNEL_EXPORT_PREFIX)) {
          throw new KernelError(
            KernelErrorCode.LOADER_UNSUPPORTED,
            `export name ${name} is reserved`,
          );
        }
        exports.set(name, { kind, index });
      }
    } else if (s.id === SEC_START) hasStart = true;
  }
  return { types, funcImports, definedFuncTypes, memory, globals, exports, hasStart };
}

/** How the out-of-fuel branch behaves. */
export type InstrumentMode = 'trap' | 'yield';

/** Names of the exports the trap-mode instrumenter adds. */
export const InstrumentedExports = {
  FUEL: `${KERNEL_EXPORT_PREFIX}fuel`,
  FAULT: `${KERNEL_EXPORT_PREFIX}fault`,
  QUOTA: `${KERNEL_EXPORT_PREFIX}quota_pages`,
  MEMORY: `${KERNEL_EXPORT_PREFIX}memory`,
  START: `${KERNEL_EXPORT_PREFIX}start`,
  FUEL_GET: `${KERNEL_EXPORT_PREFIX}fuel_get`,
  FUEL_SET: `${KERNEL_EXPORT_PREFIX}fuel_set`,
  globalName: (i: number): string => `${KERNEL_EXPORT_PREFIX}g${i}`,
} as const;

/** Result of {@link instrument}. */
export interface Instrumented {
  readonly bytes: Uint8Array;
  readonly info: ModuleInfo;
  /** Indices of the module's own mutable globals, exported as `__genesis_g<i>`. */
  readonly savedGlobals: readonly number[];
  /** Number of fuel checks inserted (function entries + loop heads). */
  readonly checks: number;
}

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /**
   * Keep fuel in a function-local inside functions with loops (default true). `false` charges
   * the global at every check: same fuel, slower; tests use it as the reference.
   */
  readonly cacheFuel?: boolean;
}

interface Insert {
  readonly pos: number;
  readonly kind: 'fuel' | 'grow' | 'save' | 'reload';
  cost: number;
}

/**
 * Instruments `bytes` (see the file comment). Throws a {@link KernelError} with a LOADER_* code
 * for anything malformed or unsupported; never hangs (every loop is bounded by the input size).
 */
export function instrument(
  bytes: Uint8Array,
  mode: InstrumentMode = 'trap',
  options: InstrumentOptions = {},
): Instrumented {
  const sections = splitSections(bytes);
  const info = parseWithSections(bytes, sections);
  const importedFuncs = info.funcImports.length;
  const fuelGlobal = info.globals.length;
  const faultGlobal = fuelGlobal + 1;
  const quotaGlobal = fuelGlobal + 2;
  let yieldFunc = -1;
  if (mode === 'yield') {
    yieldFunc = info.funcImports.findIndex((f) => f.name === 'fuel_yield');
    if (yieldFunc < 0) {
      throw new KernelError(
        KernelErrorCode.BAD_ARGUMENT,
        'yield mode needs a genesis.fuel_yield import',
      );
    }
  }
  const savedGlobals = info.globals.flatMap((g, i) => (g.mutable ? [i] : []));
  const ctx: BodyContext = {
    info,
    importedFuncs,
    fuelGlobal,
    faultGlobal,
    quotaGlobal,
    yieldFunc,
    mode,
    cacheFuel: options.cacheFuel ?? true,
    checks: 0,
  };
  const out = new Writer().bytes(bytes.subarray(0, 8));
  // The start function is exported instead of run at instantiation, so the kernel can set the
  // fuel and quota globals before any module code runs.
  let startFunc = -1;
  for (const s of sections)
    if (s.id === SEC_START) startFunc = new Reader(bytes, s.start, s.end).u32();
  // Trap mode also appends two accessor functions, `__genesis_fuel_get/set`: calling a wasm
  // export from JS is several times cheaper than WebAssembly.Global's `value` accessor, and the
  // IPC fast path touches fuel on every call. Appended types and functions shift no index.
  const accessors = mode === 'trap';
  const getType = info.types.length;
  const getFunc = importedFuncs + info.definedFuncTypes.length;
  const appendVec = (id: number, existing: Section | undefined, extra: Uint8Array[]): void => {
    let count = 0;
    let body: Uint8Array = new Uint8Array(0);
    if (existing !== undefined) {
      const r = new Reader(bytes, existing.start, existing.end);
      count = r.count('entries');
      body = bytes.subarray(r.pos, existing.end);
    }
    if (existing === undefined && extra.length === 0) return;
    const w = new Writer().u32(count + extra.length).bytes(body);
    for (const e of extra) w.bytes(e);
    out.u8(id).sized(w);
  };
  const globalsExtra = (): Uint8Array[] => {
    // Fuel starts at 0 and the quota at 0 pages: nothing runs or grows before the kernel sets them.
    const g = (init: number): Uint8Array =>
      new Writer().u8(0x7f).u8(1).u8(0x41).s32(init).u8(0x0b).finish();
    return mode === 'trap' ? [g(0), g(0), g(0)] : [g(0x3fffffff)];
  };
  const exportsExtra = (): Uint8Array[] => {
    const added: [string, number, number][] = [];
    if (mode === 'trap') {
      added.push([InstrumentedExports.FUEL, KIND_GLOBAL, fuelGlobal]);
      added.push([InstrumentedExports.FAULT, KIND_GLOBAL, faultGlobal]);
      added.push([InstrumentedExports.QUOTA, KIND_GLOBAL, quotaGlobal]);
      added.push([InstrumentedExports.FUEL_GET, KIND_FUNC, getFunc]);
      added.push([InstrumentedExports.FUEL_SET, KIND_FUNC, getFunc + 1]);
      if (info.memory !== undefined) added.push([InstrumentedExports.MEMORY, KIND_MEMORY, 0]);
      if (startFunc >= 0) added.push([InstrumentedExports.START, KIND_FUNC, startFunc]);
      for (const g of savedGlobals) added.push([InstrumentedExports.globalName(g), KIND_GLOBAL, g]);
    } else {
      added.push(['genesis_soft_fuel', KIND_GLOBAL, fuelGlobal]);
    }
    return added.map(([name, kind, index]) => new Writer().name(name).u8(kind).u32(index).finish());
  };
  const extras: Record<number, () => Uint8Array[]> = {
    [SEC_TYPE]: () =>
      accessors ? [Uint8Array.of(0x60, 0, 1, 0x7f), Uint8Array.of(0x60, 1, 0x7f, 0)] : [],
    [SEC_FUNCTION]: () =>
      accessors ? [new Writer().u32(getType).finish(), new Writer().u32(getType + 1).finish()] : [],
    [SEC_GLOBAL]: globalsExtra,
    [SEC_EXPORT]: exportsExtra,
  };
  const accessorBodies = (): Uint8Array[] => {
    if (!accessors) return [];
    const get = new Writer().u8(0).u8(0x23).u32(fuelGlobal).u8(0x0b);
    const set = new Writer().u8(0).u8(0x20).u32(0).u8(0x24).u32(fuelGlobal).u8(0x0b);
    return [new Writer().sized(get).finish(), new Writer().sized(set).finish()];
  };
  const done = new Set<number>();
  const emitMissingBefore = (rank: number): void => {
    for (const id of [SEC_TYPE, SEC_FUNCTION, SEC_GLOBAL, SEC_EXPORT, SEC_CODE]) {
      if (done.has(id) || (SECTION_ORDER[id] as number) >= rank) continue;
      done.add(id);
      if (id === SEC_CODE) appendVec(SEC_CODE, undefined, accessorBodies());
      else appendVec(id, undefined, (extras[id] as () => Uint8Array[])());
    }
  };
  for (const s of sections) {
    if (s.id !== 0) emitMissingBefore(SECTION_ORDER[s.id] as number);
    const extra = extras[s.id];
    if (s.id !== 0 && extra !== undefined) {
      done.add(s.id);
      appendVec(s.id, s, extra());
    } else if (s.id === SEC_CODE) {
      done.add(SEC_CODE);
      const w = rewriteCode(bytes, s, ctx, accessorBodies());
      out.u8(SEC_CODE).sized(w);
    } else if (s.id !== SEC_START || mode !== 'trap') {
      out
        .u8(s.id)
        .u32(s.end - s.start)
        .bytes(bytes.subarray(s.start, s.end));
    }
  }
  emitMissingBefore(Number.POSITIVE_INFINITY);
  return { bytes: out.finish(), info, savedGlobals, checks: ctx.checks };
}

interface BodyContext {
  readonly info: ModuleInfo;
  readonly importedFuncs: number;
  readonly fuelGlobal: number;
  readonly faultGlobal: number;
  readonly quotaGlobal: number;
  readonly yieldFunc: number;
  readonly mode: InstrumentMode;
  readonly cacheFuel: boolean;
  checks: number;
}

function rewriteCode(
  bytes: Uint8Array,
  s: Section,
  ctx: BodyContext,
  extra: readonly Uint8Array[],
): Writer {
  const r = new Reader(bytes, s.start, s.end);
  const n = r.count('function bodies');
  if (n !== ctx.info.definedFuncTypes.length) throw malformed('function and code counts differ');
  const w = new Writer().u32(n + extra.length);
  for (let i = 0; i < n; i++) {
    const size = r.u32();
    const end = r.pos + size;
    if (end > s.end) throw malformed('function body past section end', { func: i });
    const type = ctx.info.types[ctx.info.definedFuncTypes[i] as number];
    if (type === undefined) throw malformed('function type index out of range', { func: i });
    w.sized(rewriteBody(new Reader(bytes, r.pos, end), type.params.length, ctx));
    r.pos = end;
  }
  for (const e of extra) w.bytes(e);
  return w;
}

function rewriteBody(r: Reader, paramCount: number, ctx: BodyContext): Writer {
  const groups = r.count('local groups');
  const localsStart = r.pos;
  let localCount = paramCount;
  for (let g = 0; g < groups; g++) {
    localCount += r.u32();
    readValType(r);
    if (localCount > 50_000) throw malformed('too many locals');
  }
  const localsEnd = r.pos;
  const { inserts, loops } = scanBody(r, ctx);
  const hasGrow = inserts.some((x) => x.kind === 'grow');
  // Functions with loops keep fuel in a local (a register) and touch the global only at the
  // boundaries where someone else may read or write it; straight-line functions pay once at
  // entry on the global and need no local at all.
  const cached = loops > 0 && ctx.cacheFuel;
  const growTmp = localCount;
  const local = cached ? localCount + (hasGrow ? 1 : 0) : -1;
  const added = (hasGrow ? 1 : 0) + (cached ? 1 : 0);
  const w = new Writer();
  w.u32(groups + (added > 0 ? 1 : 0)).bytes(r.bytes.subarray(localsStart, localsEnd));
  if (added > 0) w.u32(added).u8(0x7f);
  const F = ctx.fuelGlobal;
  let at = localsEnd;
  for (const ins of inserts) {
    w.bytes(r.bytes.subarray(at, ins.pos));
    at = ins.pos;
    if (ins.kind === 'grow') emitGrowCheck(w, growTmp, ctx);
    else if (ins.kind === 'fuel') emitFuelCheck(w, ins.cost, local, ins.pos === localsEnd, ctx);
    else if (!cached) continue;
    else if (ins.kind === 'save') w.u8(0x20).u32(local).u8(0x24).u32(F);
    else w.u8(0x23).u32(F).u8(0x21).u32(local);
  }
  w.bytes(r.bytes.subarray(at, r.end));
  return w;
}

/**
 * One fuel check: `fuel -= cost; if (fuel < 0) out-of-fuel`. Without a cached local (`local`
 * < 0) it works on the global. With one, on the local; `entry` first loads the global. The
 * out-of-fuel branch writes the local back first, so the kernel sees the negative fuel (and, in
 * yield mode, reloads it after `fuel_yield`: the kernel refilled it while the domain was away).
 */
function emitFuelCheck(
  w: Writer,
  cost: number,
  local: number,
  entry: boolean,
  ctx: BodyContext,
): void {
  ctx.checks++;
  const F = ctx.fuelGlobal;
  if (local < 0) {
    w.u8(0x23).u32(F).u8(0x41).s32(cost).u8(0x6b).u8(0x24).u32(F).u8(0x23).u32(F);
  } else {
    if (entry) w.u8(0x23).u32(F);
    else w.u8(0x20).u32(local);
    w.u8(0x41).s32(cost).u8(0x6b).u8(0x22).u32(local);
  }
  w.u8(0x41).s32(0).u8(0x48).u8(0x04).u8(0x40);
  if (local >= 0) w.u8(0x20).u32(local).u8(0x24).u32(F);
  if (ctx.mode === 'yield') {
    w.u8(0x10).u32(ctx.yieldFunc);
    if (local >= 0) w.u8(0x23).u32(F).u8(0x21).u32(local);
  } else w.u8(0x41).s32(FaultKind.OUT_OF_BUDGET).u8(0x24).u32(ctx.faultGlobal).u8(0x00);
  w.u8(0x0b);
}

function emitGrowCheck(w: Writer, tmpLocal: number, ctx: BodyContext): void {
  w.u8(0x22).u32(tmpLocal).u8(0xad).u8(0x3f).u8(0x00).u8(0xad).u8(0x7c);
  w.u8(0x23).u32(ctx.quotaGlobal).u8(0xad).u8(0x56).u8(0x04).u8(0x40);
  w.u8(0x41).s32(FaultKind.QUOTA_EXCEEDED).u8(0x24).u32(ctx.faultGlobal).u8(0x00).u8(0x0b);
  w.u8(0x20).u32(tmpLocal);
}

/**
 * Walks one function body, returning where to splice fuel checks (function entry, loop heads,
 * each with the instruction count of the region it pays for), memory.grow checks, and, for a
 * cached fuel local, where to write it back to the global (`save`: before every call, every
 * exit — return, a branch to the function's label, the final end, throw — and every explicit
 * `unreachable`) and where to reload it (`reload`: after every call and catch, since the callee
 * or the kernel changed the global). Implicit traps (out-of-bounds, division by zero) need no
 * write-back to stay safe: the activation is dead; the kernel then sees the fuel as of the last
 * call, check trap or entry.
 */
function scanBody(r: Reader, ctx: BodyContext): { inserts: Insert[]; loops: number } {
  const entry: Insert = { pos: r.pos, kind: 'fuel', cost: 0 };
  const inserts: Insert[] = [entry];
  // Each open block remembers which fuel check pays for its instructions.
  const payers: Insert[] = [entry];
  const at = (pos: number, kind: Insert['kind']): void => {
    inserts.push({ pos, kind, cost: 0 });
  };
  let instructions = 0;
  let loops = 0;
  while (payers.length > 0) {
    if (++instructions > FUNCTION_INSTRUCTIONS_MAX) throw malformed('function too long');
    const payer = payers[payers.length - 1] as Insert;
    payer.cost++;
    const pos = r.pos;
    const op = r.u8();
    // The relative depth of the function's own label (a branch to it returns).
    const outer = payers.length - 1;
    if (op === 0x02 || op === 0x04 || op === 0x06) {
      readBlockType(r);
      payers.push(payer);
    } else if (op === 0x03) {
      readBlockType(r);
      const head: Insert = { pos: r.pos, kind: 'fuel', cost: 0 };
      inserts.push(head);
      payers.push(head);
      loops++;
    } else if (op === 0x0b) {
      if (payers.length === 1) at(pos, 'save');
      payers.pop();
    } else if (op === 0x18) {
      // `delegate` closes its `try` like `end` does.
      r.u32();
      payers.pop();
    } else if (op === 0x0c || op === 0x0d) {
      if (r.u32() === outer) at(pos, 'save');
    } else if (op === 0x0e) {
      const n = r.count('br_table targets');
      let exits = false;
      for (let i = 0; i <= n; i++) if (r.u32() === outer) exits = true;
      if (exits) at(pos, 'save');
    } else if (op === 0x40) {
      if (ctx.mode === 'trap') at(pos, 'grow');
      r.u32();
    } else if (op === 0x23 || op === 0x24) {
      // Defence in depth (the original was validated): code may never touch the kernel's globals.
      if (r.u32() >= ctx.info.globals.length) throw malformed('global index out of range');
    } else {
      // unreachable, throw, rethrow, return, calls and tail calls: the global must be exact.
      if (op === 0x00 || op === 0x08 || op === 0x09 || op === 0x0f || (op >= 0x10 && op <= 0x13))
        at(pos, 'save');
      skipImmediates(r, op);
      // call, call_indirect, catch, catch_all: fuel may have changed behind this function's back.
      if (op === 0x10 || op === 0x11 || op === 0x07 || op === 0x19) at(r.pos, 'reload');
    }
    if (payers.length > BLOCK_DEPTH_MAX) throw malformed('blocks nested too deeply');
  }
  if (r.pos !== r.end) throw malformed('function body has bytes after its end');
  // Stable: at one position, a reload (after a call) stays before a save (before the next call).
  inserts.sort((a, b) => a.pos - b.pos);
  return { inserts, loops };
}

function readBlockType(r: Reader): void {
  const b = r.bytes[r.pos];
  if (
    b === 0x40 ||
    b === 0x7f ||
    b === 0x7e ||
    b === 0x7d ||
    b === 0x7c ||
    b === 0x7b ||
    b === 0x70 ||
    b === 0x6f
  ) {
    r.pos++;
  } else r.skipSigned(5);
}

function skipMemarg(r: Reader): void {
  r.u32();
  r.u32();
}

function skipImmediates(r: Reader, op: number): void {
  if (op <= 0x01 || op === 0x05 || op === 0x0f || op === 0x19 || op === 0x1a || op === 0x1b) return;
  if (op >= 0x45 && op <= 0xc4) return;
  if (op === 0xd1) return;
  if (
    (op >= 0x07 && op <= 0x09) ||
    (op >= 0x0c && op <= 0x0d) ||
    op === 0x10 ||
    op === 0x12 ||
    op === 0x18
  ) {
    r.u32();
  } else if (op === 0x0e) {
    const n = r.count('br_table targets');
    for (let i = 0; i <= n; i++) r.u32();
  } else if (op === 0x11 || op === 0x13) {
    r.u32();
    r.u32();
  } else if (op === 0x1c) {
    const n = r.count('select types');
    for (let i = 0; i < n; i++) readValType(r);
  } else if (op >= 0x20 && op <= 0x26) r.u32();
  else if (op >= 0x28 && op <= 0x3e) skipMemarg(r);
  else if (op === 0x3f) r.u32();
  else if (op === 0x41) r.skipSigned(5);
  else if (op === 0x42) r.skipSigned(10);
  else if (op === 0x43) r.skip(4);
  else if (op === 0x44) r.skip(8);
  else if (op === 0xd0) r.u8();
  else if (op === 0xd2) r.u32();
  else if (op === 0xfc) skipPrefixFC(r);
  else if (op === 0xfd) skipPrefixFD(r);
  else
    throw new KernelError(KernelErrorCode.LOADER_UNSUPPORTED, 'unsupported opcode', {
      details: { op },
    });
}

function skipPrefixFC(r: Reader): void {
  const sub = r.u32();
  if (sub <= 7) return;
  if (sub === 8 || sub === 12 || sub === 14) {
    r.u32();
    r.u32();
  } else if (sub === 9 || sub === 11 || sub === 13 || (sub >= 15 && sub <= 17)) r.u32();
  else if (sub === 10) {
    r.u32();
    r.u32();
  } else
    throw new KernelError(KernelErrorCode.LOADER_UNSUPPORTED, 'unsupported 0xfc opcode', {
      details: { sub },
    });
}

function skipPrefixFD(r: Reader): void {
  const sub = r.u32();
  if (sub <= 11 || sub === 92 || sub === 93) skipMemarg(r);
  else if (sub === 12 || sub === 13) r.skip(16);
  else if (sub >= 21 && sub <= 34) r.u8();
  else if (sub >= 84 && sub <= 91) {
    skipMemarg(r);
    r.u8();
  }
}
