/**
 * The per-tile shard store contract and its in-memory implementation. A shard is one of the
 * k + m pieces of an erasure-coded stripe; the stripe is one block (a chunk or a manifest)
 * named by its CID. Every shard carries a SHA-256 checksum taken when it was written, and a
 * read that does not match is quarantined and reported, never served. Both implementations
 * pass one compliance suite (test/store/support/shard-store-compliance.ts).
 */
import { sha256 } from './cid.ts';
import { StoreError, StoreErrorCode } from './errors.ts';
import { SHARD_BYTES_MAX, STRIPE_SHARDS_MAX } from './limits.ts';

/** What identifies a shard and the stripe it belongs to. */
export interface ShardHeader {
  /** CID string of the block the stripe encodes. */
  readonly block: string;
  /** Index of this shard in the stripe: 0..k-1 data, k..k+m-1 parity. */
  readonly index: number;
  readonly k: number;
  readonly m: number;
  /** Length of the block before padding to k equal shards. */
  readonly blockBytes: number;
  /** Placement profile the stripe was written with. */
  readonly profile: string;
}

/** A stored shard's record. */
export interface ShardRecord extends ShardHeader {
  readonly shardBytes: number;
  /** SHA-256 of the shard bytes, lower-case hex. */
  readonly sha256: string;
}

/** Where {@link ShardStore.get} may place the bytes: a buffer, or one made for the record. */
export type ShardTarget = Uint8Array | ((record: ShardRecord) => Uint8Array);

/** Resolves a {@link ShardTarget} for a record; undefined when it does not fit the shard. */
export function targetFor(
  into: ShardTarget | undefined,
  record: ShardRecord,
): Uint8Array | undefined {
  const dst = typeof into === 'function' ? into(record) : into;
  return dst !== undefined && dst.length === record.shardBytes ? dst : undefined;
}

/** Result of checking one stored shard against its checksum. */
export type ShardHealth = 'ok' | 'missing' | 'corrupt';

/** Counters of a shard store. */
export interface ShardStoreStats {
  readonly shards: number;
  readonly bytes: number;
  /** Shards found corrupt (bad checksum, wrong length) and quarantined since open. */
  readonly corruptDetected: number;
  /** Index rows dropped or files removed by crash recovery at open. */
  readonly recovered: number;
}

/** The per-tile shard store contract. */
export interface ShardStore {
  /** Stores a shard durably before returning (the caller acknowledges only after this). */
  put(header: ShardHeader, data: Uint8Array): Promise<ShardRecord>;
  /**
   * Returns the shard bytes after checking them against the stored checksum. With `into` (a
   * buffer, or a function given the record that returns one) of exactly the shard's length,
   * the bytes are placed there and `data` is that buffer: a reply frame can then carry them
   * without another copy.
   * @throws {StoreError} `STORE_NOT_FOUND`; `STORE_SHARD_CORRUPT` (the shard is then removed).
   */
  get(block: string, index: number, into?: ShardTarget): { record: ShardRecord; data: Uint8Array };
  /** The record of a shard, if stored (no checksum check). */
  stat(block: string, index: number): ShardRecord | undefined;
  /** Checks a shard against its checksum; a corrupt shard is removed. */
  check(block: string, index: number): ShardHealth;
  /** Removes a shard; returns whether it existed. */
  delete(block: string, index: number): boolean;
  /** Records ordered by (block, index), strictly after the cursor, at most `limit`. */
  list(after: { block: string; index: number } | undefined, limit: number): ShardRecord[];
  stats(): ShardStoreStats;
  close(): void;
}

