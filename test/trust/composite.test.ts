import { createHash } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COMPOSITE_SCHEMES,
  type CompositeAlgorithm,
  CompositeSigner,
  CompositeVerifier,
  compositeKeyGen,
  compositeMessageRepresentative,
  compositePublicKey,
  compositeVerify,
  HYBRID_KEM_CIPHERTEXT_BYTES,
  hybridDecapsulate,
  hybridEncapsulate,
  hybridKemKeyPair,
  isTrustError,
} from '../../src/trust/index.ts';
import { b64, hex, readVector } from './vectors.ts';

interface CompositeVectors {
  m: string;
  ctx: string;
  tests: { tcId: string; pk: string; sk: string; s: string; sWithContext: string }[];
}
interface Representatives {
  representatives: {
    tcId: string;
    signatureField: 's' | 'sWithContext';
    ctxHex: string;
    mPrimeHex: string;
  }[];
}

const vectors = readVector<CompositeVectors>('composite-sigs/testvectors-ed25519.json');
const reps = readVector<Representatives>('composite-sigs/message-representatives.json');
const m = b64(vectors.m);
const ctx = b64(vectors.ctx);
const algOf = (tcId: string): CompositeAlgorithm => tcId.replace(/^id-/, '') as CompositeAlgorithm;

function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const out = b.slice();
  const i = bit >> 3;
  out[i] = (out[i] ?? 0) ^ (1 << (bit & 7));
  return out;
}

describe('composite ML-DSA + Ed25519: draft -14..-19 vectors', () => {
  it.each(vectors.tests)('$tcId: public key rebuilds from sk, both signatures verify', (tc) => {
    const alg = algOf(tc.tcId);
    expect(COMPOSITE_SCHEMES[alg]).toBeDefined();
    const pk = b64(tc.pk);
    expect(Buffer.from(compositePublicKey(alg, b64(tc.sk))).equals(Buffer.from(pk))).toBe(true);
    expect(compositeVerify(alg, pk, m, b64(tc.s))).toBe(true);
    expect(compositeVerify(alg, pk, m, b64(tc.sWithContext), ctx)).toBe(true);
    // Swapped contexts must fail: the ctx is bound into M'.
    expect(compositeVerify(alg, pk, m, b64(tc.s), ctx)).toBe(false);
    expect(compositeVerify(alg, pk, m, b64(tc.sWithContext))).toBe(false);
  });

  it('message representatives match the derived M\u2032 values', () => {
    expect(reps.representatives.length).toBe(4);
    for (const r of reps.representatives) {
      const got = compositeMessageRepresentative(algOf(r.tcId), m, hex(r.ctxHex));
      expect(Buffer.from(got).toString('hex')).toBe(r.mPrimeHex);
    }
  });

  it('rejects a signature of the other parameter set and cross-algorithm keys', () => {
    const [t44, t65] = vectors.tests;
    if (t44 === undefined || t65 === undefined) throw new Error('vectors missing');
    expect(compositeVerify('MLDSA65-Ed25519-SHA512', b64(t65.pk), m, b64(t44.s))).toBe(false);
    expect(compositeVerify('MLDSA44-Ed25519-SHA512', b64(t65.pk), m, b64(t65.s))).toBe(false);
  });
});

