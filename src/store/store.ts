/**
 * The distributed store client: streaming put/get of objects named by CID, striped with
 * erasure coding over the tiles placement picks, read-time healing, stat, pins and garbage
 * collection (the repair scanner lives in repair.ts). It talks to tiles only through the shard
 * protocol over the core transport, so it runs unchanged in-process (`genesis up`, tests) and
 * over NATS.
 */
import {
  type Logger,
  silentLogger,
  type Topology,
  type Transport,
  TransportError,
} from '../core/index.ts';
import { MemoryCatalog, type PinRecord, type StoreCatalog } from './catalog.ts';
import {
  type CID,
  chunkLength,
  DAG_CBOR_CODE,
  decodeManifest,
  encodeManifest,
  hashesTo,
  parseCid,
  RAW_CODE,
  rawCid,
} from './cid.ts';
import { StoreError, StoreErrorCode } from './errors.ts';
import {
  CHUNK_BYTES,
  LIST_PAGE_RECORDS_MAX,
  OBJECT_BYTES_MAX,
  SHARD_REQUEST_TIMEOUT_MS,
  STREAM_BLOCKS_IN_FLIGHT_MAX,
} from './limits.ts';
import {
  DEFAULT_PROFILE_NAME,
  DEFAULT_PROFILES,
  PlacementMap,
  type Profile,
  resolveProfile,
  topologyTiles,
} from './placement.ts';
import {
  allocFrame,
  decodeReply,
  encodeBody,
  FramePool,
  type ShardReplies,
  type ShardRequest,
  tileSubject,
} from './protocol.ts';
import type { ShardHeader, ShardRecord } from './shard-store.ts';
import {
  CodecCache,
  type CodecFactory,
  encodeStripeInto,
  joinParts,
  reedSolomonCodec,
  shardLength,
  stripeParts,
} from './stripe.ts';

/** Why a shard could not be used. */
export type ShardProblem = 'missing' | 'corrupt' | 'unreachable' | 'error';

/** Health of one shard at its home tile. */
export interface ShardLocation {
  readonly index: number;
  readonly tile: string;
  readonly health: 'ok' | ShardProblem;
}

/** Health of one stripe (block). */
export interface StripeStat {
  readonly block: string;
  readonly k: number;
  readonly m: number;
  readonly shards: readonly ShardLocation[];
  /** Healthy shards; the block reads while this is ≥ k. */
  readonly healthy: number;
}

/** What `stat` reports about an object. */
export interface ObjectStat {
  readonly cid: string;
  readonly kind: 'raw' | 'manifest';
  readonly size: number;
  readonly profile: string;
  readonly pinned: boolean;
  readonly stripes: readonly StripeStat[];
  /** Stripes with fewer than k + m healthy shards. */
  readonly degraded: number;
  /** Stripes with fewer than k healthy shards (the object does not read). */
  readonly unreadable: number;
}

/** Result of a put. */
export interface PutResult {
  readonly cid: string;
  readonly size: number;
  readonly blocks: number;
  readonly profile: string;
}

/** Options of a put. */
export interface PutOptions {
  /** Profile name or inline `K+M[@scope]` (default: the store's default profile). */
  readonly profile?: string;
  /** Pin the object (default true, as `ipfs add` does). */
  readonly pin?: boolean;
}

/** Components and options of a {@link DistributedStore}. */
export interface DistributedStoreInit {
  readonly transport: Transport;
  readonly topology: Topology;
  readonly logger?: Logger;
  readonly catalog?: StoreCatalog;
  readonly profiles?: readonly Profile[];
  readonly defaultProfile?: string;
  readonly codec?: CodecFactory;
  readonly requestTimeoutMs?: number;
  /** Clock for pin timestamps (default Date.now). */
  readonly nowMs?: () => number;
}

