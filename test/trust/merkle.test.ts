import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  MemoryMerkleTree,
  rootFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from '../../src/trust/index.ts';
import { b64, hex, listJson, readVector } from './vectors.ts';

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}
interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}
interface Roots {
  leafInputsHex: string[];
  leafHashesHex: string[];
  roots: { treeSize: number; rootHex: string }[];
  nodeHashesByLevel: { levels: string[][] };
}

const roots = readVector<Roots>('merkle/roots.json');
const leaves = roots.leafInputsHex.map(hex);
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('RFC 9162 Merkle: transparency-dev vectors', () => {
  const inclusionFiles = listJson('merkle/inclusion');
  const consistencyFiles = listJson('merkle/consistency');

  it('found every vector file', () => {
    expect(inclusionFiles.length).toBe(98);
    expect(consistencyFiles.length).toBe(98);
  });

  it.each(inclusionFiles)('inclusion %s', (file) => {
    const v = readVector<InclusionVector>(file);
    const ok = verifyInclusion(
      b64(v.leafHash),
      v.leafIdx,
      v.treeSize,
      (v.proof ?? []).map(b64),
      b64(v.root),
    );
    expect(ok).toBe(!v.wantErr);
  });

  it.each(consistencyFiles)('consistency %s', (file) => {
    const v = readVector<ConsistencyVector>(file);
    const ok = verifyConsistency(
      v.size1,
      v.size2,
      (v.proof ?? []).map(b64),
      b64(v.root1),
      b64(v.root2),
    );
    expect(ok).toBe(!v.wantErr);
  });

  it('computes every reference root (sizes 0..8) and leaf hash', () => {
    for (const [i, d] of leaves.entries()) expect(toHex(leafHash(d))).toBe(roots.leafHashesHex[i]);
    for (const r of roots.roots)
      expect(toHex(rootFromLeaves(leaves.slice(0, r.treeSize)))).toBe(r.rootHex);
  });

  it('stores every complete subtree hash of the 8-leaf tree', () => {
    const t = MemoryMerkleTree.fromLeaves(leaves);
    for (const [level, row] of roots.nodeHashesByLevel.levels.entries()) {
      for (const [index, h] of row.entries()) expect(toHex(t.perfectHash(level, index))).toBe(h);
    }
  });

  it('generates the exact happy-path proofs of the vectors', () => {
    for (const file of inclusionFiles.filter(
      (f) => f.endsWith('happy-path.json') && /inclusion\/\d\//.test(f),
    )) {
      const v = readVector<InclusionVector>(file);
      expect(inclusionProof(v.leafIdx, v.treeSize, leaves).map(toHex)).toEqual(
        (v.proof ?? []).map((p) => toHex(b64(p))),
      );
    }
    for (const file of consistencyFiles.filter(
      (f) => f.endsWith('happy-path.json') && /consistency\/\d\//.test(f),
    )) {
      const v = readVector<ConsistencyVector>(file);
      expect(consistencyProof(v.size1, v.size2, leaves).map(toHex)).toEqual(
        (v.proof ?? []).map((p) => toHex(b64(p))),
      );
    }
  });
});

describe('RFC 9162 Merkle: properties', () => {
  // Distinct leaves (index-prefixed), so that "another index verifies" would be a real bug.
  const treeArb = fc
    .array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 70 })
    .map((d) => d.map((x, i) => Uint8Array.of(i, ...x)));

  it('every generated inclusion proof verifies, and fails for any other index or root', () => {
    fc.assert(
      fc.property(treeArb, fc.nat(), fc.nat(), (data, a, b) => {
        const t = MemoryMerkleTree.fromLeaves(data);
        const size = 1 + (a % data.length);
        const idx = b % size;
        const root = t.root(size);
        const proof = inclusionProof(idx, size, t);
        expect(verifyInclusion(t.perfectHash(0, idx), idx, size, proof, root)).toBe(true);
        if (size > 1)
          expect(verifyInclusion(t.perfectHash(0, idx), (idx + 1) % size, size, proof, root)).toBe(
            false,
          );
        expect(verifyInclusion(t.perfectHash(0, idx), idx, size, proof, leafHash(root))).toBe(
          false,
        );
      }),
      { numRuns: 150 },
    );
  });

  it('every generated consistency proof verifies; a flipped bit fails', () => {
    fc.assert(
      fc.property(treeArb, fc.nat(), fc.nat(), fc.nat(), (data, a, b, bit) => {
        const t = MemoryMerkleTree.fromLeaves(data);
        const size2 = 1 + (a % data.length);
        const size1 = 1 + (b % size2);
        const proof = consistencyProof(size1, size2, t);
        expect(verifyConsistency(size1, size2, proof, t.root(size1), t.root(size2))).toBe(true);
        if (proof.length > 0) {
          const i = bit % (proof.length * 256);
          const mutated = proof.map((p) => p.slice());
          const target = mutated[Math.floor(i / 256)];
          if (target !== undefined)
            target[(i % 256) >> 3] = (target[(i % 256) >> 3] ?? 0) ^ (1 << (i % 8));
          expect(verifyConsistency(size1, size2, mutated, t.root(size1), t.root(size2))).toBe(
            false,
          );
        }
      }),
      { numRuns: 150 },
    );
  });

  it('rootFromLeaves equals the naive recursive definition', () => {
    const mth = (d: Uint8Array[]): Uint8Array => {
      if (d.length === 0)
        return new Uint8Array(
          Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'),
        );
      if (d.length === 1) return leafHash(d[0] as Uint8Array);
      let k = 1;
      while (k * 2 < d.length) k *= 2;
      const h = new Uint8Array(65);
      h[0] = 1;
      h.set(mth(d.slice(0, k)), 1);
      h.set(mth(d.slice(k)), 33);
      return new Uint8Array(createHash('sha256').update(h).digest());
    };
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 4 }), { maxLength: 40 }), (d) => {
        expect(toHex(rootFromLeaves(d))).toBe(toHex(mth(d)));
      }),
      { numRuns: 100 },
    );
  });
});
