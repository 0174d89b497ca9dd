/**
 * The mask PRG: AES-128 in counter mode (NIST SP 800-38A §6.5) from node:crypto, keyed by a
 * 32-byte seed (key = seed[0..16), initial counter block = seed[16..32)). The keystream is read
 * as little-endian 32-bit words and added to (or subtracted from) an accumulator modulo 2^32.
 *
 * Why this shape: regenerating masks is the server's dominant cost when clients drop, so the
 * keystream is produced in {@link SECAGG_PRG_CHUNK_BYTES} chunks (one OpenSSL call each, with
 * AES-NI) and added while still in cache; the add loop runs on Int32Array views with `| 0`,
 * which V8 keeps in 32-bit integer registers (two's complement addition is addition mod 2^32).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { assert } from '../../core/index.ts';
import { SECAGG_KEY_BYTES, SECAGG_PRG_CHUNK_BYTES } from './limits.ts';

// Masks are words of the keystream in host order; every supported platform is little-endian,
// and a big-endian host would disagree with its peers, so refuse to run there.
assert(endianness() === 'LE', 'secure aggregation needs a little-endian host');

const ZERO_CHUNK = Buffer.alloc(SECAGG_PRG_CHUNK_BYTES);
const PAIR_LABEL = Buffer.from('genesis-secagg/v1/pair', 'ascii');
const CHUNK_WORDS = SECAGG_PRG_CHUNK_BYTES / 4;

function addWords(acc: Int32Array, w: Int32Array, offset: number): void {
  const n = w.length;
  for (let i = 0; i < n; i++)
    acc[offset + i] = ((acc[offset + i] as number) + (w[i] as number)) | 0;
}

function subWords(acc: Int32Array, w: Int32Array, offset: number): void {
  const n = w.length;
  for (let i = 0; i < n; i++)
    acc[offset + i] = ((acc[offset + i] as number) - (w[i] as number)) | 0;
}

function wordsOf(out: Buffer, words: number): Int32Array {
  // Large outputs of cipher.update are fresh allocations (aligned); copy in the rare other case.
  if (out.byteOffset % 4 === 0) return new Int32Array(out.buffer, out.byteOffset, words);
  return new Int32Array(Uint8Array.from(out).buffer, 0, words);
}

/**
 * Adds (`sign` = 1) or subtracts (`sign` = −1) PRG(seed) to `acc` modulo 2^32, word by word.
 * `acc` is the accumulator (a masked vector or the server's running sum).
 */
export function applyPrgMask(acc: Uint32Array, seed: Uint8Array, sign: 1 | -1): void {
  assert(seed.length === SECAGG_KEY_BYTES, 'PRG seed is 32 bytes');
  const cipher = createCipheriv('aes-128-ctr', seed.subarray(0, 16), seed.subarray(16, 32));
  const view = new Int32Array(acc.buffer, acc.byteOffset, acc.length);
  for (let off = 0; off < acc.length; off += CHUNK_WORDS) {
    const words = Math.min(CHUNK_WORDS, acc.length - off);
    const out = cipher.update(
      words === CHUNK_WORDS ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, words * 4),
    );
    const w = wordsOf(out, words);
    if (sign === 1) addWords(view, w, off);
    else subWords(view, w, off);
  }
}

/** The first `words` words of PRG(seed) (tests and benchmarks). */
export function prgExpand(seed: Uint8Array, words: number): Uint32Array {
  const out = new Uint32Array(words);
  applyPrgMask(out, seed, 1);
  return out;
}

/**
 * The PRG seed of the pairwise mask between clients u and v: SHA-256 over a label, the session
 * id, the unordered pair and their X25519 shared secret (the hashed-DH key derivation of
 * libsodium's crypto_kx; one hash instead of HKDF's two HMACs, which matters at n² pairs). The
 * session id and ids make the mask unique per session and per pair.
 */
export function pairwiseSeed(
  shared: Uint8Array,
  sessionId: Uint8Array,
  u: number,
  v: number,
): Uint8Array {
  const ids = Buffer.alloc(8);
  ids.writeUInt32BE(Math.min(u, v), 0);
  ids.writeUInt32BE(Math.max(u, v), 4);
  return new Uint8Array(
    createHash('sha256').update(PAIR_LABEL).update(sessionId).update(ids).update(shared).digest(),
  );
}
