/**
 * Stripes held in WebAssembly memory: the k + m shards of one stripe live inside a dedicated
 * kernel instance's linear memory, so encoding and reconstruction read and write them in place,
 * without the copy in and out that caller-owned buffers need. For hot paths (the store filling
 * 1 MiB shards from disk or the network straight into `stripe.data[i]`).
 *
 * The instance's memory is sized once, before the shard views are made, and never grows again:
 * growth would detach every view.
 */
import { assert } from '../../core/index.ts';
import { ERASURE_ERROR_CODES, ErasureError } from './errors.ts';
import {
  chunkBytes,
  WASM_CHUNK_ALIGN_BYTES,
  WASM_MEMORY_BYTES_MAX,
  WASM_WORKING_SET_BYTES,
  type WasmKernelInstance,
} from './kernel-wasm.ts';

/**
 * Extra bytes between consecutive shards. Shards of power-of-two sizes would otherwise start at
 * addresses equal modulo 4 KiB, so the kernel's 10-20 concurrent streams would all map to the
 * same L1 sets and evict each other (measured: the in-place path was slower than copying).
 * 5 cache lines keeps successive shards on different sets.
 */
export const STRIPE_SHARD_STAGGER_BYTES = 320;

/** Largest stripe (all shards, padded) one wasm-memory stripe may hold. */
export const STRIPE_BYTES_MAX = WASM_MEMORY_BYTES_MAX / 2;

/** What a stripe needs from its codec. */
export interface StripeCodec {
  readonly dataShards: number;
  readonly parityShards: number;
  /** The m x k parity rows of the encoding matrix. */
  readonly parityRows: Uint8Array;
  /** The |missing| x k decode rows for the chosen present shards (cached by the codec). */
  decodeRows(chosen: readonly number[], missing: readonly number[]): Uint8Array;
}

/**
 * One stripe of k data and m parity shards inside WebAssembly memory. Write the data into
 * `data[i]` (or any shard you hold into `shards[i]`), then `encode()` or `reconstruct(lost)`.
 */
export class ErasureStripe {
  /** Bytes per shard. */
  readonly shardBytes: number;
  /** All k + m shards, data first: views into the instance's memory. */
  readonly shards: readonly Uint8Array[];
  /** The k data shards (same views as shards[0..k)). */
  readonly data: readonly Uint8Array[];
  /** The m parity shards (same views as shards[k..k+m)). */
  readonly parity: readonly Uint8Array[];
  readonly #codec: StripeCodec;
  readonly #kernel: WasmKernelInstance;
  readonly #addrs: readonly number[];
  /** Shard length rounded up to the kernel's alignment: the span the kernel processes. */
  readonly #padded: number;

  /** @internal Use `ReedSolomon.createStripe`. */
  constructor(codec: StripeCodec, kernel: WasmKernelInstance, shardBytes: number) {
    const total = codec.dataShards + codec.parityShards;
    const padded = Math.ceil(shardBytes / WASM_CHUNK_ALIGN_BYTES) * WASM_CHUNK_ALIGN_BYTES;
    const stride = padded + STRIPE_SHARD_STAGGER_BYTES;
    if (!Number.isInteger(shardBytes) || shardBytes < 1 || total * stride > STRIPE_BYTES_MAX) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.shardSize,
        `stripe shards must be 1..${Math.floor(STRIPE_BYTES_MAX / total)} bytes, got ${shardBytes}`,
        { details: { shardBytes, totalShards: total, stripeBytesMax: STRIPE_BYTES_MAX } },
      );
    }
    this.#codec = codec;
    this.#kernel = kernel;
    this.#padded = padded;
    this.shardBytes = shardBytes;
    kernel.ensureMemory(kernel.shardArea + total * stride);
    const buffer = kernel.memory.buffer;
    this.#addrs = Array.from({ length: total }, (_, i) => kernel.shardArea + i * stride);
    this.shards = this.#addrs.map((at) => new Uint8Array(buffer, at, shardBytes));
    this.data = this.shards.slice(0, codec.dataShards);
    this.parity = this.shards.slice(codec.dataShards);
  }

  /** Computes the parity shards from the data shards, in place. */
  encode(): void {
    const k = this.#codec.dataShards;
    this.#run(this.#codec.parityRows, this.#addrs.slice(0, k), this.#addrs.slice(k));
  }

  /**
   * Rebuilds the shards listed in `lost` (indices into `shards`) in place from the others.
   * @throws {ErasureError} ERASURE_SHARD_COUNT for an index out of range or repeated,
   *   ERASURE_TOO_FEW_SHARDS when more than m are lost.
   */
  reconstruct(lost: readonly number[]): void {
    const total = this.shards.length;
    const missing = [...new Set(lost)].sort((a, b) => a - b);
    if (
      missing.length !== lost.length ||
      missing.some((i) => !Number.isInteger(i) || i < 0 || i >= total)
    ) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.shardCount,
        `lost shard indices must be distinct, in 0..${total - 1}`,
        {
          details: { lost: [...lost] },
        },
      );
    }
    if (missing.length > this.#codec.parityShards) {
      throw new ErasureError(
        ERASURE_ERROR_CODES.tooFewShards,
        `${missing.length} shards lost, at most ${this.#codec.parityShards} can be rebuilt`,
        { details: { missing, needed: this.#codec.dataShards } },
      );
    }
    if (missing.length === 0) return;
    const chosen: number[] = [];
    for (let i = 0; i < total && chosen.length < this.#codec.dataShards; i++) {
      if (!missing.includes(i)) chosen.push(i);
    }
    this.#run(
      this.#codec.decodeRows(chosen, missing),
      chosen.map((i) => this.#addrs[i]!),
      missing.map((i) => this.#addrs[i]!),
    );
  }

  /** One pass over the inputs in cache-sized column chunks; no bytes are copied. */
  #run(coeffs: Uint8Array, inputs: readonly number[], outputs: readonly number[]): void {
    const kernel = this.#kernel;
    assert(kernel.memory.buffer === this.shards[0]!.buffer, 'stripe memory must never grow');
    kernel.loadTables(coeffs, inputs.length, outputs.length);
    kernel.setAddresses(inputs, outputs);
    const step = chunkBytes(inputs.length, outputs.length, this.#padded, WASM_WORKING_SET_BYTES);
    for (let off = 0; off < this.#padded; off += step) {
      kernel.run(inputs.length, outputs.length, off, Math.min(this.#padded, off + step));
    }
  }
}
