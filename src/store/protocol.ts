/**
 * The shard protocol between a store client and the blockstore of each tile, carried as
 * request/reply on the core transport. One subject per tile, `genesis.store.<tile>` (the tile
 * name's dots become subject tokens, so `genesis.store.eu1.h1.>` addresses a hub's tiles). Bodies
 * are dag-cbor maps; a reply is `{ok: true, ...}` or `{ok: false, code, message}` with a stable
 * store error code.
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

/** Encodes a request or reply body. */
export function encodeBody(value: unknown): Uint8Array {
  return dagCbor.encode(value);
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
  try {
    return dagCbor.decode(bytes);
  } catch (e) {
    throw new StoreError(StoreErrorCode.BadReply, 'body is not dag-cbor', { cause: e });
  }
}