/** Validates a header and data against the store's bounds. @throws {StoreError} */
export function checkShardInput(header: ShardHeader, data: Uint8Array): void {
  const { k, m, index, blockBytes } = header;
  const fail = (why: string): never => {
    throw new StoreError(
      StoreErrorCode.BadReply,
      `invalid shard ${header.block}#${index}: ${why}`,
      { details: { ...header, bytes: data.length } },
    );
  };
  if (!Number.isInteger(k) || !Number.isInteger(m) || k < 1 || m < 0 || k + m > STRIPE_SHARDS_MAX)
    fail('bad k/m');
  if (!Number.isInteger(index) || index < 0 || index >= k + m) fail('index out of range');
  if (data.length < 1 || data.length > SHARD_BYTES_MAX) fail('shard size out of range');
  if (!Number.isSafeInteger(blockBytes) || blockBytes < 0 || blockBytes > k * data.length)
    fail('blockBytes does not fit k shards');
  if (header.block.length === 0 || header.block.length > 128 || !/^[a-z0-9]+$/.test(header.block))
    fail('bad block name');
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Compares keys in list order. */
export function compareKeys(
  a: { block: string; index: number },
  b: { block: string; index: number },
): number {
  if (a.block !== b.block) return a.block < b.block ? -1 : 1;
  return a.index - b.index;
}

/** A shard store in memory, for fast unit tests and diskless fabrics. */
export class MemoryShardStore implements ShardStore {
  private readonly shards = new Map<string, { record: ShardRecord; data: Uint8Array }>();
  private bytes = 0;
  private corruptDetected = 0;

  async put(header: ShardHeader, data: Uint8Array): Promise<ShardRecord> {
    checkShardInput(header, data);
    const record: ShardRecord = { ...header, shardBytes: data.length, sha256: toHex(sha256(data)) };
    this.delete(header.block, header.index);
    // Copy: the transport hands buffers by reference and the caller may reuse its own.
    this.shards.set(key(header.block, header.index), { record, data: Uint8Array.from(data) });
    this.bytes += data.length;
    return record;
  }

  get(block: string, index: number, into?: ShardTarget): { record: ShardRecord; data: Uint8Array } {
    const e = this.shards.get(key(block, index));
    if (e === undefined) throw notFound(block, index);
    if (toHex(sha256(e.data)) !== e.record.sha256) {
      this.quarantine(block, index);
      throw corrupt(block, index);
    }
    const dst = targetFor(into, e.record);
    if (dst !== undefined) {
      dst.set(e.data);
      return { record: e.record, data: dst };
    }
    return { record: e.record, data: e.data };
  }

  stat(block: string, index: number): ShardRecord | undefined {
    return this.shards.get(key(block, index))?.record;
  }

  check(block: string, index: number): ShardHealth {
    try {
      this.get(block, index);
      return 'ok';
    } catch (e) {
      return e instanceof StoreError && e.code === StoreErrorCode.ShardCorrupt
        ? 'corrupt'
        : 'missing';
    }
  }

  delete(block: string, index: number): boolean {
    const e = this.shards.get(key(block, index));
    if (e === undefined) return false;
    this.bytes -= e.data.length;
    this.shards.delete(key(block, index));
    return true;
  }

  list(after: { block: string; index: number } | undefined, limit: number): ShardRecord[] {
    const all = [...this.shards.values()].map((e) => e.record).sort(compareKeys);
    return all.filter((r) => after === undefined || compareKeys(r, after) > 0).slice(0, limit);
  }

  stats(): ShardStoreStats {
    return {
      shards: this.shards.size,
      bytes: this.bytes,
      corruptDetected: this.corruptDetected,
      recovered: 0,
    };
  }

  /** Test hook: flips one byte of a stored shard, as bit rot would. */
  rot(block: string, index: number, offset = 0): void {
    const e = this.shards.get(key(block, index));
    if (e === undefined) throw notFound(block, index);
    const at = offset % e.data.length;
    e.data[at] = (e.data[at] ?? 0) ^ 0x01;
  }

  close(): void {}

  private quarantine(block: string, index: number): void {
    this.corruptDetected++;
    this.delete(block, index);
  }
}

function key(block: string, index: number): string {
  return `${block}#${index}`;
}

/** The not-found error of a shard. */
export function notFound(block: string, index: number): StoreError {
  return new StoreError(StoreErrorCode.NotFound, `shard ${block}#${index} not stored here`, {
    details: { block, index },
  });
}

/** The corrupt error of a shard. */
export function corrupt(block: string, index: number): StoreError {
  return new StoreError(
    StoreErrorCode.ShardCorrupt,
    `shard ${block}#${index} failed its checksum and was quarantined`,
    { details: { block, index } },
  );
}
