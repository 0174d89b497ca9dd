/**
 * The on-disk shard store of one tile, under `<node data dir>/store/`:
 *
 *     store/index.sqlite           SQLite (WAL): one row per shard with its checksum
 *     store/shards/<xx>/<cid>.<i>  a self-describing shard file (see {@link encodeShardFile})
 *     store/tmp/                   files being written; anything here at open is a torn write
 *
 * A put writes a temp file, fsyncs it, renames it into place, fsyncs the directory (one fsync
 * shared by every put waiting on that directory: group commit), then commits the index row;
 * the caller acknowledges after that. The file carries its own header and checksum, so the
 * index is a cache of the files: at open, temp files are removed, rows whose file is missing
 * or of the wrong size are dropped, and a complete file without a row (renamed, then the crash
 * came before the row reached disk) is verified and adopted. That is why the index may run
 * with synchronous=NORMAL: a lost index commit loses nothing. A shard whose bytes no longer
 * match its checksum (bit rot, a torn sector) is quarantined when read and never served.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sha256 } from './cid.ts';
import { StoreError, StoreErrorCode } from './errors.ts';
import {
  checkShardInput,
  corrupt,
  notFound,
  type ShardHeader,
  type ShardHealth,
  type ShardRecord,
  type ShardStore,
  type ShardStoreStats,
  toHex,
} from './shard-store.ts';

interface Row {
  block: string;
  idx: number;
  k: number;
  m: number;
  block_bytes: number;
  shard_bytes: number;
  sha256: string;
  profile: string;
}

/** Options of {@link DiskShardStore}. */
export interface DiskShardStoreOptions {
  /** fsync files, directories and the index (default true). Benchmarks may compare both. */
  readonly durable?: boolean;
}

let tmpSeq = 0;

/** A tile's durable shard store (see the module comment for the layout and crash rules). */
export class DiskShardStore implements ShardStore {
  private readonly db: Database.Database;
  private readonly durable: boolean;
  private readonly shardsDir: string;
  private readonly tmpDir: string;
  private corruptDetected = 0;
  private recovered = 0;
  private adopted = 0;
  /** Shard subdirectories known to exist (at most 32 × 32 of them). */
  private readonly madeDirs = new Set<string>();
  private readonly dirSyncs = new Map<
    string,
    { running: Promise<void> | undefined; next: Promise<void> | undefined }
  >();
  private count = 0;
  private bytes = 0;
  private readonly q: {
    insert: Database.Statement;
    get: Database.Statement;
    del: Database.Statement;
    listFrom: Database.Statement;
    listAll: Database.Statement;
  };

  /** Opens (creating if needed) the store rooted at `dir` and runs crash recovery. @throws {StoreError} `STORE_DISK_FAILURE` */
  constructor(
    readonly dir: string,
    options: DiskShardStoreOptions = {},
  ) {
    this.durable = options.durable ?? true;
    this.shardsDir = join(dir, 'shards');
    this.tmpDir = join(dir, 'tmp');
    try {
      mkdirSync(this.shardsDir, { recursive: true });
      rmSync(this.tmpDir, { recursive: true, force: true });
      mkdirSync(this.tmpDir, { recursive: true });
      this.db = new Database(join(dir, 'index.sqlite'));
      this.db.pragma('journal_mode = WAL');
      // NORMAL is enough: shard files are durable and self-describing, and recovery adopts a
      // complete file whose index row was lost.
      this.db.pragma(`synchronous = ${this.durable ? 'NORMAL' : 'OFF'}`);
      this.db.exec(`CREATE TABLE IF NOT EXISTS shards (
        block TEXT NOT NULL, idx INTEGER NOT NULL, k INTEGER NOT NULL, m INTEGER NOT NULL,
        block_bytes INTEGER NOT NULL, shard_bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
        profile TEXT NOT NULL, PRIMARY KEY (block, idx)) WITHOUT ROWID`);
    } catch (e) {
      throw new StoreError(
        StoreErrorCode.DiskFailure,
        `cannot open shard store at ${dir}: ${(e as Error).message}`,
        { cause: e, details: { dir } },
      );
    }
    this.q = {
      insert: this.db.prepare(
        'INSERT OR REPLACE INTO shards VALUES (@block, @idx, @k, @m, @block_bytes, @shard_bytes, @sha256, @profile)',
      ),
      get: this.db.prepare('SELECT * FROM shards WHERE block = ? AND idx = ?'),
      del: this.db.prepare('DELETE FROM shards WHERE block = ? AND idx = ?'),
      listFrom: this.db.prepare(
        'SELECT * FROM shards WHERE (block > @block) OR (block = @block AND idx > @idx) ORDER BY block, idx LIMIT @limit',
      ),
      listAll: this.db.prepare('SELECT * FROM shards ORDER BY block, idx LIMIT @limit'),
    };
    this.recover();
  }

