/**
 * Typed errors of secure aggregation. Each expected failure (a malformed, replayed or duplicate
 * message, a round that cannot complete, a server caught lying in the consistency check) has a
 * stable `SECAGG_*` code; callers and counters never match on message text.
 */
import { GenesisError, isGenesisError } from '../../core/index.ts';

/** Stable codes of secure-aggregation errors. */
export const SecAggErrorCode = {
  /** Options or parameters out of their documented range. */
  BadConfig: 'SECAGG_BAD_CONFIG',
  /** No (k, t) meets the requested security and correctness for this n. */
  ParamsInfeasible: 'SECAGG_PARAMS_INFEASIBLE',
  /** n·(levels−1) ≥ 2^32: the quantized sum could wrap. */
  QuantizationOverflow: 'SECAGG_QUANTIZATION_OVERFLOW',
  /** A message that does not decode or has fields of the wrong type or size. */
  Malformed: 'SECAGG_MALFORMED',
  /** A message of another session or of a round that is not the current one. */
  Replay: 'SECAGG_REPLAY',
  /** A second message from the same client in the same round. */
  Duplicate: 'SECAGG_DUPLICATE',
  /** A message from a client that is not (or no longer) part of the round. */
  UnknownClient: 'SECAGG_UNKNOWN_CLIENT',
  /** A ciphertext that fails authentication or names the wrong sender/recipient. */
  Decrypt: 'SECAGG_DECRYPT',
  /** Too few clients (or neighbours) left to continue: the round aborts. */
  TooFewClients: 'SECAGG_TOO_FEW_CLIENTS',
  /** Too few shares to reconstruct a needed secret: the round aborts. */
  TooFewShares: 'SECAGG_TOO_FEW_SHARES',
  /**
   * The server's view is inconsistent (a client asked for both shares of the same peer, or
   * signatures over different survivor sets): the client refuses to reveal anything.
   */
  Consistency: 'SECAGG_CONSISTENCY',
  /** The request came at the wrong point of the state machine. */
  WrongState: 'SECAGG_WRONG_STATE',
} as const;

/** One of {@link SecAggErrorCode}'s values. */
export type SecAggErrorCodeValue = (typeof SecAggErrorCode)[keyof typeof SecAggErrorCode];

/** An expected failure of secure aggregation. */
export class SecAggError extends GenesisError {
  declare readonly code: SecAggErrorCodeValue;
  constructor(
    code: SecAggErrorCodeValue,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'SecAggError';
  }
}

/** True when `e` is a {@link SecAggError}, optionally with the given code. */
export function isSecAggError(e: unknown, code?: SecAggErrorCodeValue): e is SecAggError {
  return e instanceof SecAggError && isGenesisError(e, code);
}
