/**
 * Named bounds of the store layer, with units in their names. Relations between them are
 * asserted when the module loads so a bad edit fails at once (TIGER_STYLE: put a limit on
 * everything).
 */
import { assert, TRANSPORT_MESSAGE_BYTES_MAX } from '../core/index.ts';

/** Size of one chunk of a large object (the unixfs-v1-2025 profile uses 1 MiB raw leaves). */
export const CHUNK_BYTES = 1024 * 1024;
/** Largest object accepted by a streaming put (bounds the manifest size). */
export const OBJECT_BYTES_MAX = 16 * 1024 * 1024 * 1024;
/** Largest number of chunk links in one manifest (OBJECT_BYTES_MAX / CHUNK_BYTES). */
export const MANIFEST_CHUNKS_MAX = OBJECT_BYTES_MAX / CHUNK_BYTES;
/** Largest encoded manifest block, in bytes (about 40 bytes per link). */
export const MANIFEST_BYTES_MAX = MANIFEST_CHUNKS_MAX * 48 + 1024;
/** Largest block (a chunk or a manifest) striped as one erasure-coded stripe. */
export const BLOCK_BYTES_MAX = Math.max(CHUNK_BYTES, MANIFEST_BYTES_MAX);
/** Bytes reserved for the envelope of a shard message (CBOR keys, CID, counters). */
export const SHARD_ENVELOPE_BYTES_MAX = 4096;
/** Largest shard payload, so a shard plus its envelope fits one transport message. */
export const SHARD_BYTES_MAX = TRANSPORT_MESSAGE_BYTES_MAX - SHARD_ENVELOPE_BYTES_MAX;
/** Fewest data shards a profile may use (k = 1 would make a 1 MiB shard exceed a message). */
export const PROFILE_DATA_SHARDS_MIN = 2;
/** Most shards (k + m) in one stripe: GF(2^8) Reed-Solomon allows 256. */
export const STRIPE_SHARDS_MAX = 256;
/** Blocks written or read concurrently by one streaming put/get (bounds memory: about
 * this many MiB of data plus their parity in flight). */
export const STREAM_BLOCKS_IN_FLIGHT_MAX = 4;
/** Timeout of one shard request to a tile. */
export const SHARD_REQUEST_TIMEOUT_MS = 10_000;
/** Shard records returned by one `list` page from a tile. */
export const LIST_PAGE_RECORDS_MAX = 2_000;
/** Period of the background repair scanner in `genesis up`. */
export const REPAIR_INTERVAL_MS_DEFAULT = 30_000;
/** Largest CRDT sync message carried as one transport message. */
export const CRDT_SYNC_MESSAGE_BYTES_MAX = TRANSPORT_MESSAGE_BYTES_MAX - SHARD_ENVELOPE_BYTES_MAX;
/** Largest saved Automerge document accepted from disk or from the store. */
export const CRDT_DOCUMENT_BYTES_MAX = 64 * 1024 * 1024;
/** Sync rounds one `syncWith` runs before giving up (each round is one message each way). */
export const CRDT_SYNC_ROUNDS_MAX = 64;

assert(
  MANIFEST_BYTES_MAX / PROFILE_DATA_SHARDS_MIN <= SHARD_BYTES_MAX,
  'manifest shard must fit a message',
);
assert(CHUNK_BYTES / PROFILE_DATA_SHARDS_MIN <= SHARD_BYTES_MAX, 'chunk shard must fit a message');
assert(Number.isInteger(MANIFEST_CHUNKS_MAX), 'object bound is a whole number of chunks');

/** Size at which a tile's shard log rolls to a new segment file (also the unit of compaction). */
export const SEGMENT_BYTES_MAX = 128 * 1024 * 1024;
/** Most bytes one group commit writes (one `writev` plus one `fdatasync`) on a tile. */
export const SEGMENT_BATCH_BYTES_MAX = 16 * 1024 * 1024;
/** A sealed segment whose live shard bytes fall under this share of its size is compacted. */
export const SEGMENT_COMPACT_LIVE_PERCENT_MIN = 50;

assert(
  SHARD_BYTES_MAX + SHARD_ENVELOPE_BYTES_MAX <= SEGMENT_BATCH_BYTES_MAX,
  'one shard record fits a batch',
);
assert(SEGMENT_BATCH_BYTES_MAX <= SEGMENT_BYTES_MAX, 'a batch fits a segment');
