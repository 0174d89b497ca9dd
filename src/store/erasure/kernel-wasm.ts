/**
 * The WebAssembly SIMD kernel's host side. A {@link WasmKernelInstance} owns one instance (its
 * own linear memory), writes split-nibble tables for a coefficient matrix, and runs the kernel
 * over shards addressed by lists of pointers. Two users:
 *
 * - the copying kernel ({@link createWasmKernel}): streams caller shards through wasm memory in
 *   chunks sized so one chunk of every input and output stays in L2;
 * - stripes held in wasm memory (see stripe.ts): the kernel reads and writes them in place, with
 *   no copy at all.
 *
 * Memory layout: [tables | address lists | shard area]. Tables are laid out per group of up to
 * WASM_OUTPUTS_PER_PASS outputs: for input i, the group's 32-byte entries (16 bytes c·x for
 * x < 16, then 16 bytes c·(x << 4)), so the kernel walks them linearly.
 */
import { assert } from '../../core/index.ts';
import { gfMul } from './gf.ts';
import type { GfKernel } from './kernel.ts';
import { KERNEL_RELAXED_WASM_BASE64, KERNEL_WASM_BASE64 } from './simd/kernel-bytes.ts';

/** Outputs per kernel call; must match OUTPUTS_PER_PASS_MAX in simd/gen-wat.ts (test-checked). */
export const WASM_OUTPUTS_PER_PASS = 4;
/** Shard strides and chunk lengths are multiples of this (>= the kernel's bytes per iteration). */
export const WASM_CHUNK_ALIGN_BYTES = 64;
/**
 * Bytes of all inputs' and outputs' chunks together. 256 KiB fits the per-core L2 (512 KiB on
 * the EPYC machines we measure on, 256 KiB-1 MiB elsewhere) with room for the tables; measured
 * best among 32 KiB..2 MiB for 10+4 (see docs/store-erasure.md).
 */
export const WASM_WORKING_SET_BYTES = 256 * 1024;
/** Upper bound on one shard's chunk, so small codes still stream in cache-sized pieces. */
export const WASM_CHUNK_BYTES_MAX = 64 * 1024;
/** Lower bound on one shard's chunk, so very wide codes still amortise the call overhead. */
export const WASM_CHUNK_BYTES_MIN = 1024;
/** Most shards in a code (GF(2^8)); bounds the address lists. */
const WASM_SHARDS_MAX = 256;
const TABLE_BYTES = 32;
const WASM_PAGE_BYTES = 65536;
/** Linear memory is 32-bit addressed: at most 65536 pages (4 GiB); we stay under 2 GiB. */
export const WASM_MEMORY_BYTES_MAX = 2 ** 31;

// The limits must agree with each other and with the kernel's 32-byte iterations.
assert(WASM_CHUNK_BYTES_MIN <= WASM_CHUNK_BYTES_MAX, 'chunk bounds out of order');
assert(
  WASM_CHUNK_BYTES_MIN % WASM_CHUNK_ALIGN_BYTES === 0 &&
    WASM_CHUNK_BYTES_MAX % WASM_CHUNK_ALIGN_BYTES === 0,
  'chunk bounds must be aligned',
);
assert(WASM_CHUNK_ALIGN_BYTES % 32 === 0, 'chunks must hold whole kernel iterations');

/**
 * The slice of the WebAssembly JS API this file uses. Declared locally because the project's
 * TypeScript libs (ES2023 + @types/node 20) carry no WebAssembly types, and a global
 * declaration here could clash with another layer's.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmModule {
  readonly __wasmModule?: never;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  readonly Module: new (bytes: Uint8Array) => WasmModule;
  readonly Instance: new (module: WasmModule, imports: object) => { readonly exports: unknown };
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

type MulFn = (
  tab: number,
  inList: number,
  nIn: number,
  outList: number,
  start: number,
  end: number,
) => void;

interface KernelExports {
  readonly memory: WasmMemory;
  readonly mul1: MulFn;
  readonly mul2: MulFn;
  readonly mul3: MulFn;
  readonly mul4: MulFn;
}

/** Which kernel binary a process runs: relaxed SIMD where the engine has it, else plain SIMD. */
export type WasmKernelVariant = 'relaxed-simd' | 'simd';

