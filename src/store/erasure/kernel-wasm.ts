/**
 * The WebAssembly SIMD kernel's host side: owns one instance (its own linear memory), writes the
 * split-nibble tables for a coefficient matrix, and streams the shards through wasm memory in
 * chunks sized so that one chunk of every input and output stays in the L2 cache.
 *
 * Memory layout: [tables | inputs: nIn x stride | outputs: nOut x stride]. Tables are laid out per
 * group of up to OUTPUTS_PER_PASS_MAX outputs: for input i, the group's outputs' 32-byte entries
 * (16 bytes c·x for x < 16, then 16 bytes c·(x << 4)), so the kernel walks them linearly.
 */
import { gfMul } from './gf.ts';
import type { GfKernel } from './kernel.ts';
import { KERNEL_WASM_BASE64 } from './simd/kernel-bytes.ts';

/** Outputs per kernel call; must match OUTPUTS_PER_PASS_MAX in simd/gen-wat.ts (test-checked). */
export const WASM_OUTPUTS_PER_PASS = 4;
/** Chunk strides are multiples of this (the kernel's bytes per iteration, rounded up to 64). */
export const WASM_CHUNK_ALIGN_BYTES = 64;
/**
 * Bytes of all inputs' and outputs' chunks together. 256 KiB fits the per-core L2 (512 KiB on
 * the EPYC machines we measure on, 256 KiB-1 MiB elsewhere) with room for the tables.
 */
export const WASM_WORKING_SET_BYTES = 256 * 1024;
/** Upper bound on one shard's chunk, so small codes still stream in cache-sized pieces. */
export const WASM_CHUNK_BYTES_MAX = 64 * 1024;
/** Lower bound on one shard's chunk, so very wide codes still amortise the call overhead. */
export const WASM_CHUNK_BYTES_MIN = 1024;
const WASM_PAGE_BYTES = 65536;

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
  input: number,
  nIn: number,
  out: number,
  stride: number,
  len: number,
) => void;

interface KernelExports {
  readonly memory: WasmMemory;
  readonly mul1: MulFn;
  readonly mul2: MulFn;
  readonly mul3: MulFn;
  readonly mul4: MulFn;
}

let compiled: WasmModule | undefined | null;

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The compiled kernel module, or `null` when this engine lacks WebAssembly SIMD. */
function kernelModule(): WasmModule | null {
  if (compiled === undefined) {
    const bytes = decodeBase64(KERNEL_WASM_BASE64);
    compiled = wasmApi?.validate(bytes) === true ? new wasmApi.Module(bytes) : null;
  }
  return compiled;
}

/** True when the SIMD kernel can run here. */
export function wasmSimdAvailable(): boolean {
  return kernelModule() !== null;
}

/** Writes the 32-byte split-nibble table entry of coefficient `c` at `at`. */
function writeTables(mem: Uint8Array, at: number, c: number): void {
  for (let x = 0; x < 16; x++) {
    mem[at + x] = gfMul(c, x);
    mem[at + 16 + x] = gfMul(c, x << 4);
  }
}

/**
 * Creates a SIMD kernel with its own instance and memory; `undefined` without SIMD support.
 * @param workingSetBytes chunk budget across all inputs and outputs (tuning knob for benchmarks)
 */
export function createWasmKernel(
  workingSetBytes: number = WASM_WORKING_SET_BYTES,
): GfKernel | undefined {
  const mod = kernelModule();
  if (mod === null) return undefined;
  if (wasmApi === undefined) return undefined;
  const ex = new wasmApi.Instance(mod, {}).exports as KernelExports;
  const muls: readonly MulFn[] = [ex.mul1, ex.mul1, ex.mul2, ex.mul3, ex.mul4];
  let mem = new Uint8Array(ex.memory.buffer);
  let tablesFor: Uint8Array | undefined;
  let tablesNIn = -1;
  let tablesBytes = 0;

  const ensureMemory = (bytes: number): void => {
    if (bytes > ex.memory.buffer.byteLength) {
      ex.memory.grow(Math.ceil((bytes - ex.memory.buffer.byteLength) / WASM_PAGE_BYTES));
    }
    if (mem.buffer !== ex.memory.buffer) mem = new Uint8Array(ex.memory.buffer);
  };

  const loadTables = (coeffs: Uint8Array, nIn: number, nOut: number): void => {
    if (tablesFor === coeffs && tablesNIn === nIn) return;
    tablesBytes = nIn * nOut * 32;
    ensureMemory(tablesBytes);
    let at = 0;
    for (let g = 0; g < nOut; g += WASM_OUTPUTS_PER_PASS) {
      const n = Math.min(WASM_OUTPUTS_PER_PASS, nOut - g);
      for (let i = 0; i < nIn; i++) {
        for (let o = g; o < g + n; o++, at += 32) writeTables(mem, at, coeffs[o * nIn + i]!);
      }
    }
    tablesFor = coeffs;
    tablesNIn = nIn;
  };

  return {
    name: 'wasm-simd',
    mulRows(coeffs, inputs, outputs, length) {
      const nIn = inputs.length;
      const nOut = outputs.length;
      if (nOut === 0 || length === 0) return;
      loadTables(coeffs, nIn, nOut);
      const budget = Math.floor(workingSetBytes / (nIn + nOut));
      const stride = Math.min(
        WASM_CHUNK_BYTES_MAX,
        Math.max(WASM_CHUNK_BYTES_MIN, budget - (budget % WASM_CHUNK_ALIGN_BYTES)),
        Math.ceil(length / WASM_CHUNK_ALIGN_BYTES) * WASM_CHUNK_ALIGN_BYTES,
      );
      const inBase = Math.ceil(tablesBytes / WASM_CHUNK_ALIGN_BYTES) * WASM_CHUNK_ALIGN_BYTES;
      const outBase = inBase + nIn * stride;
      ensureMemory(outBase + nOut * stride);
      const m = mem;
      for (let off = 0; off < length; off += stride) {
        const len = Math.min(stride, length - off);
        const padded = Math.ceil(len / WASM_CHUNK_ALIGN_BYTES) * WASM_CHUNK_ALIGN_BYTES;
        for (let i = 0; i < nIn; i++)
          m.set(inputs[i]!.subarray(off, off + len), inBase + i * stride);
        let tab = 0;
        for (let g = 0; g < nOut; g += WASM_OUTPUTS_PER_PASS) {
          const n = Math.min(WASM_OUTPUTS_PER_PASS, nOut - g);
          muls[n]!(tab, inBase, nIn, outBase + g * stride, stride, padded);
          tab += nIn * n * 32;
        }
        for (let o = 0; o < nOut; o++) {
          const at = outBase + o * stride;
          outputs[o]!.set(m.subarray(at, at + len), off);
        }
      }
    },
  };
}
