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
/** Domain-separation label of {@link pairwiseSeed} (also used by the mask workers, see mask-job.ts). */
export const PAIR_SEED_LABEL = 'genesis-secagg/v1/pair';
const PAIR_LABEL = Buffer.from(PAIR_SEED_LABEL, 'ascii');
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

/**
 * WebAssembly module (compiled from ./wasm/mask-add.wat with wabt; a test recompiles and compares)
 * exporting `add`/`sub(acc, src, bytes)`: four 32-bit lanes at a time with i32x4.add/sub.
 */
export const MASK_ADD_WASM_BASE64 =
  'AGFzbQEAAAABBwFgA39/fwADAwIAAAUDAQABBxYDBm1lbW9yeQIAA2FkZAAAA3N1YgABCn0CPQEBfyAAIAJqIQMCQANAIAAgA08NASAAIAD9AAQAIAH9AAQA/a4B/QsEACAAQRBqIQAgAUEQaiEBDAALCws9AQF/IAAgAmohAwJAA0AgACADTw0BIAAgAP0ABAAgAf0ABAD9sQH9CwQAIABBEGohACABQRBqIQEMAAsLCw==';

/** Bytes per WebAssembly memory page (WebAssembly core spec §2.5.7). */
export const SECAGG_WASM_PAGE_BYTES = 65_536;

/**
 * The slice of the WebAssembly JS API used here, declared locally: the project's TypeScript libs
 * (ES2023 + @types/node 20) carry no WebAssembly types (as src/store/erasure/kernel-wasm.ts).
 */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (
    module: object,
    imports: object,
  ) => { readonly exports: Record<string, unknown> };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
assert(wasmApi !== undefined, 'secure aggregation needs WebAssembly (Node ≥ 16 has SIMD)');
/** The compiled mask-add module; WebAssembly modules can be posted to worker threads (mask-job.ts). */
export const maskAddWasmModule: object = new wasmApi.Module(
  Buffer.from(MASK_ADD_WASM_BASE64, 'base64'),
);

type LaneOp = (acc: number, src: number, bytes: number) => void;

/**
 * A mod-2^32 accumulator held in WebAssembly memory, for the hot loops (a client's ~k masks, the
 * server's mask regeneration). Each keystream chunk is copied once into wasm memory and added
 * with SIMD, about 5× faster than the scalar Int32Array loop of {@link applyPrgMask}.
 */
export class MaskAccumulator {
  /** Vector length in 32-bit words. */
  readonly words: number;
  private readonly add: LaneOp;
  private readonly sub: LaneOp;
  private readonly bytes: Uint8Array;
  private readonly scratch: number;

  constructor(words: number) {
    assert(Number.isInteger(words) && words >= 1, 'accumulator length');
    this.words = words;
    const instance = new (wasmApi as WasmApi).Instance(maskAddWasmModule, {});
    const memory = instance.exports.memory as WasmMemory;
    // Layout: [accumulator, padded to 16 bytes][one keystream chunk].
    this.scratch = Math.ceil((words * 4) / 16) * 16;
    const need = Math.ceil((this.scratch + SECAGG_PRG_CHUNK_BYTES) / SECAGG_WASM_PAGE_BYTES);
    if (need > 1) memory.grow(need - 1);
    this.bytes = new Uint8Array(memory.buffer);
    this.add = instance.exports.add as LaneOp;
    this.sub = instance.exports.sub as LaneOp;
  }

  private combine(src: Uint8Array, wordOffset: number, sign: 1 | -1): void {
    this.bytes.set(src, this.scratch);
    const len = Math.ceil(src.length / 16) * 16;
    // Lanes past the vector's end land in the accumulator's padding or the scratch; never read.
    if (sign === 1) this.add(wordOffset * 4, this.scratch, len);
    else this.sub(wordOffset * 4, this.scratch, len);
  }

  /** Adds (or subtracts) a vector of `words` words. */
  addVector(v: Uint32Array, sign: 1 | -1 = 1): void {
    assert(v.length === this.words, 'vector length');
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    for (let off = 0; off < bytes.length; off += SECAGG_PRG_CHUNK_BYTES) {
      this.combine(bytes.subarray(off, off + SECAGG_PRG_CHUNK_BYTES), off / 4, sign);
    }
  }

  /** Adds (or subtracts) PRG(seed), the same keystream words as {@link applyPrgMask}. */
  applyPrg(seed: Uint8Array, sign: 1 | -1): void {
    assert(seed.length === SECAGG_KEY_BYTES, 'PRG seed is 32 bytes');
    const cipher = createCipheriv('aes-128-ctr', seed.subarray(0, 16), seed.subarray(16, 32));
    for (let off = 0; off < this.words; off += CHUNK_WORDS) {
      const words = Math.min(CHUNK_WORDS, this.words - off);
      this.combine(
        cipher.update(words === CHUNK_WORDS ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, words * 4)),
        off,
        sign,
      );
    }
  }

  /** A copy of the accumulated vector. */
  result(): Uint32Array {
    return new Uint32Array(this.bytes.slice(0, this.words * 4).buffer);
  }
}
