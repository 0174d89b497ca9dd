/**
 * Typed errors of the erasure code. Codes are stable API: callers branch on `code`, never on
 * the message.
 */
import { GenesisError, type GenesisErrorOptions, isGenesisError } from '../../core/index.ts';

/** Stable codes of {@link ErasureError}. */
export const ERASURE_ERROR_CODES = {
  /** dataShards < 1, parityShards < 0, non-integers, or more than RS_SHARDS_MAX in total. */
  invalidParams: 'ERASURE_INVALID_PARAMS',
  /** The shard array does not have the length the call expects (k, m or k + m). */
  shardCount: 'ERASURE_SHARD_COUNT',
  /** A shard is empty, not a Uint8Array, or differs in length from the others. */
  shardSize: 'ERASURE_SHARD_SIZE',
  /** Fewer than dataShards shards are present, so nothing can be reconstructed. */
  tooFewShards: 'ERASURE_TOO_FEW_SHARDS',
  /** The WebAssembly SIMD kernel was demanded but this engine cannot run it. */
  kernelUnavailable: 'ERASURE_KERNEL_UNAVAILABLE',
} as const;

/** One of {@link ERASURE_ERROR_CODES}. */
export type ErasureErrorCode = (typeof ERASURE_ERROR_CODES)[keyof typeof ERASURE_ERROR_CODES];

/** An expected failure of the erasure code (bad parameters or bad shards). */
export class ErasureError extends GenesisError {
  declare readonly code: ErasureErrorCode;
  constructor(code: ErasureErrorCode, message: string, options: GenesisErrorOptions = {}) {
    super(code, message, options);
    this.name = 'ErasureError';
  }
}

/** True when `err` is an {@link ErasureError}, optionally with the given code. */
export function isErasureError(err: unknown, code?: ErasureErrorCode): err is ErasureError {
  return err instanceof ErasureError && isGenesisError(err, code);
}