/** Counters of a store client. */
export interface StoreClientStats {
  blocksPut: number;
  blocksRead: number;
  bytesPut: number;
  bytesRead: number;
  reconstructions: number;
  shardsHealed: number;
  shardWriteFailures: number;
}

/** A fetched shard or why not. */
type Fetched =
  | { ok: true; record: ShardRecord; data: Uint8Array }
  | { ok: false; problem: ShardProblem; detail: string };

/** A source of object bytes for a streaming put. */
export type PutSource = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** Shards that must be acknowledged before a block put succeeds: all data shards plus half the parity. */
export function writeQuorum(k: number, m: number): number {
  return k + Math.ceil(m / 2);
}

/** The distributed store client. */
export class DistributedStore {
  readonly topology: Topology;
  readonly transport: Transport;
  readonly catalog: StoreCatalog;
  readonly profiles: readonly Profile[];
  readonly defaultProfile: Profile;
  readonly log: Logger;
  readonly stats: StoreClientStats = {
    blocksPut: 0,
    blocksRead: 0,
    bytesPut: 0,
    bytesRead: 0,
    reconstructions: 0,
    shardsHealed: 0,
    shardWriteFailures: 0,
  };
  /** Recycled buffers of outgoing shard frames (puts and repair writes). */
  readonly framePool = new FramePool();
  /** Blocks written by puts still running; GC never removes them. */
  readonly inflightBlocks = new Map<string, number>();
  private readonly codecs: CodecCache;
  private readonly timeoutMs: number;
  private readonly nowMs: () => number;
  private placementCache: PlacementMap | undefined;

  constructor(init: DistributedStoreInit) {
    this.topology = init.topology;
    this.transport = init.transport;
    this.catalog = init.catalog ?? new MemoryCatalog();
    this.profiles = init.profiles ?? DEFAULT_PROFILES;
    this.defaultProfile = resolveProfile(
      init.defaultProfile ?? DEFAULT_PROFILE_NAME,
      this.profiles,
    );
    this.log = init.logger ?? silentLogger();
    this.codecs = new CodecCache(init.codec ?? reedSolomonCodec);
    this.timeoutMs = init.requestTimeoutMs ?? SHARD_REQUEST_TIMEOUT_MS;
    this.nowMs = init.nowMs ?? Date.now;
  }

  /** Tiles in the placement member set: every topology tile not marked out. */
  members(): string[] {
    const out = new Set(this.catalog.outTiles());
    return topologyTiles(this.topology).filter((t) => !out.has(t));
  }

  /** The placement of the current member set. */
  placement(): PlacementMap {
    this.placementCache ??= new PlacementMap(this.topology, this.members());
    return this.placementCache;
  }

  /** Replaces the set of tiles marked out (a membership change); placement follows. */
  setOutTiles(tiles: readonly string[]): void {
    this.catalog.setOutTiles([...new Set(tiles)].sort());
    this.placementCache = undefined;
  }

  /** Resolves a profile name or inline spec against this store's profiles. */
  profile(name?: string): Profile {
    return name === undefined ? this.defaultProfile : resolveProfile(name, this.profiles);
  }

  /** Sends one shard request to a tile. @throws {StoreError | TransportError} */
  async call<O extends ShardRequest['op']>(
    tile: string,
    req: Extract<ShardRequest, { op: O }>,
  ): Promise<ShardReplies[O]> {
    return this.callFrame<O>(tile, encodeBody(req));
  }

  /**
   * Sends an already framed request: a frame from `allocFrame` whose tail the caller filled
   * in place (a shard encoded or rebuilt straight into the message that carries it).
   * @throws {StoreError | TransportError}
   */
  async callFrame<O extends ShardRequest['op']>(
    tile: string,
    frame: Uint8Array,
  ): Promise<ShardReplies[O]> {
    const msg = await this.transport.request(tileSubject(tile), frame, {
      timeoutMs: this.timeoutMs,
    });
    return decodeReply<ShardReplies[O]>(msg.data, tile);
  }