let compiled:
  | { readonly module: WasmModule; readonly variant: WasmKernelVariant }
  | undefined
  | null;

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * The compiled kernel module (compiled once per process; a compiled module is immutable), or
 * `null` without WebAssembly SIMD. Prefers the relaxed-SIMD build, which validates only where
 * the engine implements relaxed SIMD.
 */
function kernelModule(): WasmModule | null {
  if (compiled === undefined) {
    compiled = null;
    for (const [variant, b64] of [
      ['relaxed-simd', KERNEL_RELAXED_WASM_BASE64],
      ['simd', KERNEL_WASM_BASE64],
    ] as const) {
      const bytes = decodeBase64(b64);
      if (wasmApi?.validate(bytes) === true) {
        compiled = { module: new wasmApi.Module(bytes), variant };
        break;
      }
    }
  }
  return compiled?.module ?? null;
}

/** The kernel binary in use, or `undefined` when WebAssembly SIMD is unavailable. */
export function wasmKernelVariant(): WasmKernelVariant | undefined {
  return kernelModule() === null ? undefined : compiled?.variant;
}

/** True when the SIMD kernel can run here. */
export function wasmSimdAvailable(): boolean {
  return kernelModule() !== null;
}

const align = (n: number): number => Math.ceil(n / WASM_CHUNK_ALIGN_BYTES) * WASM_CHUNK_ALIGN_BYTES;

/**
 * One kernel instance and its memory. `shardArea` is where shard bytes may live; everything
 * below it is tables and address lists, sized for `maxInputs` x `maxOutputs` coefficients.
 */
export class WasmKernelInstance {
  readonly #ex: KernelExports;
  readonly #muls: readonly MulFn[];
  readonly #listsAt: number;
  /** First byte of the shard area (aligned). */
  readonly shardArea: number;
  #mem: Uint8Array;
  #words: Int32Array;
  #tablesFor: Uint8Array | undefined;
  #tablesNIn = -1;

