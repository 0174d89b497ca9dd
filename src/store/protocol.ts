/**
 * The shard protocol between a store client and the blockstore of each tile, carried as
 * request/reply on the core transport. One subject per tile, `genesis.store.<tile>` (the tile
 * name's dots become subject tokens, so `genesis.store.eu1.h1.>` addresses a hub's tiles).
 *
 * A body is a frame: a 4-byte big-endian length, that many bytes of a dag-cbor map, then the
 * shard bytes (if the map's `data` field was set) as a raw tail. Keeping bulk bytes out of CBOR
 * lets the receiver take them as a view without a copy. A reply is `{ok: true, ...}` or
 * `{ok: false, code, message}` with a stable store error code.
 */
import * as dagCbor from '@ipld/dag-cbor';
import { StoreError, StoreErrorCode, type StoreErrorCodeValue } from './errors.ts';
import type { ShardHeader, ShardHealth, ShardRecord, ShardStoreStats } from './shard-store.ts';

/** Subject of a tile's blockstore. */
export function tileSubject(tile: string): string {
  return `genesis.store.${tile}`;
}

/** A request to a tile. */
export type ShardRequest =
  | { readonly op: 'put'; readonly header: ShardHeader; readonly data: Uint8Array }
  | { readonly op: 'get'; readonly block: string; readonly index: number }
  | { readonly op: 'check'; readonly block: string; readonly index: number }
  | { readonly op: 'delete'; readonly block: string; readonly index: number }
  | {
      readonly op: 'list';
      readonly after: { block: string; index: number } | null;
      readonly limit: number;
    }
  | { readonly op: 'ping' };

/** Replies, by operation. */
export interface ShardReplies {
  put: { record: ShardRecord };
  get: { record: ShardRecord; data: Uint8Array };
  check: { health: ShardHealth; record: ShardRecord | null };
  delete: { existed: boolean };
  list: { records: ShardRecord[] };
  ping: { stats: ShardStoreStats };
}

/** Bytes of the frame's header-length prefix. */
const FRAME_PREFIX_BYTES = 4;

/** Encodes a request or reply body; a top-level `data` byte field travels as the raw tail. */
export function encodeBody(value: Record<string, unknown>): Uint8Array {
  const { data, ...rest } = value;
  if (!(data instanceof Uint8Array)) return allocFrame(rest, 0).frame;
  const { frame, tail } = allocFrame(rest, data.length);
  tail.set(data);
  return frame;
}

/**
 * Allocates the frame of `value` followed by a raw tail of `tailBytes` that the caller fills
 * (all of it: the memory is not zeroed). Lets a shard be produced in place (erasure-coded or
 * read from disk straight into the message) instead of being copied into it.
 */
export function allocFrame(
  value: Record<string, unknown>,
  tailBytes: number,
  alloc: (bytes: number) => Uint8Array = (n) => Buffer.allocUnsafe(n),
): { frame: Uint8Array; tail: Uint8Array } {
  const head = dagCbor.encode(tailBytes > 0 ? { ...value, tail: true } : value);
  const raw = alloc(FRAME_PREFIX_BYTES + head.length + tailBytes);
  const frame = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  frame.writeUInt32BE(head.length, 0);
  frame.set(head, FRAME_PREFIX_BYTES);
  return { frame, tail: frame.subarray(FRAME_PREFIX_BYTES + head.length) };
}

/** Granularity of pooled frame capacities (frames are rounded up to a multiple of it). */
export const FRAME_POOL_GRAIN_BYTES = 64 * 1024;
/** Frames kept for reuse per capacity (a few stripes of puts in flight, plus slack). */
export const FRAME_POOL_FRAMES_MAX = 64;

/**
 * Recycles the buffers of outgoing shard frames. A put sends every chunk's k + m shards as
 * fresh 256 KiB-class messages; allocating each anew makes V8 run a full collection every
 * few dozen MiB (external memory pressure). A frame goes back to the pool only after its
 * request got a reply: the tile has then finished with it (it writes before it acknowledges);
 * after a timeout or error it is left to the collector, since the tile may still hold it.
 */
export class FramePool {
  private readonly free = new Map<number, ArrayBuffer[]>();

  /** A buffer of `bytes` (a view of a pooled slab when one is free). */
  take(bytes: number): Uint8Array {
    const cap = Math.ceil(bytes / FRAME_POOL_GRAIN_BYTES) * FRAME_POOL_GRAIN_BYTES;
    const slab = this.free.get(cap)?.pop() ?? new ArrayBuffer(cap);
    return new Uint8Array(slab, 0, bytes);
  }

  /** Returns a frame from {@link take} once nothing else can read it. */
  give(frame: Uint8Array): void {
    const slab = frame.buffer;
    if (!(slab instanceof ArrayBuffer) || frame.byteOffset !== 0) return;
    const cap = slab.byteLength;
    if (cap % FRAME_POOL_GRAIN_BYTES !== 0) return;
    let list = this.free.get(cap);
    if (list === undefined) {
      list = [];
      this.free.set(cap, list);
    }
    if (list.length < FRAME_POOL_FRAMES_MAX) list.push(slab);
  }
}

/** Decodes a request body. @throws {StoreError} `STORE_BAD_REPLY` on garbage */
export function decodeRequest(bytes: Uint8Array): ShardRequest {
  const v = safeDecode(bytes) as { op?: unknown } | null;
  if (v === null || typeof v !== 'object' || typeof v.op !== 'string') {
    throw new StoreError(StoreErrorCode.BadReply, 'malformed shard request');
  }
  return v as ShardRequest;
}

/**
 * Decodes a reply: returns the payload of `{ok: true}` or throws the typed error of `{ok: false}`.
 * @throws {StoreError}
 */
export function decodeReply<T>(bytes: Uint8Array, tile: string): T {
  const v = safeDecode(bytes) as {
    ok?: unknown;
    code?: unknown;
    message?: unknown;
    details?: unknown;
  } | null;
  if (v === null || typeof v !== 'object' || typeof v.ok !== 'boolean') {
    throw new StoreError(StoreErrorCode.BadReply, `malformed reply from ${tile}`, {
      details: { tile },
    });
  }
  if (v.ok) return v as T;
  const code = (Object.values(StoreErrorCode) as string[]).includes(String(v.code))
    ? (v.code as StoreErrorCodeValue)
    : StoreErrorCode.BadReply;
  throw new StoreError(code, `${tile}: ${String(v.message)}`, {
    details: { tile, ...((v.details as Record<string, unknown> | undefined) ?? {}) },
  });
}

function safeDecode(bytes: Uint8Array): unknown {
  if (bytes.length < FRAME_PREFIX_BYTES)
    throw new StoreError(StoreErrorCode.BadReply, 'body shorter than its frame prefix');
  const headBytes = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (headBytes > bytes.length - FRAME_PREFIX_BYTES)
    throw new StoreError(StoreErrorCode.BadReply, 'frame header length exceeds the body');
  let value: unknown;
  try {
    value = dagCbor.decode(bytes.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + headBytes));
  } catch (e) {
    throw new StoreError(StoreErrorCode.BadReply, 'frame header is not dag-cbor', { cause: e });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new StoreError(StoreErrorCode.BadReply, 'frame header is not a map');
  const v = value as Record<string, unknown>;
  if (v.tail === true) {
    delete v.tail;
    v.data = bytes.subarray(FRAME_PREFIX_BYTES + headBytes);
  }
  return v;
}