  /** Every shard record a tile holds (paged). */
  async listTile(tile: string): Promise<ShardRecord[]> {
    const out: ShardRecord[] = [];
    let after: { block: string; index: number } | null = null;
    for (;;) {
      const page: ShardRecord[] = (
        await this.call(tile, { op: 'list', after, limit: LIST_PAGE_RECORDS_MAX })
      ).records;
      out.push(...page);
      const last = page.at(-1);
      if (page.length < LIST_PAGE_RECORDS_MAX || last === undefined) return out;
      after = { block: last.block, index: last.index };
    }
  }

  /**
   * Stores one block as a stripe on its placement. Succeeds once {@link writeQuorum} shards are
   * durable; shards that failed are left to the repair scanner.
   * @throws {StoreError} `STORE_WRITE_FAILED`, `STORE_PLACEMENT_IMPOSSIBLE`
   */
  async putBlock(cid: CID, bytes: Uint8Array, profile: Profile): Promise<void> {
    const block = cid.toString();
    const { k, m } = profile;
    const homes = this.placement().place(block, profile);
    // Each shard is produced in the tail of the message that carries it: the block is copied
    // once, parity is computed in place, nothing is re-framed.
    const len = shardLength(bytes.length, k);
    const frames = Array.from({ length: k + m }, (_, index) => {
      const header: ShardHeader = {
        block,
        index,
        k,
        m,
        blockBytes: bytes.length,
        profile: profile.name,
      };
      return allocFrame({ op: 'put', header }, len, (n) => this.framePool.take(n));
    });
    encodeStripeInto(
      this.codecs.get(k, m),
      bytes,
      frames.map((f) => f.tail),
      k,
      m,
    );
    const results = await Promise.all(
      frames.map(async ({ frame }, index) => {
        try {
          await this.callFrame<'put'>(homes[index] as string, frame);
          this.framePool.give(frame);
          return undefined;
        } catch (e) {
          this.stats.shardWriteFailures++;
          return { index, tile: homes[index] as string, error: describe(e) };
        }
      }),
    );
    const failed = results.filter((r) => r !== undefined);
    if (k + m - failed.length < writeQuorum(k, m)) {
      throw new StoreError(
        StoreErrorCode.WriteFailed,
        `block ${block}: only ${k + m - failed.length} of ${k + m} shards written (need ${writeQuorum(k, m)})`,
        {
          details: { block, failed },
        },
      );
    }
    this.stats.blocksPut++;
    this.stats.bytesPut += bytes.length;
  }

  /** Fetches one shard from its home, classifying failures. */
  async fetchShard(tile: string, block: string, index: number): Promise<Fetched> {
    try {
      const r = await this.call(tile, { op: 'get', block, index });
      return { ok: true, record: r.record, data: r.data };
    } catch (e) {
      return { ok: false, problem: classify(e), detail: describe(e) };
    }
  }

  /**
   * Reads one block, reconstructing from parity when data shards are missing or corrupt and
   * healing them at their homes. The result is checked against the CID before it is returned.
   * @param object the object the block belongs to, named in errors
   * @throws {StoreError} `STORE_NOT_FOUND` (no shard anywhere), `STORE_UNAVAILABLE` (fewer than k)
   */
  async getBlock(
    cid: CID,
    options: { profile?: string; object?: string } = {},
  ): Promise<Uint8Array> {
    return joinParts(await this.getBlockParts(cid, options));
  }

