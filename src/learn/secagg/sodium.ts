/**
 * libsodium (through sodium-native's prebuilt N-API binding) for the hot paths of secure
 * aggregation: X25519, Ed25519 verification, SHA-256, the ChaCha20 keystream of the mask PRG and
 * the ChaCha20-Poly1305 share channel.
 *
 * Why not node:crypto there: every node:crypto call on a raw key first imports it into a
 * KeyObject (≈ 23 µs through JWK, ≈ 200 µs through DER with OpenSSL 3's decoders) and every
 * `cipher.update` allocates and zero-fills a fresh output buffer (Node 20 has no
 * update-into-buffer API), which costs as much as the AES itself. libsodium works on the
 * caller's bytes. `npm run bench -- "secagg primitives"` measures each against the node:crypto
 * path it replaced (X25519 about 0.7×, Ed25519 verification 0.67×, a 400 KB mask 0.36×, with the
 * keystream written straight into the accumulator's WebAssembly memory; docs/learn-secagg.md).
 *
 * The outputs are the standard ones (RFC 7748, RFC 8032, FIPS 180-4, RFC 8439), so both
 * libraries interoperate; the tests check them against node:crypto and @noble.
 */
import { createRequire } from 'node:module';

/** The slice of sodium-native used here (the package ships no types). Buffers are written in place. */
export interface Sodium {
  /** q = X25519(n, p); throws when the result is all zero (small-order p). */
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  /** pk and the 64-byte secret key (seed ‖ pk) from a 32-byte seed (RFC 8032 §5.1.5). */
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_sign_verify_detached(
    signature: Uint8Array,
    message: Uint8Array,
    publicKey: Uint8Array,
  ): boolean;
  crypto_hash_sha256(out: Uint8Array, input: Uint8Array): void;
  /** c = m ⊕ ChaCha20(k, n) from block `ic` (RFC 8439 §2.4: 96-bit nonce, 32-bit block counter). */
  crypto_stream_chacha20_ietf_xor_ic(
    c: Uint8Array,
    m: Uint8Array,
    n: Uint8Array,
    ic: number,
    k: Uint8Array,
  ): void;
  /** c = ciphertext ‖ tag of m (RFC 8439 §2.8); returns c's length. */
  crypto_aead_chacha20poly1305_ietf_encrypt(
    c: Uint8Array,
    m: Uint8Array,
    ad: Uint8Array | null,
    nsec: null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  /** m = plaintext of c; throws when the tag does not verify. */
  crypto_aead_chacha20poly1305_ietf_decrypt(
    m: Uint8Array,
    nsec: null,
    c: Uint8Array,
    ad: Uint8Array | null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  /** Zeroes memory in a way the compiler cannot elide. */
  sodium_memzero(buf: Uint8Array): void;
}

const require = createRequire(import.meta.url);

/** Absolute path of the binding, for worker threads that load it themselves (pool.ts). */
export const SODIUM_MODULE_PATH: string = require.resolve('sodium-native');

/** The loaded binding. */
export const sodium: Sodium = require(SODIUM_MODULE_PATH) as Sodium;

/** Bytes per ChaCha20 block (RFC 8439 §2.3): the unit of the block counter. */
export const CHACHA20_BLOCK_BYTES = 64;
/** ChaCha20 nonce length (RFC 8439 §2.4). */
export const CHACHA20_NONCE_BYTES = 12;

/** SHA-256 of the concatenation of `parts` (the hashed-DH derivations of prg.ts and keys.ts). */
export function sha256Of(parts: readonly Uint8Array[]): Uint8Array {
  const input = Buffer.concat(parts);
  const out = new Uint8Array(32);
  sodium.crypto_hash_sha256(out, input);
  // The input holds a shared secret.
  input.fill(0);
  return out;
}
