/**
 * The blockstore service every tile runs: it owns the tile's {@link ShardStore} (on disk under
 * the node's data dir, or in memory when the fabric has none) and answers the shard protocol on
 * `genesis.store.<tile>`.
 */

import { join } from 'node:path';
import {
  isGenesisError,
  type Logger,
  type NodeContext,
  type NodeService,
  type Subscription,
  type Transport,
} from '../core/index.ts';
import { DiskShardStore } from './disk-shard-store.ts';
import { LIST_PAGE_RECORDS_MAX } from './limits.ts';
import {
  allocFrame,
  decodeRequest,
  encodeBody,
  type ShardRequest,
  tileSubject,
} from './protocol.ts';
import { MemoryShardStore, type ShardStore } from './shard-store.ts';

/** Queued requests per tile before the oldest are dropped (the client then times out and retries elsewhere). */
export const TILE_PENDING_REQUESTS_MAX = 1024;

/** Options of {@link BlockstoreService}. */
export interface BlockstoreServiceOptions {
  /** fsync every write (default true). */
  readonly durable?: boolean;
  /** Builds the store; defaults to disk under the node's data dir, memory without one. */
  readonly openStore?: (ctx: NodeContext) => ShardStore;
}

/** A tile's blockstore, attached to a node. */
export class BlockstoreService implements NodeService {
  readonly name = 'store';
  private sub: Subscription | undefined;
  private shards: ShardStore | undefined;
  private opening: Promise<ShardStore> | undefined;
  private log: Logger | undefined;
  private requests = 0;
  private errors = 0;

  constructor(private readonly options: BlockstoreServiceOptions = {}) {}

  /** The tile's shard store (for tests and local tools); undefined while stopped. */
  get store(): ShardStore | undefined {
    return this.shards;
  }

  /**
   * Subscribes at once and opens the store on a later event-loop turn: opening SQLite and
   * running crash recovery on every tile would otherwise add up in `genesis up`'s boot.
   * Requests that arrive first wait for the open.
   */
  start(ctx: NodeContext): void {
    this.log = ctx.logger;
    this.opening = new Promise<ShardStore>((resolve, reject) => {
      setImmediate(() => {
        try {
          this.shards =
            this.options.openStore?.(ctx) ??
            (ctx.dataDir === undefined
              ? new MemoryShardStore()
              : new DiskShardStore(join(ctx.dataDir, 'store'), {
                  durable: this.options.durable ?? true,
                }));
          resolve(this.shards);
        } catch (e) {
          ctx.logger.error({ node: ctx.name, err: String(e) }, 'blockstore failed to open');
          reject(e);
        }
      });
    });
    this.opening.catch(() => undefined);
    this.sub = serveShardStore(ctx.transport, ctx.name, this.opening, (failed) => {
      this.requests++;
      if (failed) this.errors++;
    });
  }

  /** Resolves once the store is open (rejects if it failed to open). */
  ready(): Promise<ShardStore> {
    return this.opening ?? Promise.reject(new Error('blockstore not started'));
  }

  async stop(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = undefined;
    await this.opening?.catch(() => undefined);
    this.opening = undefined;
    this.shards?.close();
    this.shards = undefined;
  }

  status(): Record<string, number> {
    const s = this.shards?.stats();
    return {
      shards: s?.shards ?? 0,
      bytes: s?.bytes ?? 0,
      corrupt: s?.corruptDetected ?? 0,
      requests: this.requests,
      errors: this.errors,
    };
  }

  /** Logger of the node, once started. */
  get logger(): Logger | undefined {
    return this.log;
  }
}

/** Answers the shard protocol for `store` (or the store a promise opens) on the tile's subject. */
export function serveShardStore(
  transport: Transport,
  tile: string,
  store: ShardStore | Promise<ShardStore>,
  onRequest?: (failed: boolean) => void,
): Subscription {
  return transport.subscribe(
    tileSubject(tile),
    async (msg) => {
      let reply: Uint8Array;
      try {
        const req = decodeRequest(msg.data);
        const st = await store;
        reply =
          req.op === 'get'
            ? getReply(st, req.block, req.index)
            : encodeBody({ ok: true, ...(await handle(st, req)) });
        onRequest?.(false);
      } catch (e) {
        onRequest?.(true);
        const code = isGenesisError(e) ? e.code : 'STORE_BAD_REPLY';
        reply = encodeBody({
          ok: false,
          code,
          message: e instanceof Error ? e.message : String(e),
        });
      }
      msg.respond(reply);
    },
    { pendingMessagesMax: TILE_PENDING_REQUESTS_MAX, dropPolicy: 'drop-oldest' },
  );
}

/** The reply to `get`, with the shard read from the store straight into the reply frame. */
function getReply(store: ShardStore, block: string, index: number): Uint8Array {
  let framed: { frame: Uint8Array; tail: Uint8Array } | undefined;
  const r = store.get(block, index, (record) => {
    framed = allocFrame({ ok: true, record }, record.shardBytes);
    return framed.tail;
  });
  if (framed !== undefined && r.data === framed.tail) return framed.frame;
  // A store that kept its own buffer (or a record other than the one framed): frame it anew.
  return encodeBody({ ok: true, record: r.record, data: r.data });
}

async function handle(store: ShardStore, req: ShardRequest): Promise<Record<string, unknown>> {
  switch (req.op) {
    case 'put':
      return { record: await store.put(req.header, req.data) };
    case 'get':
      return store.get(req.block, req.index);
    case 'check': {
      const health = store.check(req.block, req.index);
      return {
        health,
        record: health === 'ok' ? (store.stat(req.block, req.index) ?? null) : null,
      };
    }
    case 'delete':
      return { existed: store.delete(req.block, req.index) };
    case 'list':
      return {
        records: store.list(
          req.after ?? undefined,
          Math.min(Math.max(1, req.limit), LIST_PAGE_RECORDS_MAX),
        ),
      };
    case 'ping':
      return { stats: store.stats() };
    default:
      throw new Error(`unknown op ${(req as { op: string }).op}`);
  }
}