  async put(header: ShardHeader, data: Uint8Array): Promise<ShardRecord> {
    checkShardInput(header, data);
    const record: ShardRecord = { ...header, shardBytes: data.length, sha256: toHex(sha256(data)) };
    const existing = this.stat(header.block, header.index);
    if (
      existing !== undefined &&
      existing.sha256 === record.sha256 &&
      this.check(header.block, header.index) === 'ok'
    )
      return existing;
    const final = this.pathOf(header.block, header.index);
    const dir = join(final, '..');
    const tmp = join(this.tmpDir, `${header.block}.${header.index}.${process.pid}.${++tmpSeq}.tmp`);
    try {
      if (!this.madeDirs.has(dir)) {
        mkdirSync(dir, { recursive: true });
        this.madeDirs.add(dir);
      }
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(encodeShardFile(record, data));
        if (this.durable) await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
      if (this.durable) await this.syncDir(dir);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new StoreError(
        StoreErrorCode.DiskFailure,
        `cannot write shard ${header.block}#${header.index}: ${(e as Error).message}`,
        {
          cause: e,
          details: { block: header.block, index: header.index },
        },
      );
    }
    // Re-read: another put of the same shard may have committed while this one was writing.
    const prev = this.stat(header.block, header.index);
    this.q.insert.run(toRow(record));
    if (prev === undefined) this.count++;
    this.bytes += data.length - (prev?.shardBytes ?? 0);
    return record;
  }

  /**
   * fsyncs a directory, sharing one fsync among every put that renamed into it meanwhile:
   * a put that arrives while a sync is running waits for the next one (group commit), which
   * still starts after its rename, so its entry is covered.
   */
  private syncDir(dir: string): Promise<void> {
    let entry = this.dirSyncs.get(dir);
    if (entry === undefined) {
      entry = { running: undefined, next: undefined };
      this.dirSyncs.set(dir, entry);
    }
    const e = entry;
    if (e.next !== undefined) return e.next;
    const runOnce = async (): Promise<void> => {
      const fh = await open(dir, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    };
    const after = e.running ?? Promise.resolve();
    const p = after
      .catch(() => undefined)
      .then(() => {
        e.next = undefined;
        e.running = p;
        return runOnce();
      })
      .finally(() => {
        if (e.running === p) e.running = undefined;
      });
    e.next = p;
    return p;
  }

  get(block: string, index: number): { record: ShardRecord; data: Uint8Array } {
    const record = this.stat(block, index);
    if (record === undefined) throw notFound(block, index);
    let data: Uint8Array;
    try {
      data = readFileSync(this.pathOf(block, index));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        // The file vanished under us (an operator, a disk fault): the row is a lie now.
        this.forget(record);
        throw notFound(block, index);
      }
      throw new StoreError(StoreErrorCode.DiskFailure, `cannot read shard ${block}#${index}`, {
        cause: e,
        details: { block, index },
      });
    }
    const payload = decodeShardFile(data)?.data;
    if (
      payload === undefined ||
      payload.length !== record.shardBytes ||
      toHex(sha256(payload)) !== record.sha256
    ) {
      this.corruptDetected++;
      this.remove(record);
      throw corrupt(block, index);
    }
    return { record, data: payload };
  }

