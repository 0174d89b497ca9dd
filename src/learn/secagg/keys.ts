/**
 * Key material of secure aggregation, all from node:crypto:
 * - X25519 (RFC 7748) key pairs: c (channel, to encrypt shares) and s (masking, pairwise seeds).
 *   Bonawitz et al. keep them apart because s_u^SK is revealed when u drops, which must not
 *   expose the shares u exchanged.
 * - Ed25519 (RFC 8032) signatures for the consistency check (round 3).
 * - The share channel: X25519 + SHA-256 key derivation + ChaCha20-Poly1305 (RFC 8439). The
 *   trust layer's hybrid X25519+ML-KEM-768 KEM is not exported yet; when it is, the channel key
 *   can come from it instead (see docs/learn-secagg.md).
 * Private keys are drawn from the injected Rng so simulations replay exactly; public keys and the
 * hot-path operations come from libsodium (sodium.ts).
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type KeyObject,
  sign,
} from 'node:crypto';
import type { Rng } from '../../core/index.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import {
  SECAGG_KEY_BYTES,
  SECAGG_NONCE_BYTES,
  SECAGG_SIGNATURE_BYTES,
  SECAGG_TAG_BYTES,
} from './limits.ts';
import { sha256Of, sodium } from './sodium.ts';

/** Domain-separation label of {@link channelKey} (also used by the pool workers, see pool.ts). */
export const CHANNEL_KEY_LABEL = 'genesis-secagg/v1/channel';
const CHANNEL_LABEL = Buffer.from(CHANNEL_KEY_LABEL, 'ascii');

/** A key pair with the raw 32-byte public key (what goes on the wire). */
export interface RawKeyPair {
  readonly privateKey: KeyObject;
  /** Raw private key bytes (X25519 only; shared with Shamir in round 1). */
  readonly privateRaw: Uint8Array;
  readonly publicRaw: Uint8Array;
}

/**
 * A key pair whose KeyObject is imported only when first asked for: the hot paths work on the
 * raw bytes (libsodium), and most keys of a session are never used through node:crypto.
 */
function lazyPair(
  privateRaw: Uint8Array,
  publicRaw: Uint8Array,
  crv: 'X25519' | 'Ed25519',
): RawKeyPair {
  let key: KeyObject | undefined;
  return {
    privateRaw,
    publicRaw,
    get privateKey(): KeyObject {
      key ??= createPrivateKey({
        key: {
          kty: 'OKP',
          crv,
          d: Buffer.from(privateRaw).toString('base64url'),
          x: Buffer.from(publicRaw).toString('base64url'),
        },
        format: 'jwk',
      });
      return key;
    },
  };
}

/** The X25519 public key of a raw private key (RFC 7748 §6.1: X25519(k, 9)). */
export function x25519PublicOfRaw(privateRaw: Uint8Array): Uint8Array {
  const out = new Uint8Array(SECAGG_KEY_BYTES);
  sodium.crypto_scalarmult_base(out, privateRaw);
  return out;
}

/**
 * A fresh X25519 key pair: 32 bytes from `rng` (a seeded one makes simulations replay exactly)
 * and the public key from libsodium (≈ 50 µs; OpenSSL's generator plus the import cost ≈ 85 µs).
 */
export function generateX25519(rng: Rng): RawKeyPair {
  const privateRaw = rng.fill(new Uint8Array(SECAGG_KEY_BYTES));
  return lazyPair(privateRaw, x25519PublicOfRaw(privateRaw), 'X25519');
}

/** A fresh Ed25519 key pair (`privateRaw` is the RFC 8032 §5.1.5 seed), drawn from `rng` as {@link generateX25519}. */
export function generateEd25519(rng: Rng): RawKeyPair {
  const privateRaw = rng.fill(new Uint8Array(SECAGG_KEY_BYTES));
  const publicRaw = new Uint8Array(SECAGG_KEY_BYTES);
  const secretKey = new Uint8Array(2 * SECAGG_KEY_BYTES);
  sodium.crypto_sign_seed_keypair(publicRaw, secretKey, privateRaw);
  secretKey.fill(0);
  return lazyPair(privateRaw, publicRaw, 'Ed25519');
}

function publicFromRaw(raw: Uint8Array, crv: 'X25519' | 'Ed25519'): KeyObject {
  // JWK import is about 3× faster than DER import in Node 20.
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv, x: Buffer.from(raw).toString('base64url') },
      format: 'jwk',
    });
  } catch (cause) {
    throw new SecAggError(SecAggErrorCode.Malformed, `invalid ${crv} public key`, { cause });
  }
}

/**
 * X25519(privateKey, peer) (RFC 7748 §6.1); `peer` raw or already imported. Rejects the all-zero output of small-order points.
 * @throws {SecAggError} SECAGG_MALFORMED for an invalid or small-order peer key.
 */