  /**
   * Like {@link getBlock}, but returns the block as consecutive views of its data shards (no
   * join copy), already verified against the CID as a whole.
   */
  async getBlockParts(
    cid: CID,
    options: { profile?: string; object?: string } = {},
  ): Promise<Uint8Array[]> {
    const block = cid.toString();
    let lastUnavailable: StoreError | undefined;
    for (const profile of this.candidateProfiles(block, options.profile)) {
      try {
        return await this.readStripe(cid, profile, options.object ?? block);
      } catch (e) {
        if (!(e instanceof StoreError) || e.code !== StoreErrorCode.NotFound) throw e;
        if (e.details.unreachable !== undefined && (e.details.unreachable as number) > 0)
          lastUnavailable = e;
      }
    }
    if (lastUnavailable !== undefined) {
      throw new StoreError(
        StoreErrorCode.Unavailable,
        `object ${options.object ?? block}: block ${block} not readable (tiles unreachable)`,
        {
          details: { ...lastUnavailable.details, object: options.object ?? block, block },
        },
      );
    }
    throw new StoreError(StoreErrorCode.NotFound, `block ${block} is not stored`, {
      details: { object: options.object ?? block, block },
    });
  }

  private candidateProfiles(block: string, hint: string | undefined): Profile[] {
    const names = [
      hint,
      this.catalog.getPin(block)?.profile,
      this.defaultProfile.name,
      ...this.profiles.map((p) => p.name),
    ];
    const out: Profile[] = [];
    for (const n of names) {
      if (n === undefined || out.some((p) => p.name === n)) continue;
      out.push(this.profile(n));
    }
    return out;
  }

  /** Reads one stripe; returns the block as views of its data shards, verified against the CID. */
  private async readStripe(cid: CID, profile: Profile, object: string): Promise<Uint8Array[]> {
    const block = cid.toString();
    const { k, m } = profile;
    const homes = this.placement().place(block, profile);
    const got: (Fetched | undefined)[] = new Array(k + m).fill(undefined);
    const fetch = (i: number) =>
      this.fetchShard(homes[i] as string, block, i).then((f) => {
        got[i] = f;
      });
    await Promise.all(Array.from({ length: k }, (_, i) => fetch(i)));
    if (got.filter((f) => f?.ok).length < k)
      await Promise.all(Array.from({ length: m }, (_, j) => fetch(k + j)));
    const healthy = got.flatMap((f) => (f?.ok ? [f] : []));
    const rec = healthy[0]?.record;
    if (rec === undefined || healthy.length < k) {
      const missing = got.flatMap((f, index) =>
        f === undefined || f.ok
          ? []
          : [{ index, tile: homes[index] as string, problem: f.problem }],
      );
      const allMissing =
        healthy.length === 0 &&
        missing.every((x) => x.problem === 'missing' || x.problem === 'unreachable');
      const unreachable = missing.filter((x) => x.problem === 'unreachable').length;
      if (allMissing && unreachable < k + m) {
        throw new StoreError(
          StoreErrorCode.NotFound,
          `block ${block} not found under profile ${profile.name}`,
          { details: { block, unreachable } },
        );
      }
      throw new StoreError(
        StoreErrorCode.Unavailable,
        `object ${object}: block ${block} has ${healthy.length} healthy shards, needs ${k}; missing ${missing.map((x) => `#${x.index}@${x.tile}(${x.problem})`).join(', ')}`,
        {
          details: { object, block, k, m, healthy: healthy.length, missing },
        },
      );
    }
    const shards = got.map((f) => (f?.ok && f.data.length === rec.shardBytes ? f.data : undefined));
    let full: Uint8Array[];
    if (shards.slice(0, k).every((s) => s !== undefined)) full = shards as Uint8Array[];
    else {
      full = this.codecs.get(k, m).reconstruct(shards);
      this.stats.reconstructions++;
    }
    let parts = stripeParts(full, k, rec.blockBytes);
    if (!hashesTo(cid, parts)) {
      // A shard passed its tile's checksum yet is wrong (a lying or buggy tile). Fetch every
      // shard and try leaving each one out: with one liar and m ≥ 1 this finds the block.
      const found = await this.excludeLiar(cid, profile, homes, got, rec.blockBytes);
      if (found === undefined) {
        throw new StoreError(
          StoreErrorCode.CidMismatch,
          `object ${object}: shards of block ${block} do not rebuild to its CID`,
          { details: { object, block } },
        );
      }
      ({ parts, full } = found);
    }
    await this.heal(got, full, homes, {
      block,
      index: 0,
      k,
      m,
      blockBytes: rec.blockBytes,
      profile: profile.name,
    });
    this.stats.blocksRead++;
    this.stats.bytesRead += rec.blockBytes;
    return parts;
  }

