/**
 * RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs, and their verification.
 *
 * Leaf hash = SHA-256(0x00 ‖ d), interior node = SHA-256(0x01 ‖ left ‖ right), and a tree of
 * n > 1 leaves splits at k = the largest power of two strictly smaller than n (§2.1.1). Proof
 * generation reads hashes through a {@link MerkleHashSource}: any store that can return the hash
 * of a *complete* (perfect, aligned) subtree serves every proof in O(log n) reads, which is how
 * the SQLite log answers proofs at a million entries without rehashing leaves.
 */
import { hash } from 'node:crypto';
import { assert } from '../core/index.ts';
import { bytesEqual } from './bytes.ts';

/** Size in bytes of every hash in the tree (SHA-256). */
export const MERKLE_HASH_BYTES = 32;
/** Largest tree size accepted by proof generation and verification (2^53 - 1, a safe integer). */
export const MERKLE_TREE_SIZE_MAX = Number.MAX_SAFE_INTEGER;
/** Longest proof a verifier accepts: a tree of at most 2^53 leaves never needs more. */
export const MERKLE_PROOF_HASHES_MAX = 64;

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

/** SHA-256 of the empty string: the root of the empty tree (RFC 9162 §2.1.1). */
export const EMPTY_ROOT: Uint8Array = sha256();

function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  // One-shot crypto.hash avoids a Hash object per call (about 2.5x faster for small inputs).
  const input = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
  return new Uint8Array(hash('sha256', input, 'buffer'));
}

/**
 * The RFC 9162 §2.1.1 leaf hash of one log entry.
 * @param data - The entry bytes.
 * @returns SHA-256(0x00 ‖ data).
 * @example leafHash(new TextEncoder().encode('hello'))
 */
export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(LEAF_PREFIX, data);
}

/** The RFC 9162 §2.1.1 interior node hash SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(NODE_PREFIX, left, right);
}

/** Largest power of two strictly smaller than `n` (n ≥ 2), the split point k of §2.1.1. */
export function splitPoint(n: number): number {
  assert(n >= 2 && Number.isSafeInteger(n), 'splitPoint needs n >= 2');
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** log2(n) when n is a power of two, else undefined (exact for every safe integer). */
export function log2Exact(n: number): number | undefined {
  let p = 1;
  let level = 0;
  while (p < n) {
    p *= 2;
    level++;
  }
  return p === n ? level : undefined;
}

/**
 * Read access to a Merkle tree's complete subtrees: `perfectHash(level, index)` is the hash of
 * leaves [index·2^level, (index+1)·2^level), which must all exist. Level 0 are leaf hashes.
 */
export interface MerkleHashSource {
  perfectHash(level: number, index: number): Uint8Array;
}

/**
 * MTH(D[start:end]) for a range that starts on a 2^m boundary where 2^m ≥ end − start, i.e. any
 * range that appears in RFC 9162 proofs. A full aligned range is one lookup; a partial right edge
 * is split at k as in §2.1.1, whose left part is again a full aligned range.
 */
export function rangeHash(src: MerkleHashSource, start: number, end: number): Uint8Array {
  const n = end - start;
  assert(n >= 1, 'rangeHash of an empty range');
  const level = log2Exact(n);
  if (level !== undefined && start % n === 0) return src.perfectHash(level, start / n);
  if (n === 1) return src.perfectHash(0, start);
  const k = splitPoint(n);
  return nodeHash(rangeHash(src, start, start + k), rangeHash(src, start + k, end));
}

/** An in-memory tree over leaf hashes, storing every complete subtree (for tests and tools). */
export class MemoryMerkleTree implements MerkleHashSource {
  private readonly levels: Uint8Array[][] = [[]];

  /** Builds a tree from entry bytes (each is leaf-hashed). */
  static fromLeaves(leaves: readonly Uint8Array[]): MemoryMerkleTree {
    const t = new MemoryMerkleTree();
    for (const d of leaves) t.appendLeafHash(leafHash(d));
    return t;
  }

  /** Number of leaves. */
  get size(): number {
    return this.levels[0]?.length ?? 0;
  }

  /** Appends an already hashed leaf and completes every subtree it closes. */
  appendLeafHash(h: Uint8Array): void {
    assert(h.length === MERKLE_HASH_BYTES, 'leaf hash length');
    let level = 0;
    let hash = h;
    for (;;) {
      const row = this.levels[level] ?? [];
      this.levels[level] = row;
      row.push(hash);
      if (row.length % 2 !== 0) return;
      const left = row[row.length - 2];
      assert(left !== undefined, 'left sibling');
      hash = nodeHash(left, hash);
      level++;
    }
  }

  perfectHash(level: number, index: number): Uint8Array {
    const h = this.levels[level]?.[index];
    assert(h !== undefined, `no complete subtree at level ${level} index ${index}`);
    return h;
  }

  /** MTH of the first `treeSize` leaves. */
  root(treeSize = this.size): Uint8Array {
    assert(treeSize <= this.size, 'treeSize beyond tree');
    return treeSize === 0 ? EMPTY_ROOT : rangeHash(this, 0, treeSize);
  }
}

/**
 * MTH(D[n]) of RFC 9162 §2.1.1 over entry bytes.
 * @param leaves - The entries (not yet hashed), in log order.
 * @returns The 32-byte root; SHA-256("") for no leaves.
 */
export function rootFromLeaves(leaves: readonly Uint8Array[]): Uint8Array {
  return MemoryMerkleTree.fromLeaves(leaves).root();
}

function sourceOf(tree: MerkleHashSource | readonly Uint8Array[]): MerkleHashSource {
  return Array.isArray(tree)
    ? MemoryMerkleTree.fromLeaves(tree as readonly Uint8Array[])
    : (tree as MerkleHashSource);
}

function checkSizes(index: number, treeSize: number): void {
  assert(
    Number.isSafeInteger(treeSize) && treeSize >= 0,
    'treeSize must be a safe non-negative integer',
  );
  assert(
    Number.isSafeInteger(index) && index >= 0 && index < treeSize,
    'index must be in [0, treeSize)',
  );
}

/**
 * PATH(m, D[n]) of RFC 9162 §2.1.3.1: the audit path of leaf `index` in the tree of the first
 * `treeSize` leaves, ordered from the leaf upwards.
 * @param index - Leaf index m, 0 ≤ m < treeSize.
 * @param treeSize - Tree size n.
 * @param tree - A {@link MerkleHashSource}, or the entries themselves (leaf-hashed here).
 */
export function inclusionProof(
  index: number,
  treeSize: number,
  tree: MerkleHashSource | readonly Uint8Array[],
): Uint8Array[] {
  checkSizes(index, treeSize);
  const src = sourceOf(tree);
  const path: Uint8Array[] = [];
  // Walk down from the root, remembering the sibling subtree at each split; the path lists
  // them bottom-up, so collect top-down and reverse.
  let start = 0;
  let end = treeSize;
  let m = index;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m < k) {
      path.push(rangeHash(src, start + k, end));
      end = start + k;
    } else {
      path.push(rangeHash(src, start, start + k));
      start += k;
      m -= k;
    }
  }
  return path.reverse();
}

