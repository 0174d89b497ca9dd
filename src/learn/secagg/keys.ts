/**
 * Key material of secure aggregation, all from node:crypto:
 * - X25519 (RFC 7748) key pairs: c (channel, to encrypt shares) and s (masking, pairwise seeds).
 *   Bonawitz et al. keep them apart because s_u^SK is revealed when u drops, which must not
 *   expose the shares u exchanged.
 * - Ed25519 (RFC 8032) signatures for the consistency check (round 3).
 * - The share channel: X25519 + SHA-256 key derivation + AES-256-GCM (NIST SP 800-38D). The
 *   trust layer's hybrid X25519+ML-KEM-768 KEM is not exported yet; when it is, the channel key
 *   can come from it instead (see docs/learn-secagg.md).
 * Private keys are generated from the injected Rng so simulations replay exactly.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import type { Rng } from '../../core/index.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import {
  SECAGG_KEY_BYTES,
  SECAGG_NONCE_BYTES,
  SECAGG_SIGNATURE_BYTES,
  SECAGG_TAG_BYTES,
} from './limits.ts';

// DER prefixes of PKCS#8 private keys (RFC 8410 §7) for X25519 (OID 1.3.101.110) and Ed25519 (1.3.101.112).
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
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

function rawPublic(key: KeyObject): Uint8Array {
  // JWK export is ~100× faster than DER export through OpenSSL 3's encoders.
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url'));
}

/**
 * Imports a raw X25519 private key (32 bytes). With its public key known (the server rebuilding
 * a dropped client's key), the JWK path is used, ~10× faster than OpenSSL 3's PKCS#8 decoder.
 */
export function x25519PrivateFromRaw(raw: Uint8Array, publicRaw?: Uint8Array): KeyObject {
  if (publicRaw !== undefined) {
    const jwk = {
      kty: 'OKP',
      crv: 'X25519',
      d: Buffer.from(raw).toString('base64url'),
      x: Buffer.from(publicRaw).toString('base64url'),
    };
    return createPrivateKey({ key: jwk, format: 'jwk' });
  }
  return createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, raw]),
    format: 'der',
    type: 'pkcs8',
  });
}

/** Raw public key of an X25519 private key. */
export function x25519PublicOf(privateKey: KeyObject): Uint8Array {
  return rawPublic(createPublicKey(privateKey));
}

/**
 * A fresh key pair from OpenSSL's generator, returned as JWK by the generator itself, with the
 * private KeyObject imported from that JWK.
 *
 * Why not export the generated KeyObjects: in Node 20, exporting a generated key as JWK holds the
 * key's mutex while allocating strings; a garbage collection at that moment can finalize the
 * generator job of the same key, whose destructor takes the same mutex, and the thread
 * deadlocks (observed: a benchmark hung in ~KeyGenJob under ExportJWKEdKey). Asking the
 * generator for JWK output encodes inside the still-referenced job, and an imported key has no
 * job. It is also as fast (≈ 60 µs + one JWK import).
 */
function generatePair(type: 'x25519' | 'ed25519'): RawKeyPair {
  const pair =
    type === 'x25519'
      ? generateKeyPairSync('x25519', {
          publicKeyEncoding: { format: 'jwk' },
          privateKeyEncoding: { format: 'jwk' },
        })
      : generateKeyPairSync('ed25519', {
          publicKeyEncoding: { format: 'jwk' },
          privateKeyEncoding: { format: 'jwk' },
        });
  // The encodings make Node return JWK objects; @types/node 20 types them as KeyObjects.
  const priv = pair.privateKey as unknown as { kty: string; crv: string; d: string; x: string };
  const pub = pair.publicKey as unknown as { x: string };
  return {
    privateKey: createPrivateKey({ key: priv, format: 'jwk' }),
    privateRaw: new Uint8Array(Buffer.from(priv.d, 'base64url')),
    publicRaw: new Uint8Array(Buffer.from(pub.x, 'base64url')),
  };
}

