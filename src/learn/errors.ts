/**
 * Typed errors of the learn layer. Every expected failure (bad update, bad config, exhausted
 * privacy budget, a round that cannot complete) carries a stable `LEARN_*` code so callers and
 * counters never match on message text.
 */
import { GenesisError, isGenesisError } from '../core/index.ts';

/** Stable codes of learn-layer errors. */
export const LearnErrorCode = {
  /** A configuration or argument is out of its documented range. */
  BadConfig: 'LEARN_BAD_CONFIG',
  /** An update whose vector length differs from the model's parameter count. */
  WrongLength: 'LEARN_WRONG_LENGTH',
  /** An update containing NaN or ±Infinity. */
  NonFinite: 'LEARN_NON_FINITE',
  /** An update message larger than LEARN_UPDATE_BYTES_MAX. */
  Oversized: 'LEARN_OVERSIZED',
  /** A second update from a client id already counted in this round. */
  DuplicateClient: 'LEARN_DUPLICATE_CLIENT',
  /** A message whose (round, nonce) was already seen, or that names another round. */
  Replay: 'LEARN_REPLAY',
  /** A message that does not decode. */
  Malformed: 'LEARN_MALFORMED',
  /** Fewer usable updates than the round's minimum. */
  TooFewClients: 'LEARN_TOO_FEW_CLIENTS',
  /** The configured (ε, δ) budget would be exceeded by another round. */
  BudgetExhausted: 'LEARN_BUDGET_EXHAUSTED',
  /** A CSV file that cannot be parsed. */
  BadCsv: 'LEARN_BAD_CSV',
  /** A worker thread failed. */
  Worker: 'LEARN_WORKER',
} as const;

/** One of {@link LearnErrorCode}'s values. */
export type LearnErrorCodeValue = (typeof LearnErrorCode)[keyof typeof LearnErrorCode];

/** An expected failure in the learn layer. */
export class LearnError extends GenesisError {
  declare readonly code: LearnErrorCodeValue;
  constructor(
    code: LearnErrorCodeValue,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'LearnError';
  }
}

/** True when `e` is a {@link LearnError}, optionally with the given code. */
export function isLearnError(e: unknown, code?: LearnErrorCodeValue): e is LearnError {
  return e instanceof LearnError && isGenesisError(e, code);
}