/**
 * PROOF(m, D[n]) of RFC 9162 §2.1.4.1 (SUBPROOF with b = true): proves that the tree of size
 * `size1` is a prefix of the tree of size `size2`.
 * @param size1 - Old size m, 0 < m ≤ n.
 * @param size2 - New size n.
 */
export function consistencyProof(
  size1: number,
  size2: number,
  tree: MerkleHashSource | readonly Uint8Array[],
): Uint8Array[] {
  assert(Number.isSafeInteger(size2) && Number.isSafeInteger(size1), 'sizes must be safe integers');
  assert(size1 > 0 && size1 <= size2, 'consistency proof needs 0 < size1 <= size2');
  const src = sourceOf(tree);
  const proof: Uint8Array[] = [];
  let start = 0;
  let end = size2;
  let m = size1;
  let b = true;
  for (;;) {
    const n = end - start;
    if (m === n) {
      if (!b) proof.push(rangeHash(src, start, end));
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      proof.push(rangeHash(src, start + k, end));
      end = start + k;
    } else {
      proof.push(rangeHash(src, start, start + k));
      start += k;
      m -= k;
      b = false;
    }
  }
  return proof.reverse();
}

function validProof(proof: readonly Uint8Array[]): boolean {
  if (proof.length > MERKLE_PROOF_HASHES_MAX) return false;
  return proof.every((p) => p instanceof Uint8Array && p.length === MERKLE_HASH_BYTES);
}

/**
 * The RFC 9162 §2.1.3.2 inclusion verification. Also requires `leafHash` to be exactly 32 bytes
 * (transparency-dev rule: otherwise an empty leaf and an empty root "verify" a tree of size 1).
 * @returns true iff `proof` proves that `leafHash` is leaf `index` of the tree with root `root`.
 */
export function verifyInclusion(
  leafHashValue: Uint8Array,
  index: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (
    !Number.isSafeInteger(index) ||
    !Number.isSafeInteger(treeSize) ||
    index < 0 ||
    index >= treeSize
  )
    return false;
  if (leafHashValue.length !== MERKLE_HASH_BYTES || !validProof(proof)) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r = leafHashValue;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      // Skip the levels where this node is a left child with no right sibling (§2.1.3.2 step 5.2).
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(r, root);
}

/**
 * The RFC 9162 §2.1.4.2 consistency verification. Sizes equal: the proof must be empty and the
 * roots equal. A proof from size 0 is always rejected (transparency-dev rule since PR #236: the
 * empty tree is trivially a prefix of everything, so such a "proof" proves nothing).
 * @returns true iff `proof` proves the tree (size1, root1) is a prefix of (size2, root2).
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2)) return false;
  if (size1 <= 0 || size2 < size1) return false;
  if (size1 === size2) return proof.length === 0 && bytesEqual(root1, root2);
  if (proof.length === 0 || !validProof(proof)) return false;
  const path = [...proof];
  // §2.1.4.2 step 2: when size1 is a power of two, the old root is itself a node of the path.
  if (log2Exact(size1) !== undefined) path.unshift(root1);
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  const first = path[0];
  assert(first !== undefined, 'non-empty path');
  let fr = first;
  let sr = first;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(fr, root1) && bytesEqual(sr, root2);
}
