/**
 * Hybrid key encapsulation X25519 + ML-KEM-768, as X-Wing (draft-connolly-cfrg-xwing-kem),
 * through @noble/post-quantum's `ml_kem768_x25519`.
 *
 * Combiner (X-Wing §5.3): ss = SHA3-256(ss_ML-KEM ‖ ss_X25519 ‖ ct_X25519 ‖ pk_X25519 ‖ "\.//^\").
 * Hashing the X25519 ciphertext and public key binds the classical secret to its transcript
 * (X25519 is not a KEM on its own); ML-KEM-768 is IND-CCA2 and binds its own ciphertext, which
 * is why X-Wing may omit it. The secret is as strong as the stronger of the two components.
 * Layout: public key = pk_ML-KEM (1184) ‖ pk_X25519 (32); ciphertext = ct_ML-KEM (1088) ‖
 * ct_X25519 (32); secret key = a 32-byte seed, expanded with SHAKE-256 on use.
 */
import { randomBytes } from 'node:crypto';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';

/** Hybrid KEM public key size. */
export const HYBRID_KEM_PUBLIC_KEY_BYTES = 1216;
/** Hybrid KEM secret key (seed) size. */
export const HYBRID_KEM_SECRET_KEY_BYTES = 32;
/** Hybrid KEM ciphertext size. */
export const HYBRID_KEM_CIPHERTEXT_BYTES = 1120;
/** Shared secret size. */
export const HYBRID_KEM_SHARED_SECRET_BYTES = 32;
/** Algorithm name used in key files. */
export const HYBRID_KEM_ALG = 'X25519-MLKEM768-XWing';

/** A hybrid KEM key pair. */
export interface HybridKemKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

function check(what: string, b: Uint8Array, want: number): void {
  if (!(b instanceof Uint8Array) || b.length !== want) {
    throw new TrustError(
      TRUST_ERROR_CODES.badLength,
      `hybrid KEM ${what} is ${b?.length} bytes, expected ${want}`,
      {
        details: { got: b?.length, want },
      },
    );
  }
}

/**
 * Generates a key pair; `seed` (32 bytes) makes it deterministic.
 * @example const { publicKey, secretKey } = hybridKemKeyPair();
 */
export function hybridKemKeyPair(
  seed: Uint8Array = randomBytes(HYBRID_KEM_SECRET_KEY_BYTES),
): HybridKemKeyPair {
  check('seed', seed, HYBRID_KEM_SECRET_KEY_BYTES);
  const kp = ml_kem768_x25519.keygen(Uint8Array.from(seed));
  return { publicKey: kp.publicKey, secretKey: kp.secretKey };
}

/** The public key of a secret key (seed). */
export function hybridKemPublicKey(secretKey: Uint8Array): Uint8Array {
  check('secret key', secretKey, HYBRID_KEM_SECRET_KEY_BYTES);
  return ml_kem768_x25519.getPublicKey(secretKey);
}

/**
 * Encapsulates a fresh shared secret to `publicKey`.
 * @throws {TrustError} TRUST_BAD_LENGTH for a public key of the wrong size,
 *   TRUST_KEY_FORMAT for one that fails ML-KEM's modulus check (FIPS 203 §7.2).
 */
export function hybridEncapsulate(
  publicKey: Uint8Array,
  randomness?: Uint8Array,
): { ciphertext: Uint8Array; sharedSecret: Uint8Array } {
  check('public key', publicKey, HYBRID_KEM_PUBLIC_KEY_BYTES);
  try {
    const r = ml_kem768_x25519.encapsulate(publicKey, randomness);
    return { ciphertext: r.cipherText, sharedSecret: r.sharedSecret };
  } catch (cause) {
    throw new TrustError(
      TRUST_ERROR_CODES.keyFormat,
      'hybrid KEM public key is not a valid ML-KEM-768/X25519 key',
      { cause },
    );
  }
}

/**
 * Recovers the shared secret. A tampered ciphertext yields a different, pseudorandom secret
 * (ML-KEM implicit rejection), never an error, so the caller's AEAD detects it.
 * @throws {TrustError} TRUST_BAD_LENGTH for a wrong-size key or ciphertext.
 */
export function hybridDecapsulate(secretKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  check('secret key', secretKey, HYBRID_KEM_SECRET_KEY_BYTES);
  check('ciphertext', ciphertext, HYBRID_KEM_CIPHERTEXT_BYTES);
  return ml_kem768_x25519.decapsulate(ciphertext, secretKey);
}
