/**
 * The mask PRG: the ChaCha20 keystream (RFC 8439 §2.4) keyed by a 32-byte seed, with the all-zero
 * nonce and the block counter from 0, from libsodium (sodium.ts). Every seed is used for one mask
 * only (it hashes the session, the pair and their X25519 secret, or it is a fresh b_u), so a fixed
 * nonce never repeats under a key. The keystream is read as little-endian 32-bit words and added
 * to (or subtracted from) an accumulator modulo 2^32.
 *
 * Why this shape: regenerating masks is the server's dominant cost when clients drop, so the
 * keystream is produced in {@link SECAGG_PRG_CHUNK_BYTES} chunks, written in place (no allocation
 * per chunk) and added while still in cache. Before, AES-128-CTR from node:crypto cost twice as
 * much: each `cipher.update` allocated and zero-filled a fresh output buffer.
 */
import { endianness } from 'node:os';
import { assert } from '../../core/index.ts';
import { SECAGG_KEY_BYTES, SECAGG_PRG_CHUNK_BYTES } from './limits.ts';
import { CHACHA20_BLOCK_BYTES, CHACHA20_NONCE_BYTES, sha256Of, sodium } from './sodium.ts';

// Masks are words of the keystream in host order; every supported platform is little-endian,
// and a big-endian host would disagree with its peers, so refuse to run there.
assert(endianness() === 'LE', 'secure aggregation needs a little-endian host');
assert(SECAGG_PRG_CHUNK_BYTES % CHACHA20_BLOCK_BYTES === 0, 'PRG chunks are whole ChaCha20 blocks');

const ZERO_CHUNK = new Uint8Array(SECAGG_PRG_CHUNK_BYTES);
const ZERO_NONCE = new Uint8Array(CHACHA20_NONCE_BYTES);
/** Domain-separation label of {@link pairwiseSeed} (also used by the pool workers, see pool.ts). */
export const PAIR_SEED_LABEL = 'genesis-secagg/v1/pair';
const PAIR_LABEL = Buffer.from(PAIR_SEED_LABEL, 'ascii');
const CHUNK_WORDS = SECAGG_PRG_CHUNK_BYTES / 4;
const CHUNK_BLOCKS = SECAGG_PRG_CHUNK_BYTES / CHACHA20_BLOCK_BYTES;

/** Writes keystream bytes [chunk·CHUNK, chunk·CHUNK + out.length) of PRG(seed) into `out`. */
function keystreamChunk(out: Uint8Array, seed: Uint8Array, chunk: number): void {
  sodium.crypto_stream_chacha20_ietf_xor_ic(
    out,
    ZERO_CHUNK.subarray(0, out.length),
    ZERO_NONCE,
    chunk * CHUNK_BLOCKS,
    seed,
  );
}

/**
 * Adds (`sign` = 1) or subtracts (`sign` = −1) PRG(seed) to `acc` modulo 2^32, word by word, in
 * plain JavaScript: the reference the SIMD accumulator and the workers are tested against.
 * `acc` is the accumulator (a masked vector or the server's running sum).
 */
export function applyPrgMask(acc: Uint32Array, seed: Uint8Array, sign: 1 | -1): void {
  assert(seed.length === SECAGG_KEY_BYTES, 'PRG seed is 32 bytes');
  const ks = new Uint8Array(SECAGG_PRG_CHUNK_BYTES);
  const w = new Int32Array(ks.buffer);
  const view = new Int32Array(acc.buffer, acc.byteOffset, acc.length);
  for (let off = 0, chunk = 0; off < acc.length; off += CHUNK_WORDS, chunk++) {
    const words = Math.min(CHUNK_WORDS, acc.length - off);
    keystreamChunk(ks.subarray(0, words * 4), seed, chunk);
    for (let i = 0; i < words; i++)
      view[off + i] = ((view[off + i] as number) + sign * (w[i] as number)) | 0;
  }
  ks.fill(0);
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
  const ids = new Uint8Array(8);
  const view = new DataView(ids.buffer);
  view.setUint32(0, Math.min(u, v));
  view.setUint32(4, Math.max(u, v));
  return sha256Of([PAIR_LABEL, sessionId, ids, shared]);
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
    for (let off = 0, chunk = 0; off < this.words; off += CHUNK_WORDS, chunk++) {
      const bytes = Math.min(CHUNK_WORDS, this.words - off) * 4;
      // The keystream is written straight into the scratch, then added lane by lane.
      keystreamChunk(this.bytes.subarray(this.scratch, this.scratch + bytes), seed, chunk);
      const len = Math.ceil(bytes / 16) * 16;
      if (sign === 1) this.add(off * 4, this.scratch, len);
      else this.sub(off * 4, this.scratch, len);
    }
  }

  /** A copy of the accumulated vector. */
  result(): Uint32Array {
    return new Uint32Array(this.bytes.slice(0, this.words * 4).buffer);
  }
}
