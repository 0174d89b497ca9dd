/**
 * Systematic Reed-Solomon erasure code over GF(2^8), byte-compatible with Backblaze
 * JavaReedSolomon and klauspost/reedsolomon (same field polynomial 0x11D, same encoding matrix),
 * so shards written by either can be read by the other.
 */
import { Buffer } from 'node:buffer';
import { assert } from '../../core/index.ts';
import { ERASURE_ERROR_CODES, ErasureError } from './errors.ts';
import type { GfKernel, KernelName } from './kernel.ts';
import { createPortableKernel } from './kernel-portable.ts';
import { createWasmKernel, WasmKernelInstance } from './kernel-wasm.ts';
import { type GfMatrix, invert, multiply, selectRows, systematicMatrix } from './matrix.ts';
import { ErasureStripe } from './stripe.ts';

/** Most shards (data + parity) one code can have: GF(2^8) has 256 distinct evaluation points. */
export const RS_SHARDS_MAX = 256;
/** Default number of decode matrices kept per codec (one per erasure pattern, LRU). */
export const RS_DECODE_CACHE_ENTRIES_MAX = 64;
/** Bytes per shard that `verify` recomputes at a time, so it needs no shard-sized scratch. */
export const RS_VERIFY_SEGMENT_BYTES = 64 * 1024;

/** Which kernel a codec uses: `auto` takes WebAssembly SIMD when the engine has it. */
export type KernelChoice = 'auto' | KernelName;

/** Options of {@link ReedSolomon}. */
export interface ReedSolomonOptions {
  /** Kernel selection; default `auto`. `wasm-simd` throws ERASURE_KERNEL_UNAVAILABLE if absent. */
  readonly kernel?: KernelChoice;
  /** Decode matrices cached (LRU); default {@link RS_DECODE_CACHE_ENTRIES_MAX}, 0 disables. */
  readonly decodeCacheEntries?: number;
}

/** The kernel for a codec whose coefficient matrices have at most `maxCoefficients` entries. */
function pickKernel(choice: KernelChoice, maxCoefficients: number): GfKernel {
  if (choice === 'portable') return createPortableKernel();
  const wasm = createWasmKernel(maxCoefficients);
  if (wasm !== undefined) return wasm;
  if (choice === 'wasm-simd') {
    throw new ErasureError(
      ERASURE_ERROR_CODES.kernelUnavailable,
      'WebAssembly SIMD is not available',
    );
  }
  return createPortableKernel();
}

/**
 * A Reed-Solomon code with `dataShards` data and `parityShards` parity shards.
 *
 * @example
 * const rs = new ReedSolomon(10, 4);
 * const parity = rs.encode(data);             // data: 10 equal-length Uint8Arrays
 * const all = rs.reconstruct([undefined, ...data.slice(1), ...parity]);
 */
export class ReedSolomon {
  /** k: shards that carry the data. */
  readonly dataShards: number;
  /** m: shards of parity; any m shards may be lost. */
  readonly parityShards: number;
  /** k + m. */
  readonly totalShards: number;
  /** The kernel in use. */
  readonly kernelName: KernelName;
  readonly #matrix: GfMatrix;
  readonly #parityRows: Uint8Array;
  readonly #kernel: GfKernel;
  readonly #cacheMax: number;
  readonly #decodeCache = new Map<string, Uint8Array>();

