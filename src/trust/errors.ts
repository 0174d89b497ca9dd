/**
 * Typed errors of the trust layer. Every expected failure (bad key file, bad signature
 * encoding, corrupted log, rejected update metadata) is a {@link TrustError} with a stable code
 * from {@link TRUST_ERROR_CODES}; callers branch on `code`, never on message text.
 */
import { GenesisError, type GenesisErrorOptions } from '../core/index.ts';

/** Stable codes of every expected trust-layer failure. */
export const TRUST_ERROR_CODES = {
  /** A key, signature or hash has the wrong number of bytes. */
  badLength: 'TRUST_BAD_LENGTH',
  /** A key file names an algorithm other than the one expected. */
  wrongAlgorithm: 'TRUST_WRONG_ALGORITHM',
  /** A private key file is readable by group or others. */
  keyPermissions: 'TRUST_KEY_PERMISSIONS',
  /** A key file cannot be parsed. */
  keyFormat: 'TRUST_KEY_FORMAT',
  /** A key file or log already exists where a new one was to be created. */
  exists: 'TRUST_EXISTS',
  /** A file or database does not exist. */
  notFound: 'TRUST_NOT_FOUND',
  /** The log database fails its integrity check (recomputed root differs, rows missing). */
  logCorrupt: 'TRUST_LOG_CORRUPT',
  /** An append or batch exceeds a named limit. */
  tooLarge: 'TRUST_TOO_LARGE',
  /** A requested index or tree size is outside the log. */
  outOfRange: 'TRUST_OUT_OF_RANGE',
  /** A signed note or checkpoint is malformed. */
  noteFormat: 'TRUST_NOTE_FORMAT',
  /** A signature does not verify, or too few signatures verify. */
  badSignature: 'TRUST_BAD_SIGNATURE',
  /** A checkpoint is not consistent with one seen before (a fork or a rollback). */
  inconsistent: 'TRUST_INCONSISTENT',
  /** Two checkpoints of the same size with different roots: a split view. */
  splitView: 'TRUST_SPLIT_VIEW',
  /** Signed metadata fails a TUF rule; `details.attack` names the TUF attack it stops. */
  metadata: 'TRUST_METADATA',
  /** Signed JSON is not in the canonical form that was signed (or has unknown fields). */
  nonCanonical: 'TRUST_NON_CANONICAL',
  /** A download exceeds its declared or maximum length (TUF "endless data"). */
  endlessData: 'TRUST_ENDLESS_DATA',
  /** Metadata expired (TUF "indefinite freeze"). */
  expired: 'TRUST_EXPIRED',
  /** A version number went backwards (TUF "rollback"). */
  rollback: 'TRUST_ROLLBACK',
  /** A target's length or hashes differ from signed metadata. */
  targetMismatch: 'TRUST_TARGET_MISMATCH',
  /** A released target has no inclusion proof against a witnessed checkpoint. */
  notLogged: 'TRUST_NOT_LOGGED',
} as const;

/** One of {@link TRUST_ERROR_CODES}. */
export type TrustErrorCode = (typeof TRUST_ERROR_CODES)[keyof typeof TRUST_ERROR_CODES];

/** An expected failure of the trust layer. */
export class TrustError extends GenesisError {
  declare readonly code: TrustErrorCode;
  constructor(code: TrustErrorCode, message: string, options: GenesisErrorOptions = {}) {
    super(code, message, options);
    this.name = 'TrustError';
  }
}

/** True when `e` is a {@link TrustError}, optionally with the given code. */
export function isTrustError(e: unknown, code?: TrustErrorCode): e is TrustError {
  return e instanceof TrustError && (code === undefined || e.code === code);
}