describe('composite signatures: mutations and malformed input', () => {
  const tc = vectors.tests.find((t) => t.tcId === 'id-MLDSA65-Ed25519-SHA512');
  if (tc === undefined) throw new Error('ML-DSA-65 vector missing');
  const alg: CompositeAlgorithm = 'MLDSA65-Ed25519-SHA512';
  const pk = b64(tc.pk);
  const sig = b64(tc.sWithContext);
  const verifier = CompositeVerifier.create(alg, pk);

  it('rejects every sampled single-bit mutation of the signature (both components covered)', () => {
    const split = sig.length - 64;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 0, max: split * 8 - 1 }),
          fc.integer({ min: split * 8, max: sig.length * 8 - 1 }),
        ),
        (bit) => {
          expect(verifier.verify(m, flipBit(sig, bit), ctx)).toBe(false);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('rejects every sampled single-bit mutation of the public key', () => {
    const split = pk.length - 32;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 0, max: split * 8 - 1 }),
          fc.integer({ min: split * 8, max: pk.length * 8 - 1 }),
        ),
        (bit) => {
          expect(compositeVerify(alg, flipBit(pk, bit), m, sig, ctx)).toBe(false);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('rejects every single-bit mutation of the message and of the context', () => {
    for (let bit = 0; bit < m.length * 8; bit += 7)
      expect(verifier.verify(flipBit(m, bit), sig, ctx)).toBe(false);
    for (let bit = 0; bit < ctx.length * 8; bit += 13)
      expect(verifier.verify(m, sig, flipBit(ctx, bit))).toBe(false);
  });

  it('rejects truncated and oversized signatures and keys with typed errors', () => {
    expect(verifier.verify(m, sig.subarray(0, sig.length - 1), ctx)).toBe(false);
    expect(verifier.verify(m, Uint8Array.of(...sig, 0), ctx)).toBe(false);
    expect(verifier.verify(m, new Uint8Array(0), ctx)).toBe(false);
    expect(() => CompositeVerifier.create(alg, pk.subarray(1))).toThrowError(
      expect.objectContaining({ code: 'TRUST_BAD_LENGTH' }),
    );
    expect(() => new CompositeSigner(alg, new Uint8Array(63))).toThrowError(
      expect.objectContaining({ code: 'TRUST_BAD_LENGTH' }),
    );
    try {
      compositeMessageRepresentative(alg, m, new Uint8Array(256));
      expect.unreachable();
    } catch (e) {
      expect(isTrustError(e, 'TRUST_TOO_LARGE')).toBe(true);
    }
  });

  it('sign/verify round trip for both parameter sets, deterministic keys', () => {
    for (const a of Object.keys(COMPOSITE_SCHEMES) as CompositeAlgorithm[]) {
      const seed = new Uint8Array(createHash('sha512').update(a).digest());
      const kp = compositeKeyGen(a, seed);
      const signer = new CompositeSigner(a, kp.secretKey);
      expect(Buffer.from(signer.publicKey).equals(Buffer.from(kp.publicKey))).toBe(true);
      const s = signer.sign(m, ctx);
      expect(s.length).toBe(COMPOSITE_SCHEMES[a].signatureBytes);
      expect(compositeVerify(a, kp.publicKey, m, s, ctx)).toBe(true);
      expect(compositeVerify(a, kp.publicKey, m, s)).toBe(false);
    }
  });
});

describe('hybrid KEM X25519 + ML-KEM-768 (X-Wing)', () => {
  it('round trip: both sides derive the same 32-byte secret; distinct per encapsulation', () => {
    const kp = hybridKemKeyPair();
    const a = hybridEncapsulate(kp.publicKey);
    const b = hybridEncapsulate(kp.publicKey);
    expect(a.ciphertext.length).toBe(HYBRID_KEM_CIPHERTEXT_BYTES);
    expect(
      Buffer.from(hybridDecapsulate(kp.secretKey, a.ciphertext)).equals(
        Buffer.from(a.sharedSecret),
      ),
    ).toBe(true);
    expect(Buffer.from(a.sharedSecret).equals(Buffer.from(b.sharedSecret))).toBe(false);
  });

  it('matches an independent computation of the X-Wing combiner from ML-KEM-768 and X25519', () => {
    const seed = new Uint8Array(32).fill(7);
    const kp = hybridKemKeyPair(seed);
    const { ciphertext, sharedSecret } = hybridEncapsulate(kp.publicKey);
    // X-Wing §5.2: expand the seed to ML-KEM (d ‖ z) and the X25519 secret.
    const expanded = shake256(seed, { dkLen: 96 });
    const mk = ml_kem768.keygen(expanded.subarray(0, 64));
    const skX = expanded.subarray(64, 96);
    const pkX = x25519.getPublicKey(skX);
    expect(Buffer.from(kp.publicKey).equals(Buffer.concat([mk.publicKey, pkX]))).toBe(true);
    const ctM = ciphertext.subarray(0, 1088);
    const ctX = ciphertext.subarray(1088);
    const ssM = ml_kem768.decapsulate(ctM, mk.secretKey);
    const ssX = x25519.getSharedSecret(skX, ctX);
    const label = new TextEncoder().encode('\\.//^\\');
    const expect32 = sha3_256(Buffer.concat([ssM, ssX, ctX, pkX, label]));
    expect(Buffer.from(sharedSecret).equals(Buffer.from(expect32))).toBe(true);
  });

  it('a flipped ciphertext bit yields a different secret (implicit rejection), wrong sizes a typed error', () => {
    const kp = hybridKemKeyPair();
    const { ciphertext, sharedSecret } = hybridEncapsulate(kp.publicKey);
    for (const bit of [0, 5000, 1088 * 8 + 3]) {
      const ss = hybridDecapsulate(kp.secretKey, flipBit(ciphertext, bit));
      expect(Buffer.from(ss).equals(Buffer.from(sharedSecret))).toBe(false);
    }
    expect(() => hybridDecapsulate(kp.secretKey, ciphertext.subarray(1))).toThrowError(
      expect.objectContaining({ code: 'TRUST_BAD_LENGTH' }),
    );
    expect(() => hybridEncapsulate(kp.publicKey.subarray(1))).toThrowError(
      expect.objectContaining({ code: 'TRUST_BAD_LENGTH' }),
    );
  });
});