  private constructor(ex: KernelExports, maxCoefficients: number) {
    this.#ex = ex;
    this.#muls = [ex.mul1, ex.mul1, ex.mul2, ex.mul3, ex.mul4];
    this.#listsAt = align(maxCoefficients * TABLE_BYTES);
    this.shardArea = align(this.#listsAt + 2 * 4 * WASM_SHARDS_MAX);
    this.#mem = new Uint8Array(ex.memory.buffer);
    this.#words = new Int32Array(ex.memory.buffer);
    this.ensureMemory(this.shardArea);
  }

  /** A new instance with tables for up to `maxCoefficients`; `undefined` without SIMD. */
  static create(maxCoefficients: number): WasmKernelInstance | undefined {
    const mod = kernelModule();
    if (mod === null || wasmApi === undefined) return undefined;
    const ex = new wasmApi.Instance(mod, {}).exports as KernelExports;
    return new WasmKernelInstance(ex, maxCoefficients);
  }

  /** The whole linear memory as bytes (a new view after growth). */
  get memory(): Uint8Array {
    return this.#mem;
  }

  /** Grows linear memory to at least `bytes`. Views taken earlier are detached by growth. */
  ensureMemory(bytes: number): void {
    assert(bytes <= WASM_MEMORY_BYTES_MAX, `wasm memory of ${bytes} bytes exceeds the limit`);
    const have = this.#ex.memory.buffer.byteLength;
    if (bytes > have) this.#ex.memory.grow(Math.ceil((bytes - have) / WASM_PAGE_BYTES));
    if (this.#mem.buffer !== this.#ex.memory.buffer) {
      this.#mem = new Uint8Array(this.#ex.memory.buffer);
      this.#words = new Int32Array(this.#ex.memory.buffer);
    }
  }

  /** Writes the tables of an nOut x nIn coefficient matrix unless they are already loaded. */
  loadTables(coeffs: Uint8Array, nIn: number, nOut: number): void {
    if (this.#tablesFor === coeffs && this.#tablesNIn === nIn) return;
    assert(nIn * nOut * TABLE_BYTES <= this.#listsAt, 'coefficient matrix larger than reserved');
    const mem = this.#mem;
    let at = 0;
    for (let g = 0; g < nOut; g += WASM_OUTPUTS_PER_PASS) {
      const n = Math.min(WASM_OUTPUTS_PER_PASS, nOut - g);
      for (let i = 0; i < nIn; i++) {
        for (let o = g; o < g + n; o++, at += TABLE_BYTES) {
          const c = coeffs[o * nIn + i]!;
          for (let x = 0; x < 16; x++) {
            mem[at + x] = gfMul(c, x);
            mem[at + 16 + x] = gfMul(c, x << 4);
          }
        }
      }
    }
    this.#tablesFor = coeffs;
    this.#tablesNIn = nIn;
  }

  /** Sets the input and output address lists (byte addresses in linear memory, aligned). */
  setAddresses(inputs: readonly number[], outputs: readonly number[]): void {
    const w = this.#words;
    const base = this.#listsAt >> 2;
    for (let i = 0; i < inputs.length; i++) w[base + i] = inputs[i]!;
    for (let o = 0; o < outputs.length; o++) w[base + WASM_SHARDS_MAX + o] = outputs[o]!;
  }

  /**
   * Runs the loaded tables over bytes [start, end) of every listed shard (end - start a
   * multiple of WASM_CHUNK_ALIGN_BYTES), one kernel call per group of outputs.
   */
  run(nIn: number, nOut: number, start: number, end: number): void {
    const inList = this.#listsAt;
    let tab = 0;
    for (let g = 0; g < nOut; g += WASM_OUTPUTS_PER_PASS) {
      const n = Math.min(WASM_OUTPUTS_PER_PASS, nOut - g);
      this.#muls[n]!(tab, inList, nIn, inList + 4 * (WASM_SHARDS_MAX + g), start, end);
      tab += nIn * n * TABLE_BYTES;
    }
  }
}

/**
 * Chunk length per shard for nIn inputs and nOut outputs of `length` bytes: the working set
 * split evenly, aligned, clamped to [WASM_CHUNK_BYTES_MIN, WASM_CHUNK_BYTES_MAX].
 */
export function chunkBytes(
  nIn: number,
  nOut: number,
  length: number,
  workingSetBytes: number,
): number {
  const budget = Math.floor(workingSetBytes / (nIn + nOut));
  return Math.min(
    WASM_CHUNK_BYTES_MAX,
    Math.max(WASM_CHUNK_BYTES_MIN, budget - (budget % WASM_CHUNK_ALIGN_BYTES)),
    align(length),
  );
}

/**
 * Creates the copying SIMD kernel with its own instance and memory; `undefined` without SIMD.
 * @param maxCoefficients largest nIn x nOut it will be asked for (tables are reserved for it)
 * @param workingSetBytes chunk budget across all inputs and outputs (tuning knob for benchmarks)
 */
export function createWasmKernel(
  maxCoefficients: number = (WASM_SHARDS_MAX / 2) ** 2,
  workingSetBytes: number = WASM_WORKING_SET_BYTES,
): GfKernel | undefined {
  const k = WasmKernelInstance.create(maxCoefficients);
  if (k === undefined) return undefined;
  const inAddrs: number[] = [];
  const outAddrs: number[] = [];
  return {
    name: 'wasm-simd',
    mulRows(coeffs, inputs, outputs, length) {
      const nIn = inputs.length;
      const nOut = outputs.length;
      if (nOut === 0 || length === 0) return;
      k.loadTables(coeffs, nIn, nOut);
      const stride = chunkBytes(nIn, nOut, length, workingSetBytes);
      const inBase = k.shardArea;
      const outBase = inBase + nIn * stride;
      k.ensureMemory(outBase + nOut * stride);
      inAddrs.length = nIn;
      outAddrs.length = nOut;
      for (let i = 0; i < nIn; i++) inAddrs[i] = inBase + i * stride;
      for (let o = 0; o < nOut; o++) outAddrs[o] = outBase + o * stride;
      k.setAddresses(inAddrs, outAddrs);
      const m = k.memory;
      for (let off = 0; off < length; off += stride) {
        const len = Math.min(stride, length - off);
        for (let i = 0; i < nIn; i++)
          m.set(inputs[i]!.subarray(off, off + len), inBase + i * stride);
        k.run(nIn, nOut, 0, align(len));
        for (let o = 0; o < nOut; o++) {
          const at = outBase + o * stride;
          outputs[o]!.set(m.subarray(at, at + len), off);
        }
      }
    },
  };
}