export function x25519Shared(
  privateKey: KeyObject,
  peerPublicRaw: Uint8Array | KeyObject,
): Uint8Array {
  try {
    const publicKey =
      peerPublicRaw instanceof Uint8Array ? publicFromRaw(peerPublicRaw, 'X25519') : peerPublicRaw;
    return new Uint8Array(diffieHellman({ privateKey, publicKey }));
  } catch (cause) {
    throw new SecAggError(
      SecAggErrorCode.Malformed,
      'X25519 agreement failed (small-order or invalid key)',
      { cause },
    );
  }
}

/**
 * X25519(privateRaw, peerPublicRaw) (RFC 7748 §6.1) on raw bytes through libsodium: no key import,
 * the hot path of mask and channel jobs. Rejects the all-zero output of small-order points.
 * @throws {SecAggError} SECAGG_MALFORMED for an invalid or small-order peer key.
 */
export function x25519SharedRaw(privateRaw: Uint8Array, peerPublicRaw: Uint8Array): Uint8Array {
  const out = new Uint8Array(SECAGG_KEY_BYTES);
  try {
    if (privateRaw.length !== SECAGG_KEY_BYTES || peerPublicRaw.length !== SECAGG_KEY_BYTES)
      throw new RangeError('X25519 keys are 32 bytes');
    sodium.crypto_scalarmult(out, privateRaw, peerPublicRaw);
  } catch (cause) {
    throw new SecAggError(
      SecAggErrorCode.Malformed,
      'X25519 agreement failed (small-order or invalid key)',
      { cause },
    );
  }
  return out;
}

/** Ed25519 signature of `message`. */
export function signEd25519(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, privateKey));
}

/** Verifies an Ed25519 signature (RFC 8032 §5.1.7, libsodium: raw key, no import); false on any malformed input. */
export function verifyEd25519(
  publicRaw: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (signature.length !== SECAGG_SIGNATURE_BYTES || publicRaw.length !== SECAGG_KEY_BYTES)
    return false;
  try {
    return sodium.crypto_sign_verify_detached(signature, message, publicRaw);
  } catch {
    return false;
  }
}

/**
 * The ChaCha20-Poly1305 key of the channel between u and v (symmetric in u, v): SHA-256 over a label,
 * the session id and the X25519 shared secret (hashed DH, as libsodium's crypto_kx).
 */
export function channelKey(shared: Uint8Array, sessionId: Uint8Array): Uint8Array {
  return sha256Of([CHANNEL_LABEL, sessionId, shared]);
}

function channelAad(sessionId: Uint8Array, from: number, to: number): Uint8Array {
  const aad = new Uint8Array(sessionId.length + 8);
  aad.set(sessionId, 0);
  const ids = new DataView(aad.buffer, sessionId.length, 8);
  ids.setUint32(0, from);
  ids.setUint32(4, to);
  return aad;
}

function channelNonce(from: number, to: number): Uint8Array {
  // One message per direction per session under a per-session key: the direction is a unique nonce.
  const nonce = new Uint8Array(SECAGG_NONCE_BYTES);
  nonce[SECAGG_NONCE_BYTES - 1] = from < to ? 1 : 2;
  return nonce;
}

/**
 * Encrypts `plaintext` from `from` to `to` with ChaCha20-Poly1305 (RFC 8439 §2.8, libsodium's
 * IETF construction; about half the time of node:crypto's AES-GCM per share pair, whose cost
 * is the per-call cipher setup); output = ciphertext ‖ tag, AAD = session ‖ from ‖ to.
 */
export function channelEncrypt(
  key: Uint8Array,
  sessionId: Uint8Array,
  from: number,
  to: number,
  plaintext: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(plaintext.length + SECAGG_TAG_BYTES);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
    out,
    plaintext,
    channelAad(sessionId, from, to),
    null,
    channelNonce(from, to),
    key,
  );
  return out;
}

/**
 * Decrypts a ciphertext from `from` to `to`.
 * @throws {SecAggError} SECAGG_DECRYPT when authentication fails (tampered, wrong sender or recipient).
 */
export function channelDecrypt(
  key: Uint8Array,
  sessionId: Uint8Array,
  from: number,
  to: number,
  ciphertext: Uint8Array,
): Uint8Array {
  if (ciphertext.length < SECAGG_TAG_BYTES)
    throw new SecAggError(SecAggErrorCode.Decrypt, 'ciphertext shorter than its tag', {
      details: { from, to },
    });
  const out = new Uint8Array(ciphertext.length - SECAGG_TAG_BYTES);
  try {
    sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
      out,
      null,
      ciphertext,
      channelAad(sessionId, from, to),
      channelNonce(from, to),
      key,
    );
  } catch (cause) {
    throw new SecAggError(
      SecAggErrorCode.Decrypt,
      `share ciphertext from ${from} to ${to} fails authentication`,
      { cause, details: { from, to } },
    );
  }
  return out;
}
