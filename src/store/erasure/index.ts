/**
 * Reed-Solomon erasure coding over GF(2^8), byte-compatible with Backblaze JavaReedSolomon and
 * klauspost/reedsolomon, with a WebAssembly SIMD kernel and a portable fallback.
 * See docs/store-erasure.md.
 */
export {
  ERASURE_ERROR_CODES,
  ErasureError,
  type ErasureErrorCode,
  isErasureError,
} from './errors.ts';
export { GF_POLYNOMIAL, gfInv, gfMul } from './gf.ts';
export type { KernelName } from './kernel.ts';
export { type WasmKernelVariant, wasmKernelVariant, wasmSimdAvailable } from './kernel-wasm.ts';
export {
  type KernelChoice,
  ReedSolomon,
  type ReedSolomonOptions,
  RS_DECODE_CACHE_ENTRIES_MAX,
  RS_SHARDS_MAX,
  RS_VERIFY_SEGMENT_BYTES,
} from './reed-solomon.ts';
export { ErasureStripe, STRIPE_BYTES_MAX } from './stripe.ts';