  /**
   * @param dataShards k ≥ 1
   * @param parityShards m ≥ 0, with k + m ≤ {@link RS_SHARDS_MAX}
   * @throws {ErasureError} ERASURE_INVALID_PARAMS for other counts; ERASURE_KERNEL_UNAVAILABLE.
   */
  constructor(dataShards: number, parityShards: number, options: ReedSolomonOptions = {}) {
    const cacheMax = options.decodeCacheEntries ?? RS_DECODE_CACHE_ENTRIES_MAX;
    if (
      !Number.isInteger(dataShards) ||
      !Number.isInteger(parityShards) ||
      dataShards < 1 ||
      parityShards < 0 ||
      dataShards + parityShards > RS_SHARDS_MAX ||
      !Number.isInteger(cacheMax) ||
      cacheMax < 0
    ) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.invalidParams,
        `need 1 <= dataShards, 0 <= parityShards, dataShards + parityShards <= ${RS_SHARDS_MAX}; got ${dataShards}+${parityShards}`,
        { details: { dataShards, parityShards, decodeCacheEntries: cacheMax } },
      );
    }
    this.dataShards = dataShards;
    this.parityShards = parityShards;
    this.totalShards = dataShards + parityShards;
    this.#matrix = systematicMatrix(dataShards, parityShards);
    this.#parityRows = this.#matrix.data.slice(dataShards * dataShards);
    // Encode and verify use the m x k parity rows, reconstruct at most m x k decode rows.
    this.#kernel = pickKernel(options.kernel ?? 'auto', dataShards * Math.max(1, parityShards));
    this.kernelName = this.#kernel.name;
    this.#cacheMax = cacheMax;
  }

  /** A copy of the (k + m) x k encoding matrix, row-major; rows 0..k-1 are the identity. */
  encodingMatrix(): Uint8Array {
    return this.#matrix.data.slice();
  }

  /**
   * Computes the parity shards of `data`.
   * @param data exactly k shards of equal length ≥ 1
   * @returns m new parity shards
   * @throws {ErasureError} ERASURE_SHARD_COUNT, ERASURE_SHARD_SIZE
   */
  encode(data: readonly Uint8Array[]): Uint8Array[] {
    const size = this.#checkShards(data, this.dataShards, 'data');
    const parity = Array.from({ length: this.parityShards }, () => new Uint8Array(size));
    this.#kernel.mulRows(this.#parityRows, data, parity, size);
    return parity;
  }

  /**
   * Computes the parity of `data` into caller-owned buffers (no allocation; for hot paths that
   * recycle 1 MiB shard buffers). `parity` must not overlap `data`.
   * @throws {ErasureError} ERASURE_SHARD_COUNT, ERASURE_SHARD_SIZE
   */
  encodeInto(data: readonly Uint8Array[], parity: readonly Uint8Array[]): void {
    const size = this.#checkShards(data, this.dataShards, 'data');
    const paritySize = this.#checkShards(parity, this.parityShards, 'parity');
    if (paritySize !== size) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.shardSize,
        `parity shards are ${paritySize} bytes, data ${size}`,
        {
          details: { dataBytes: size, parityBytes: paritySize },
        },
      );
    }
    this.#kernel.mulRows(this.#parityRows, data, parity, size);
  }

  /**
   * True when the parity shards match the data shards.
   * @param shards all k + m shards, data first
   * @throws {ErasureError} ERASURE_SHARD_COUNT, ERASURE_SHARD_SIZE
   */
  verify(shards: readonly Uint8Array[]): boolean {
    const size = this.#checkShards(shards, this.totalShards, 'shards');
    const k = this.dataShards;
    const m = this.parityShards;
    const seg = Math.min(size, RS_VERIFY_SEGMENT_BYTES);
    const scratch = Array.from({ length: m }, () => new Uint8Array(seg));
    for (let off = 0; off < size; off += seg) {
      const len = Math.min(seg, size - off);
      const inputs = shards.slice(0, k).map((s) => s.subarray(off, off + len));
      const outputs = len === seg ? scratch : scratch.map((s) => s.subarray(0, len));
      this.#kernel.mulRows(this.#parityRows, inputs, outputs, len);
      for (let p = 0; p < m; p++) {
        const want = shards[k + p]!.subarray(off, off + len);
        if (!Buffer.from(want.buffer, want.byteOffset, len).equals(outputs[p]!)) return false;
      }
    }
    return true;
  }

  /**
   * Rebuilds every missing shard from any k present ones.
   * @param shards k + m entries, data first; `undefined` (or `null`) marks a missing shard
   * @returns all k + m shards: the present ones as given, the missing ones newly allocated
   * @throws {ErasureError} ERASURE_SHARD_COUNT, ERASURE_SHARD_SIZE, ERASURE_TOO_FEW_SHARDS
   */
  reconstruct(shards: readonly (Uint8Array | undefined | null)[]): Uint8Array[] {
    const { size, missing } = this.#checkReconstruct(shards);
    return this.#rebuild(
      shards,
      missing,
      missing.map(() => new Uint8Array(size)),
      size,
    );
  }

  /**
   * Like {@link reconstruct}, but writes the missing shards into caller-owned buffers (no
   * allocation): `buffers[j]` receives the j-th missing shard in index order. Extra buffers are
   * left untouched. Buffers must not overlap the present shards.
   * @throws {ErasureError} as {@link reconstruct}; ERASURE_SHARD_COUNT when there are fewer
   *   buffers than missing shards, ERASURE_SHARD_SIZE when one is not exactly the shard size.
   */
  reconstructInto(
    shards: readonly (Uint8Array | undefined | null)[],
    buffers: readonly Uint8Array[],
  ): Uint8Array[] {
    const { size, missing } = this.#checkReconstruct(shards);
    if (buffers.length < missing.length) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.shardCount,
        `${missing.length} shards are missing but only ${buffers.length} buffers were given`,
        { details: { expected: missing.length, actual: buffers.length } },
      );
    }
    const targets = buffers.slice(0, missing.length);
    this.#checkShards(targets, missing.length, 'buffers');
    if (targets.length > 0 && targets[0]!.length !== size) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.shardSize,
        `buffers are ${targets[0]!.length} bytes, shards ${size}`,
        { details: { what: 'buffers', expectedBytes: size, actualBytes: targets[0]!.length } },
      );
    }
    return this.#rebuild(shards, missing, targets, size);
  }

  /**
   * Rebuilds only the missing shards listed in `wanted` (ascending, each missing in `shards`),
   * `wanted[j]` into `buffers[j]`; the other missing shards stay missing. The work is
   * proportional to `wanted.length`: a repair that needs one shard does not pay for the rest.
   * @throws {ErasureError} as {@link reconstructInto}; ERASURE_SHARD_COUNT when `wanted` is not
   *   an ascending list of missing indices or there are fewer buffers than wanted shards.
   */
  reconstructSomeInto(
    shards: readonly (Uint8Array | undefined | null)[],
    wanted: readonly number[],
    buffers: readonly Uint8Array[],
  ): (Uint8Array | undefined)[] {
    const { size, missing } = this.#checkReconstruct(shards);
    const missingSet = new Set(missing);
    const ascending = wanted.every((w, j) => j === 0 || w > (wanted[j - 1] as number));
    if (!ascending || !wanted.every((w) => missingSet.has(w)) || buffers.length < wanted.length) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.shardCount,
        `wanted shards must be ascending missing indices with a buffer each (wanted ${wanted.join(',')}, missing ${missing.join(',')}, ${buffers.length} buffers)`,
        { details: { wanted: [...wanted], missing, buffers: buffers.length } },
      );
    }
    const targets = buffers.slice(0, wanted.length);
    if (targets.length > 0) this.#checkShards(targets, targets.length, 'buffers');
    if (targets.length > 0 && targets[0]!.length !== size) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.shardSize,
        `buffers are ${targets[0]!.length} bytes, shards ${size}`,
        { details: { what: 'buffers', expectedBytes: size, actualBytes: targets[0]!.length } },
      );
    }
    return this.#rebuild(shards, wanted, targets, size);
  }

  #checkReconstruct(shards: readonly (Uint8Array | undefined | null)[]): {
    size: number;
    missing: number[];
  } {
    if (shards.length !== this.totalShards) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.shardCount,
        `expected ${this.totalShards} shard slots, got ${shards.length}`,
        { details: { expected: this.totalShards, actual: shards.length } },
      );
    }
    const present: Uint8Array[] = [];
    const missing: number[] = [];
    shards.forEach((s, i) => {
      if (s === undefined || s === null) missing.push(i);
      else present.push(s);
    });
    if (present.length < this.dataShards) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.tooFewShards,
        `need ${this.dataShards} shards to reconstruct, have ${present.length} (missing ${missing.join(',')})`,
        { details: { needed: this.dataShards, present: present.length, missing } },
      );
    }
    const size = this.#checkShards(present, present.length, 'shards');
    return { size, missing };
  }

  /** Writes the missing shards into `targets` in one pass over k present shards. */
  #rebuild(
    shards: readonly (Uint8Array | undefined | null)[],
    missing: readonly number[],
    targets: readonly Uint8Array[],
    size: number,
  ): Uint8Array[] {
    const out = shards.slice() as Uint8Array[];
    if (missing.length === 0) return out;
    // Like klauspost, decode from the first k present shards (data shards first, so a pattern
    // with few data losses mostly reads data shards).
    const chosen: number[] = [];
    for (let i = 0; i < shards.length && chosen.length < this.dataShards; i++) {
      if (shards[i] !== undefined && shards[i] !== null) chosen.push(i);
    }
    const coeffs = this.#decodeRows(chosen, missing);
    this.#kernel.mulRows(
      coeffs,
      chosen.map((i) => shards[i]!),
      targets,
      size,
    );
    missing.forEach((idx, j) => {
      out[idx] = targets[j]!;
    });
    return out;
  }

  /**
   * A stripe whose shards live in WebAssembly memory, so `encode()` and `reconstruct(lost)` work
   * in place without copying (the fastest path; each stripe owns k + m padded shards of memory).
   * @param shardBytes bytes per shard, ≥ 1
   * @throws {ErasureError} ERASURE_KERNEL_UNAVAILABLE without WebAssembly SIMD or when the codec
   *   was made with the portable kernel; ERASURE_SHARD_SIZE for a bad or too large size.
   */
  createStripe(shardBytes: number): ErasureStripe {
    const kernel =
      this.kernelName === 'wasm-simd'
        ? WasmKernelInstance.create(this.dataShards * Math.max(1, this.parityShards))
        : undefined;
    if (kernel === undefined) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.kernelUnavailable,
        'stripes need the wasm-simd kernel',
      );
    }
    return new ErasureStripe(
      {
        dataShards: this.dataShards,
        parityShards: this.parityShards,
        parityRows: this.#parityRows,
        decodeRows: (chosen, missing) => this.#decodeRows(chosen, missing),
      },
      kernel,
      shardBytes,
    );
  }

  /**
   * The |missing| x k matrix that maps the chosen shards to the missing ones: for a missing data
   * shard d, row d of (E_chosen)^-1; for a missing parity shard p, E[p] · (E_chosen)^-1. One pass
   * over the inputs then rebuilds data and parity together. Cached per pattern (LRU).
   */
  #decodeRows(chosen: readonly number[], missing: readonly number[]): Uint8Array {
    const key = `${chosen.join(',')}/${missing.join(',')}`;
    const hit = this.#decodeCache.get(key);
    if (hit !== undefined) {
      this.#decodeCache.delete(key);
      this.#decodeCache.set(key, hit);
      return hit;
    }
    const k = this.dataShards;
    const inv = invert(selectRows(this.#matrix, chosen));
    assert(inv !== undefined, 'every k rows of a systematic Vandermonde code are independent');
    const rows = new Uint8Array(missing.length * k);
    const parityMissing = missing.filter((i) => i >= k);
    const parityDecode =
      parityMissing.length === 0
        ? undefined
        : multiply(selectRows(this.#matrix, parityMissing), inv);
    let p = 0;
    missing.forEach((idx, j) => {
      const src =
        idx < k
          ? inv.data.subarray(idx * k, (idx + 1) * k)
          : parityDecode!.data.subarray(p++ * k, p * k);
      rows.set(src, j * k);
    });
    if (this.#cacheMax > 0) {
      if (this.#decodeCache.size >= this.#cacheMax) {
        const oldest = this.#decodeCache.keys().next();
        if (oldest.done !== true) this.#decodeCache.delete(oldest.value);
      }
      this.#decodeCache.set(key, rows);
    }
    return rows;
  }

  /** Checks count, type and equal non-zero lengths; returns the common length. */
  #checkShards(shards: readonly Uint8Array[], expected: number, what: string): number {
    if (shards.length !== expected) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.shardCount,
        `expected ${expected} ${what}, got ${shards.length}`,
        {
          details: { what, expected, actual: shards.length },
        },
      );
    }
    const first = shards[0];
    const size = first instanceof Uint8Array ? first.length : 0;
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i];
      if (!(s instanceof Uint8Array) || s.length !== size || size === 0) {
        throw new ErasureError(
          ERASURE_ERROR_CODES.shardSize,
          `${what}[${i}] must be a non-empty Uint8Array of ${size} bytes like ${what}[0]`,
          {
            details: {
              what,
              index: i,
              expectedBytes: size,
              actualBytes: s instanceof Uint8Array ? s.length : null,
            },
          },
        );
      }
    }
    return size;
  }
}