  /** Fetches every shard and looks for the one whose removal makes the block hash to its CID. */
  private async excludeLiar(
    cid: CID,
    profile: Profile,
    homes: readonly string[],
    got: (Fetched | undefined)[],
    blockBytes: number,
  ): Promise<{ parts: Uint8Array[]; full: Uint8Array[] } | undefined> {
    const { k, m } = profile;
    const block = cid.toString();
    await Promise.all(
      got.map(async (f, i) => {
        if (f === undefined) got[i] = await this.fetchShard(homes[i] as string, block, i);
      }),
    );
    const shards = got.map((f) => (f?.ok ? f.data : undefined));
    for (let liar = 0; liar < k + m; liar++) {
      if (shards[liar] === undefined) continue;
      const without = shards.map((s, i) => (i === liar ? undefined : s));
      if (without.filter((s) => s !== undefined).length < k) continue;
      const full = this.codecs.get(k, m).reconstruct(without);
      const parts = stripeParts(full, k, blockBytes);
      if (hashesTo(cid, parts)) {
        this.log.warn(
          { block, index: liar, tile: homes[liar] },
          'shard passed its checksum but was wrong; rewriting it',
        );
        // Mark it for healing: the tile's copy is replaced by the rebuilt one.
        got[liar] = {
          ok: false,
          problem: 'corrupt',
          detail: 'wrong content behind a valid checksum',
        };
        return { parts, full };
      }
    }
    return undefined;
  }

  /** Read-time healing (MinIO-style): rewrites missing or corrupt shards at their homes. */
  private async heal(
    got: readonly (Fetched | undefined)[],
    full: readonly Uint8Array[],
    homes: readonly string[],
    header: ShardHeader,
  ): Promise<void> {
    const work: Promise<void>[] = [];
    got.forEach((f, index) => {
      if (f === undefined || f.ok || (f.problem !== 'missing' && f.problem !== 'corrupt')) return;
      const data = full[index];
      if (data === undefined) return;
      work.push(
        this.call(homes[index] as string, { op: 'put', header: { ...header, index }, data }).then(
          () => void this.stats.shardsHealed++,
          (e: unknown) =>
            this.log.warn(
              { block: header.block, index, err: describe(e) },
              'read-time heal failed',
            ),
        ),
      );
    });
    await Promise.all(work);
  }