/**
 * A fresh X25519 key pair. With a cryptographic `rng` the key comes from OpenSSL's generator
 * (fast path); with a seeded one it is derived from `rng` so simulations replay exactly.
 */
export function generateX25519(rng: Rng): RawKeyPair {
  if (rng.cryptographic) return generatePair('x25519');
  const privateRaw = rng.fill(new Uint8Array(SECAGG_KEY_BYTES));
  const privateKey = x25519PrivateFromRaw(privateRaw);
  return { privateKey, privateRaw, publicRaw: rawPublic(createPublicKey(privateKey)) };
}

/** A fresh Ed25519 key pair (`privateRaw` is the seed); same generator choice as {@link generateX25519}. */
export function generateEd25519(rng: Rng): RawKeyPair {
  if (rng.cryptographic) return generatePair('ed25519');
  const privateRaw = rng.fill(new Uint8Array(SECAGG_KEY_BYTES));
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, privateRaw]),
    format: 'der',
    type: 'pkcs8',
  });
  return { privateKey, privateRaw, publicRaw: rawPublic(createPublicKey(privateKey)) };
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
 * Imports a raw X25519 public key once, for a party that agrees with it many times (the server
 * rebuilding one survivor's masks with every dropped neighbour).
 * @throws {SecAggError} SECAGG_MALFORMED for an invalid key.
 */
export function x25519PublicKeyObject(raw: Uint8Array): KeyObject {
  return publicFromRaw(raw, 'X25519');
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

/** Ed25519 signature of `message`. */
export function signEd25519(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, privateKey));
}

/** Verifies an Ed25519 signature; false on any malformed input. */
export function verifyEd25519(
  publicRaw: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (signature.length !== SECAGG_SIGNATURE_BYTES || publicRaw.length !== SECAGG_KEY_BYTES)
    return false;
  try {
    return verify(null, message, publicFromRaw(publicRaw, 'Ed25519'), signature);
  } catch {
    return false;
  }
}

/**
 * The AES-256-GCM key of the channel between u and v (symmetric in u, v): SHA-256 over a label,
 * the session id and the X25519 shared secret (hashed DH, as libsodium's crypto_kx).
 */
export function channelKey(shared: Uint8Array, sessionId: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash('sha256').update(CHANNEL_LABEL).update(sessionId).update(shared).digest(),
  );
}

function channelAad(sessionId: Uint8Array, from: number, to: number): Buffer {
  const ids = Buffer.alloc(8);
  ids.writeUInt32BE(from, 0);
  ids.writeUInt32BE(to, 4);
  return Buffer.concat([sessionId, ids]);
}

function channelNonce(from: number, to: number): Buffer {
  // One message per direction per session under a per-session key: the direction is a unique nonce.
  const nonce = Buffer.alloc(SECAGG_NONCE_BYTES);
  nonce[SECAGG_NONCE_BYTES - 1] = from < to ? 1 : 2;
  return nonce;
}

/** Encrypts `plaintext` from `from` to `to`; output = ciphertext ‖ tag. */
export function channelEncrypt(
  key: Uint8Array,
  sessionId: Uint8Array,
  from: number,
  to: number,
  plaintext: Uint8Array,
): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key, channelNonce(from, to), {
    authTagLength: SECAGG_TAG_BYTES,
  });
  c.setAAD(channelAad(sessionId, from, to));
  return new Uint8Array(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]));
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
  try {
    const d = createDecipheriv('aes-256-gcm', key, channelNonce(from, to), {
      authTagLength: SECAGG_TAG_BYTES,
    });
    d.setAAD(channelAad(sessionId, from, to));
    d.setAuthTag(ciphertext.subarray(ciphertext.length - SECAGG_TAG_BYTES));
    return new Uint8Array(
      Buffer.concat([
        d.update(ciphertext.subarray(0, ciphertext.length - SECAGG_TAG_BYTES)),
        d.final(),
      ]),
    );
  } catch (cause) {
    throw new SecAggError(
      SecAggErrorCode.Decrypt,
      `share ciphertext from ${from} to ${to} fails authentication`,
      { cause, details: { from, to } },
    );
  }
}
