/**
 * The on-disk shard store of one tile, under `<node data dir>/store/`:
 *
 *     store/index.sqlite        SQLite (WAL, synchronous=FULL): one row per shard with its checksum
 *     store/shards/<xx>/<cid>.<i>  shard bytes, exactly as encoded (no header)
 *     store/tmp/               files being written; anything here at open is a torn write
 *
 * A put writes a temp file, fsyncs it, renames it into place, fsyncs the directory, and only
 * then commits the index row; the caller acknowledges after the commit. So after a crash at any
 * point: a temp file is garbage (removed at open), a renamed file without a row was never
 * acknowledged (removed at open), and a row whose file is missing or of the wrong size is
 * dropped. A shard whose bytes no longer match the checksum in its row (bit rot, a torn
 * sector) is quarantined when read and never served.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
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
      this.db.pragma(`synchronous = ${this.durable ? 'FULL' : 'OFF'}`);
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

  put(header: ShardHeader, data: Uint8Array): ShardRecord {
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
    const tmp = join(this.tmpDir, `${header.block}.${header.index}.${process.pid}.${++tmpSeq}.tmp`);
    try {
      mkdirSync(join(final, '..'), { recursive: true });
      const fd = openSync(tmp, 'w');
      try {
        let off = 0;
        while (off < data.length) off += writeSync(fd, data, off, data.length - off);
        if (this.durable) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, final);
      if (this.durable) fsyncDir(join(final, '..'));
      const prev = existing;
      this.q.insert.run(toRow(record));
      if (prev === undefined) this.count++;
      this.bytes += data.length - (prev?.shardBytes ?? 0);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new StoreError(
        StoreErrorCode.DiskFailure,
        `cannot write shard ${header.block}#${header.index}: ${(e as Error).message}`,
        { cause: e, details: { block: header.block, index: header.index } },
      );
    }
    return record;
  }

  get(block: string, index: number): { record: ShardRecord; data: Uint8Array } {
    const record = this.stat(block, index);
    if (record === undefined) throw notFound(block, index);
    let data: Buffer;
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
    if (data.length !== record.shardBytes || toHex(sha256(data)) !== record.sha256) {
      this.corruptDetected++;
      this.remove(record);
      throw corrupt(block, index);
    }
    return { record, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
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
   * Crash recovery: drops rows whose file is missing or of the wrong length, and files that
   * have no row (renamed but never committed, hence never acknowledged). Checksums are not
   * recomputed here (that is the scrubber's job) so opening stays fast.
   */
  private recover(): void {
    const known = new Set<string>();
    const rows = this.db.prepare('SELECT * FROM shards').all() as Row[];
    for (const row of rows) {
      const path = this.pathOf(row.block, row.idx);
      let size = -1;
      try {
        size = statSync(path).size;
      } catch {
        size = -1;
      }
      if (size !== row.shard_bytes) {
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
        unlinkSync(join(this.shardsDir, sub, f));
        this.recovered++;
      }
    }
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
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