  /**
   * Streams an object in: 1 MiB raw chunks, each a stripe, at most
   * {@link STREAM_BLOCKS_IN_FLIGHT_MAX} in flight, then a dag-cbor manifest when there is more
   * than one chunk. Memory stays bounded whatever the object size.
   * @throws {StoreError} `STORE_TOO_LARGE`, `STORE_WRITE_FAILED`, ...
   */
  async put(source: PutSource, options: PutOptions = {}): Promise<PutResult> {
    const profile = this.profile(options.profile);
    const chunks: CID[] = [];
    const mark: string[] = [];
    const inflight = new Set<Promise<void>>();
    let size = 0;
    try {
      for await (const chunk of rechunk(source)) {
        size += chunk.length;
        if (size > OBJECT_BYTES_MAX)
          throw new StoreError(
            StoreErrorCode.TooLarge,
            `object exceeds OBJECT_BYTES_MAX (${OBJECT_BYTES_MAX} bytes)`,
            { details: { bytesMax: OBJECT_BYTES_MAX } },
          );
        const cid = rawCid(chunk);
        chunks.push(cid);
        mark.push(this.markInflight(cid.toString()));
        const p = this.putBlock(cid, chunk, profile);
        p.catch(() => {});
        inflight.add(p);
        void p.finally(() => inflight.delete(p)).catch(() => {});
        if (inflight.size >= STREAM_BLOCKS_IN_FLIGHT_MAX) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      let root: CID;
      if (chunks.length === 0) {
        root = rawCid(new Uint8Array(0));
        await this.putBlock(root, new Uint8Array(0), profile);
      } else if (chunks.length === 1) root = chunks[0] as CID;
      else {
        const man = encodeManifest(size, chunks);
        mark.push(this.markInflight(man.cid.toString()));
        await this.putBlock(man.cid, man.bytes, profile);
        root = man.cid;
      }
      const result: PutResult = {
        cid: root.toString(),
        size,
        blocks: chunks.length + (chunks.length > 1 ? 1 : 0),
        profile: profile.name,
      };
      if (options.pin !== false)
        this.catalog.addPin({
          cid: result.cid,
          profile: profile.name,
          size,
          pinnedAtMs: this.nowMs(),
        });
      return result;
    } finally {
      await Promise.allSettled(inflight);
      for (const b of mark) this.unmarkInflight(b);
    }
  }

  /** Reads a whole object into memory (for small objects and tests; prefer {@link get}). */
  async getBytes(cidText: string | CID): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const p of this.get(cidText)) parts.push(p);
    return Buffer.concat(parts);
  }

  /**
   * Streams an object out, prefetching at most {@link STREAM_BLOCKS_IN_FLIGHT_MAX} chunks. Each
   * chunk is verified against its CID as a whole, then yielded as the views of its data shards
   * (no join copy), in order.
   * @throws {StoreError} `STORE_NOT_FOUND`, `STORE_UNAVAILABLE` naming the object and shards
   */
  async *get(cidText: string | CID): AsyncGenerator<Uint8Array> {
    const cid = typeof cidText === 'string' ? parseCid(cidText) : cidText;
    const object = cid.toString();
    if (cid.code === RAW_CODE) {
      yield* await this.getBlockParts(cid, { object });
      return;
    }
    const manifest = decodeManifest(await this.getBlock(cid, { object }));
    const hint = this.catalog.getPin(object)?.profile;
    const queue: Promise<Uint8Array[]>[] = [];
    let next = 0;
    const refill = (): void => {
      while (next < manifest.chunks.length && queue.length < STREAM_BLOCKS_IN_FLIGHT_MAX) {
        const p = this.getBlockParts(manifest.chunks[next++] as CID, {
          object,
          ...(hint === undefined ? {} : { profile: hint }),
        });
        p.catch(() => {});
        queue.push(p);
      }
    };
    refill();
    for (let i = 0; i < manifest.chunks.length; i++) {
      const parts = await (queue.shift() as Promise<Uint8Array[]>);
      const n = parts.reduce((t, p) => t + p.length, 0);
      if (n !== chunkLength(manifest.size, i)) {
        throw new StoreError(
          StoreErrorCode.BadManifest,
          `object ${object}: chunk ${i} has ${n} bytes, manifest says ${chunkLength(manifest.size, i)}`,
        );
      }
      refill();
      yield* parts;
    }
  }

  /** The block CIDs of an object: the root, plus its chunks when the root is a manifest. */
  async blocksOf(cid: CID): Promise<{ kind: 'raw' | 'manifest'; size: number; blocks: CID[] }> {
    if (cid.code === RAW_CODE) {
      const probe = await this.stripeStat(cid);
      const rec = probe.record;
      return { kind: 'raw', size: rec?.blockBytes ?? 0, blocks: [cid] };
    }
    if (cid.code !== DAG_CBOR_CODE)
      throw new StoreError(StoreErrorCode.BadCid, `unsupported codec of ${cid.toString()}`);
    const manifest = decodeManifest(await this.getBlock(cid, { object: cid.toString() }));
    return { kind: 'manifest', size: manifest.size, blocks: [cid, ...manifest.chunks] };
  }

  /** Health of one stripe at its placement (checksums verified by the tiles). */
  async stripeStat(
    cid: CID,
    profileHint?: string,
  ): Promise<StripeStat & { record: ShardRecord | undefined; profile: string }> {
    const block = cid.toString();
    let fallback: (StripeStat & { record: ShardRecord | undefined; profile: string }) | undefined;
    for (const profile of this.candidateProfiles(block, profileHint)) {
      const homes = this.placement().place(block, profile);
      let record: ShardRecord | undefined;
      const shards = await Promise.all(
        homes.map(async (tile, index): Promise<ShardLocation> => {
          try {
            const r = await this.call(tile, { op: 'check', block, index });
            if (r.health === 'ok' && r.record !== null) record ??= r.record;
            return { index, tile, health: r.health };
          } catch (e) {
            return { index, tile, health: classify(e) };
          }
        }),
      );
      const st = {
        block,
        k: profile.k,
        m: profile.m,
        shards,
        healthy: shards.filter((s) => s.health === 'ok').length,
        record,
        profile: profile.name,
      };
      if (st.healthy > 0) return st;
      fallback ??= st;
    }
    if (fallback === undefined)
      throw new StoreError(StoreErrorCode.BadProfile, 'no profiles configured');
    return fallback;
  }

  /**
   * Where each shard of an object lives and whether it is healthy.
   * @throws {StoreError} `STORE_NOT_FOUND` when no shard of the root exists
   */
  async stat(cidText: string | CID): Promise<ObjectStat> {
    const cid = typeof cidText === 'string' ? parseCid(cidText) : cidText;
    const object = cid.toString();
    const pin = this.catalog.getPin(object);
    const root = await this.stripeStat(cid, pin?.profile);
    if (root.healthy === 0 && root.shards.every((s) => s.health === 'missing')) {
      throw new StoreError(StoreErrorCode.NotFound, `object ${object} is not stored`, {
        details: { object },
      });
    }
    const stripes: StripeStat[] = [strip(root)];
    let size = root.record?.blockBytes ?? pin?.size ?? 0;
    let kind: 'raw' | 'manifest' = 'raw';
    if (cid.code === DAG_CBOR_CODE) {
      kind = 'manifest';
      const manifest = decodeManifest(await this.getBlock(cid, { object, profile: root.profile }));
      size = manifest.size;
      for (const c of manifest.chunks) stripes.push(strip(await this.stripeStat(c, root.profile)));
    }
    return {
      cid: object,
      kind,
      size,
      profile: root.profile,
      pinned: pin !== undefined,
      stripes,
      degraded: stripes.filter((s) => s.healthy < s.k + s.m).length,
      unreadable: stripes.filter((s) => s.healthy < s.k).length,
    };
  }

  /**
   * Pins an object after checking that every block of it reads (≥ k healthy shards).
   * @throws {StoreError} `STORE_PIN_UNAVAILABLE` naming the unreadable blocks
   */
  async pin(cidText: string): Promise<PinRecord> {
    const cid = parseCid(cidText);
    let st: ObjectStat;
    try {
      st = await this.stat(cid);
    } catch (e) {
      throw new StoreError(
        StoreErrorCode.PinUnavailable,
        `cannot pin ${cid.toString()}: ${describe(e)}`,
        { cause: e, details: { object: cid.toString() } },
      );
    }
    const bad = st.stripes.filter((s) => s.healthy < s.k);
    if (bad.length > 0) {
      throw new StoreError(
        StoreErrorCode.PinUnavailable,
        `cannot pin ${st.cid}: ${bad.length} block(s) unreadable (${bad
          .slice(0, 3)
          .map((b) => b.block)
          .join(', ')}${bad.length > 3 ? ', ...' : ''})`,
        {
          details: { object: st.cid, blocks: bad.map((b) => b.block) },
        },
      );
    }
    const rec: PinRecord = {
      cid: st.cid,
      profile: st.profile,
      size: st.size,
      pinnedAtMs: this.nowMs(),
    };
    this.catalog.addPin(rec);
    return rec;
  }

  /** Unpins an object; its blocks become garbage unless another pin reaches them. */
  unpin(cidText: string): boolean {
    return this.catalog.removePin(parseCid(cidText).toString());
  }

  /**
   * Removes every stored block that no pin reaches and no running put is writing. If any pinned
   * root cannot be read, nothing is removed: reachability would be unknown.
   * @throws {StoreError} `STORE_UNAVAILABLE` when a pinned root does not read
   */
  async gc(): Promise<{
    blocksRemoved: number;
    shardsRemoved: number;
    bytesFreed: number;
    tilesSkipped: string[];
  }> {
    const reachable = new Set<string>();
    for (const pin of this.catalog.pins()) {
      const cid = parseCid(pin.cid);
      reachable.add(pin.cid);
      if (cid.code === DAG_CBOR_CODE) {
        const manifest = decodeManifest(
          await this.getBlock(cid, { object: pin.cid, profile: pin.profile }),
        );
        for (const c of manifest.chunks) reachable.add(c.toString());
      }
    }
    const garbage = new Set<string>();
    let shardsRemoved = 0;
    let bytesFreed = 0;
    const tilesSkipped: string[] = [];
    for (const tile of topologyTiles(this.topology)) {
      let records: ShardRecord[];
      try {
        records = await this.listTile(tile);
      } catch {
        tilesSkipped.push(tile);
        continue;
      }
      for (const r of records) {
        if (reachable.has(r.block) || this.inflightBlocks.has(r.block)) continue;
        const res = await this.call(tile, { op: 'delete', block: r.block, index: r.index });
        if (res.existed) {
          garbage.add(r.block);
          shardsRemoved++;
          bytesFreed += r.shardBytes;
        }
      }
    }
    return { blocksRemoved: garbage.size, shardsRemoved, bytesFreed, tilesSkipped };
  }

  private markInflight(block: string): string {
    this.inflightBlocks.set(block, (this.inflightBlocks.get(block) ?? 0) + 1);
    return block;
  }

  private unmarkInflight(block: string): void {
    const n = (this.inflightBlocks.get(block) ?? 1) - 1;
    if (n <= 0) this.inflightBlocks.delete(block);
    else this.inflightBlocks.set(block, n);
  }
}

