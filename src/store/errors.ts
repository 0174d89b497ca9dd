/**
 * Typed errors of the store layer. Every expected failure carries a stable `code`; callers
 * branch on `code` (or {@link isStoreError}), never on message text.
 */
import { GenesisError } from '../core/index.ts';

/** Stable codes of store errors. */
export const StoreErrorCode = {
  /** A block or object is not stored anywhere reachable. */
  NotFound: 'STORE_NOT_FOUND',
  /** Too few healthy shards of a stripe remain to rebuild it; details name the missing shards. */
  Unavailable: 'STORE_UNAVAILABLE',
  /** A shard failed its checksum; it was quarantined and never served. */
  ShardCorrupt: 'STORE_SHARD_CORRUPT',
  /** Bytes do not hash to the CID that names them. */
  CidMismatch: 'STORE_CID_MISMATCH',
  /** A CID string or a manifest is malformed or of an unsupported kind. */
  BadCid: 'STORE_BAD_CID',
  BadManifest: 'STORE_BAD_MANIFEST',
  /** An object or block exceeds a named bound. */
  TooLarge: 'STORE_TOO_LARGE',
  /** A profile name is unknown or its parameters are invalid. */
  BadProfile: 'STORE_BAD_PROFILE',
  /** The topology has fewer live tiles than a stripe needs. */
  PlacementImpossible: 'STORE_PLACEMENT_IMPOSSIBLE',
  /** A shard could not be written on enough tiles. */
  WriteFailed: 'STORE_WRITE_FAILED',
  /** A pin was requested for an object that cannot be fully read. */
  PinUnavailable: 'STORE_PIN_UNAVAILABLE',
  /** A tile answered a shard request with an error or garbage. */
  BadReply: 'STORE_BAD_REPLY',
  /** The on-disk blockstore or its index cannot be opened or written. */
  DiskFailure: 'STORE_DISK_FAILURE',
  /** A CRDT message or document is malformed. */
  CrdtInvalid: 'STORE_CRDT_INVALID',
} as const;

/** One of {@link StoreErrorCode}. */
export type StoreErrorCodeValue = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

/** An expected failure of the store layer. */
export class StoreError extends GenesisError {
  declare readonly code: StoreErrorCodeValue;

  constructor(
    code: StoreErrorCodeValue,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}

/** True when `e` is a {@link StoreError}, optionally with the given code. */
export function isStoreError(e: unknown, code?: StoreErrorCodeValue): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}
