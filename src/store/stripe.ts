/**
 * Cutting a block into k equal data shards (zero-padded at the end) plus m parity shards, and
 * joining k shards back. The erasure codec is injected (the Reed-Solomon implementation of
 * `./erasure/` by default), so the store works with any systematic MDS code.
 */
import { assert } from '../core/index.ts';
import { ReedSolomon } from './erasure/index.ts';

/** The part of the Reed-Solomon API the store uses. */
export interface ErasureCodec {
  /** Returns the m parity shards of k equal-length data shards. */
  encode(data: Uint8Array[]): Uint8Array[];
  /** Returns all k + m shards from any k of them (others undefined). */
  reconstruct(shards: (Uint8Array | undefined)[]): Uint8Array[];
  /** Optional: computes the parity into caller-owned buffers (no allocation, no copy). */
  encodeInto?(data: readonly Uint8Array[], parity: readonly Uint8Array[]): void;
  /**
   * Optional: like `reconstruct`, but the j-th missing shard (in index order) is written into
   * `buffers[j]` (no allocation, no copy).
   */
  reconstructInto?(
    shards: readonly (Uint8Array | undefined)[],
    buffers: readonly Uint8Array[],
  ): Uint8Array[];
  /**
   * Optional: rebuilds only the `wanted` missing shards (ascending), `wanted[j]` into
   * `buffers[j]`; other missing shards stay undefined.
   */
  reconstructSomeInto?(
    shards: readonly (Uint8Array | undefined)[],
    wanted: readonly number[],
    buffers: readonly Uint8Array[],
  ): (Uint8Array | undefined)[];
}

/** Builds a codec for k data and m parity shards. */
export type CodecFactory = (k: number, m: number) => ErasureCodec;

/** The default codec: GF(2^8) Reed-Solomon compatible with klauspost/reedsolomon. */
export const reedSolomonCodec: CodecFactory = (k, m) => new ReedSolomon(k, m);

/** Length of each shard of a block of `blockBytes` split into k (at least 1 byte). */
export function shardLength(blockBytes: number, k: number): number {
  return Math.max(1, Math.ceil(blockBytes / k));
}

/** Splits a block into k data shards and computes the m parity shards. */
export function encodeStripe(
  codec: ErasureCodec,
  block: Uint8Array,
  k: number,
  m: number,
): Uint8Array[] {
  const len = shardLength(block.length, k);
  const padded = new Uint8Array(len * k);
  padded.set(block);
  const data = Array.from({ length: k }, (_, i) => padded.subarray(i * len, (i + 1) * len));
  const parity = codec.encode(data);
  assert(parity.length === m, 'codec returned m parity shards');
  return [...data, ...parity];
}

/**
 * Erasure-codes a block into k + m caller-provided shard buffers of {@link shardLength} bytes
 * each (for example the tails of the messages that will carry them): data shards are copied in
 * and zero-padded, parity is computed in place. One copy of the block, no other allocation.
 */
export function encodeStripeInto(
  codec: ErasureCodec,
  block: Uint8Array,
  shards: readonly Uint8Array[],
  k: number,
  m: number,
): void {
  const len = shardLength(block.length, k);
  assert(shards.length === k + m, 'k + m shard buffers');
  for (let i = 0; i < k; i++) {
    const dst = shards[i] as Uint8Array;
    assert(dst.length === len, 'shard buffers of the shard length');
    const src = block.subarray(
      Math.min(block.length, i * len),
      Math.min(block.length, (i + 1) * len),
    );
    dst.set(src);
    if (src.length < len) dst.fill(0, src.length);
  }
  const data = shards.slice(0, k);
  const parity = shards.slice(k);
  if (codec.encodeInto !== undefined) {
    codec.encodeInto(data, parity);
    return;
  }
  const out = codec.encode(data);
  assert(out.length === m, 'codec returned m parity shards');
  for (let j = 0; j < m; j++) (parity[j] as Uint8Array).set(out[j] as Uint8Array);
}

/** Joins the first k shards of a full stripe and cuts the padding. */
export function joinStripe(
  shards: readonly Uint8Array[],
  k: number,
  blockBytes: number,
): Uint8Array {
  const first = shards[0];
  assert(first !== undefined, 'stripe has shards');
  const out = new Uint8Array(first.length * k);
  for (let i = 0; i < k; i++) {
    const s = shards[i];
    assert(s !== undefined && s.length === first.length, 'equal data shards');
    out.set(s, i * first.length);
  }
  return out.subarray(0, blockBytes);
}

/**
 * The block as views of its data shards (no copy): the first k shards cut to `blockBytes`,
 * empty shards dropped. Hash them in order to check the block against its CID.
 */
export function stripeParts(
  shards: readonly Uint8Array[],
  k: number,
  blockBytes: number,
): Uint8Array[] {
  const first = shards[0];
  assert(first !== undefined, 'stripe has shards');
  const len = first.length;
  const out: Uint8Array[] = [];
  for (let i = 0; i < k && i * len < blockBytes; i++) {
    const s = shards[i];
    assert(s !== undefined && s.length === len, 'equal data shards');
    out.push(s.subarray(0, Math.min(len, blockBytes - i * len)));
  }
  return out;
}

/** Joins block parts into one buffer (no copy when there is a single part). */
export function joinParts(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Caches one codec per (k, m): building the matrices costs more than a small encode. */
export class CodecCache {
  private readonly codecs = new Map<string, ErasureCodec>();
  constructor(private readonly factory: CodecFactory) {}
  get(k: number, m: number): ErasureCodec {
    const key = `${k}+${m}`;
    let c = this.codecs.get(key);
    if (c === undefined) {
      c = this.factory(k, m);
      this.codecs.set(key, c);
    }
    return c;
  }
}