function strip(s: StripeStat): StripeStat {
  return { block: s.block, k: s.k, m: s.m, shards: s.shards, healthy: s.healthy };
}

/** Maps a failed shard request to why the shard could not be used. */
export function classify(e: unknown): ShardProblem {
  if (e instanceof StoreError) {
    if (e.code === StoreErrorCode.NotFound) return 'missing';
    if (e.code === StoreErrorCode.ShardCorrupt) return 'corrupt';
    return 'error';
  }
  if (e instanceof TransportError) return 'unreachable';
  return 'error';
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Re-cuts any byte source into {@link CHUNK_BYTES} chunks (the last may be shorter). Each
 * yielded chunk is a fresh buffer the consumer owns; at most one chunk is buffered here.
 */
export async function* rechunk(source: PutSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    for (let off = 0; off < source.length; off += CHUNK_BYTES)
      yield source.subarray(off, Math.min(source.length, off + CHUNK_BYTES));
    return;
  }
  let buf = new Uint8Array(CHUNK_BYTES);
  let fill = 0;
  for await (const piece of source as AsyncIterable<Uint8Array>) {
    let off = 0;
    while (off < piece.length) {
      const n = Math.min(CHUNK_BYTES - fill, piece.length - off);
      buf.set(piece.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === CHUNK_BYTES) {
        yield buf;
        buf = new Uint8Array(CHUNK_BYTES);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}
