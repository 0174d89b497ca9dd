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