  stat(block: string, index: number): ShardRecord | undefined {
    const row = this.q.get.get(block, index) as Row | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  check(block: string, index: number): ShardHealth {
    try {
      this.get(block, index);
      return 'ok';
    } catch (e) {
      if (e instanceof StoreError && e.code === StoreErrorCode.ShardCorrupt) return 'corrupt';
      if (e instanceof StoreError && e.code === StoreErrorCode.NotFound) return 'missing';
      throw e;
    }
  }

  delete(block: string, index: number): boolean {
    const record = this.stat(block, index);
    if (record === undefined) return false;
    this.remove(record);
    return true;
  }

  list(after: { block: string; index: number } | undefined, limit: number): ShardRecord[] {
    const rows = (
      after === undefined
        ? this.q.listAll.all({ limit })
        : this.q.listFrom.all({ block: after.block, idx: after.index, limit })
    ) as Row[];
    return rows.map(fromRow);
  }

  /** Complete shard files whose index row was lost, verified and re-indexed at open. */
  get adoptedAtOpen(): number {
    return this.adopted;
  }

  stats(): ShardStoreStats {
    return {
      shards: this.count,
      bytes: this.bytes,
      corruptDetected: this.corruptDetected,
      recovered: this.recovered,
    };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Path of a shard's file; exposed for fault-injection tests. */
  pathOf(block: string, index: number): string {
    return join(this.shardsDir, block.slice(-2), `${block}.${index}`);
  }

  private remove(record: ShardRecord): void {
    rmSync(this.pathOf(record.block, record.index), { force: true });
    this.forget(record);
  }

  private forget(record: ShardRecord): void {
    const r = this.q.del.run(record.block, record.index);
    if (r.changes > 0) {
      this.count--;
      this.bytes -= record.shardBytes;
    }
  }

  /**
   * Crash recovery: drops rows whose file is missing or of the wrong length; adopts complete,
   * verified files that have no row (their index commit was lost); removes anything else.
   * Checksums of indexed shards are not recomputed here (that is the scrubber's job) so
   * opening stays fast.
   */
  private recover(): void {
    const known = new Set<string>();
    const rows = this.db.prepare('SELECT * FROM shards').all() as Row[];
    for (const row of rows) {
      const rec = fromRow(row);
      const path = this.pathOf(rec.block, rec.index);
      let size = -1;
      try {
        size = statSync(path).size;
      } catch {
        size = -1;
      }
      if (size !== shardFileBytes(rec)) {
        rmSync(path, { force: true });
        this.q.del.run(row.block, row.idx);
        this.recovered++;
        continue;
      }
      known.add(`${row.block}.${row.idx}`);
      this.count++;
      this.bytes += row.shard_bytes;
    }
    for (const sub of readdirSync(this.shardsDir)) {
      for (const f of readdirSync(join(this.shardsDir, sub))) {
        if (known.has(f)) continue;
        const path = join(this.shardsDir, sub, f);
        const parsed = decodeShardFile(readFileSync(path));
        const rec = parsed?.record;
        if (
          parsed !== undefined &&
          rec !== undefined &&
          `${rec.block}.${rec.index}` === f &&
          parsed.data.length === rec.shardBytes &&
          toHex(sha256(parsed.data)) === rec.sha256
        ) {
          this.q.insert.run(toRow(rec));
          this.count++;
          this.bytes += rec.shardBytes;
          this.adopted++;
        } else {
          unlinkSync(path);
          this.recovered++;
        }
      }
    }
  }
}

const SHARD_FILE_MAGIC = 0x47534831; // "GSH1"
const SHARD_FILE_PREFIX_BYTES = 8;

function headerJson(r: ShardRecord): Uint8Array {
  // Fixed key order so the header, hence the file size, is a function of the record.
  const h = {
    block: r.block,
    index: r.index,
    k: r.k,
    m: r.m,
    blockBytes: r.blockBytes,
    profile: r.profile,
    shardBytes: r.shardBytes,
    sha256: r.sha256,
  };
  return new TextEncoder().encode(JSON.stringify(h));
}

/** Size of a shard file: magic, header length, JSON header, shard bytes. */
export function shardFileBytes(r: ShardRecord): number {
  return SHARD_FILE_PREFIX_BYTES + headerJson(r).length + r.shardBytes;
}

/**
 * A shard file: magic "GSH1", u32 big-endian header length, the JSON header (the shard's
 * record, checksum included), then the shard bytes. Self-describing, so the index can be
 * rebuilt from the files.
 */
export function encodeShardFile(r: ShardRecord, data: Uint8Array): Uint8Array {
  const head = headerJson(r);
  const out = new Uint8Array(SHARD_FILE_PREFIX_BYTES + head.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, SHARD_FILE_MAGIC);
  view.setUint32(4, head.length);
  out.set(head, SHARD_FILE_PREFIX_BYTES);
  out.set(data, SHARD_FILE_PREFIX_BYTES + head.length);
  return out;
}

/** Parses a shard file; undefined when it is not one (torn, foreign, damaged header). */
export function decodeShardFile(
  bytes: Uint8Array,
): { record: ShardRecord; data: Uint8Array } | undefined {
  if (bytes.length < SHARD_FILE_PREFIX_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== SHARD_FILE_MAGIC) return undefined;
  const headBytes = view.getUint32(4);
  if (headBytes > 4096 || SHARD_FILE_PREFIX_BYTES + headBytes > bytes.length) return undefined;
  try {
    const h = JSON.parse(
      new TextDecoder().decode(
        bytes.subarray(SHARD_FILE_PREFIX_BYTES, SHARD_FILE_PREFIX_BYTES + headBytes),
      ),
    ) as ShardRecord;
    if (
      typeof h.block !== 'string' ||
      typeof h.sha256 !== 'string' ||
      !Number.isInteger(h.index) ||
      !Number.isInteger(h.shardBytes)
    )
      return undefined;
    return { record: h, data: bytes.subarray(SHARD_FILE_PREFIX_BYTES + headBytes) };
  } catch {
    return undefined;
  }
}

function toRow(r: ShardRecord): Row {
  return {
    block: r.block,
    idx: r.index,
    k: r.k,
    m: r.m,
    block_bytes: r.blockBytes,
    shard_bytes: r.shardBytes,
    sha256: r.sha256,
    profile: r.profile,
  };
}

function fromRow(r: Row): ShardRecord {
  return {
    block: r.block,
    index: r.idx,
    k: r.k,
    m: r.m,
    blockBytes: r.block_bytes,
    shardBytes: r.shard_bytes,
    sha256: r.sha256,
    profile: r.profile,
  };
}
