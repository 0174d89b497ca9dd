/**
 * Named bounds of secure aggregation, with units. Relations between them are asserted at load.
 */
import { assert } from '../../core/index.ts';

/** Most clients in one secure-aggregation session (ids are 1..n, Shamir evaluation points). */
export const SECAGG_CLIENTS_MAX = 100_000;
/** Longest vector (params + weight coordinate) one session aggregates, in 32-bit words. */
export const SECAGG_VECTOR_WORDS_MAX = 16 * 1024 * 1024;
/** Session ids are exactly this many bytes. */
export const SECAGG_SESSION_ID_BYTES = 16;
/** X25519 and Ed25519 public keys, private keys and seeds are this many bytes. */
export const SECAGG_KEY_BYTES = 32;
/** Ed25519 signatures are this many bytes. */
export const SECAGG_SIGNATURE_BYTES = 64;
/** ChaCha20-Poly1305 nonce length (RFC 8439 §2.8: 96-bit nonces). */
export const SECAGG_NONCE_BYTES = 12;
/** Poly1305 tag length (RFC 8439 §2.5). */
export const SECAGG_TAG_BYTES = 16;
/** Largest encoded message the codec accepts, in bytes (a masked vector dominates). */
export const SECAGG_MESSAGE_BYTES_MAX = SECAGG_VECTOR_WORDS_MAX * 4 + 1024 * 1024;
/** The PRG keystream is written and added in chunks of this many bytes (stays in L1/L2 between the two). */
export const SECAGG_PRG_CHUNK_BYTES = 32 * 1024;
/** Most threads (the caller's plus workers) that expand masks in parallel; bounds the pool and its result buffers. */
export const SECAGG_MASK_THREADS_MAX = 8;
/**
 * With the default thread count, a mask job whose keystream is smaller than this many 32-bit
 * words runs on the caller's thread alone: handing it to workers would cost more than it saves.
 */
export const SECAGG_PARALLEL_WORDS_MIN = 4 * 1024 * 1024;
/**
 * With the default thread count, a batch of fewer X25519 agreements or Ed25519 verifications
 * than this runs on the caller's thread alone (each costs 50–150 µs; a hand-off about 100 µs).
 */
export const SECAGG_PARALLEL_CURVE_OPS_MIN = 64;
/**
 * A mask worker that makes no progress for this long is given up on, and the caller recomputes
 * its tasks (one task is one ≤ 64 MiB keystream, well under a second even on a loaded core).
 */
export const SECAGG_MASK_WORKER_STALL_MS = 30_000;
/** Default clip range (Flower's SecAgg+ `clipping_range`). */
export const SECAGG_CLIP_RANGE_DEFAULT = 8;
/** Default number of quantization levels (Flower's `quantization_range`, 2^22). */
export const SECAGG_QUANTIZATION_LEVELS_DEFAULT = 2 ** 22;
/** Arithmetic of masked values is modulo this (Flower's `modulus_range`, 2^32). */
export const SECAGG_MODULUS = 2 ** 32;

assert(SECAGG_PRG_CHUNK_BYTES % 64 === 0, 'PRG chunks are whole ChaCha20 blocks and SIMD lanes');
assert(SECAGG_MASK_THREADS_MAX >= 1, 'at least the calling thread');
assert(SECAGG_QUANTIZATION_LEVELS_DEFAULT < SECAGG_MODULUS, 'levels below modulus');
assert(SECAGG_CLIENTS_MAX < 67_108_859, 'client ids are field elements');
