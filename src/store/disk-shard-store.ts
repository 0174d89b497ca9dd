/**
 * The on-disk shard store of one tile, under `<node data dir>/store/`, as an append-only log:
 *
 *     store/index.sqlite            SQLite (WAL): one row per shard (checksum, segment, offset),
 *                                   plus the replay mark
 *     store/segments/<seq>.seg      append-only segments of self-describing records
 *
 * **Write path (group commit).** A put hashes the shard once (SHA-256, the checksum every read
 * verifies), queues its record (a small header plus the caller's bytes, written as an I/O vector:
 * never copied into a file buffer) and waits. A single writer per tile takes everything queued
 * (up to {@link SEGMENT_BATCH_BYTES_MAX}), writes it with one positioned `writev` at the end of
 * the active segment, makes it durable with one `fdatasync`, then commits the batch's index
 * rows and the new replay mark in one SQLite transaction; only then do the puts of the batch
 * return. Puts that arrive while a batch is being synced form the next batch, so one fsync
 * covers as many shards as arrived meanwhile instead of two fsyncs (file and directory) and one
 * inode per shard.
 *
 * **Crash safety.** An acknowledged shard's bytes were written and `fdatasync`ed before its
 * acknowledgement (fdatasync(2) also flushes the file size an append changed), the segment's
 * directory entry was fsynced when the segment was created, and its row was committed (WAL;
 * a process crash such as kill -9 loses no commit). SQLite runs with synchronous=NORMAL: after
 * a power cut the last commits may be lost, so the index is also recoverable from the log.
 * Every batch transaction stores the *replay mark*, the log position up to which the index
 * reflects every record. At open, the records after the mark are replayed: a complete record
 * whose data matches its header's SHA-256 is (re)indexed, a tombstone removes its row, and
 * the first incomplete or mismatching record ends the segment (a torn tail from a crash in
 * the middle of a batch, which was never acknowledged; the segment is truncated there).
 * Records are written by one writer in log order, so nothing acknowledged lies behind a torn
 * record. Rows pointing past the end of a segment or into a missing one are dropped.
 *
 * **Reads** re-hash the shard and compare it with the row's SHA-256; a mismatch (bit rot, a
 * torn sector) quarantines the shard (row removed, tombstone logged, counted as
 * `corruptDetected`) and it is never served.
 *
 * **Space.** Deletes and replacements leave dead records behind. A sealed segment whose live
 * bytes fall under {@link SEGMENT_COMPACT_LIVE_PERCENT_MIN} per cent is compacted: its live
 * shards are verified, appended again through the normal durable path, their rows moved
 * (only if they still point at the old copy), and the segment file is removed once no row
 * points into it. A stale row that a power cut brings back is re-pointed by the replay (the
 * copies lie after the durable replay mark) or dropped with its missing segment.
 *
 * A directory in the previous layout (one file per shard under `shards/`) is migrated into
 * the log at open: each file is verified, appended and fsynced, indexed, then removed.
 */
import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  ftruncate,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writev,
  writevSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { assert } from '../core/index.ts';
import { sha256 } from './cid.ts';
import { StoreError, StoreErrorCode } from './errors.ts';
import {
  SEGMENT_BATCH_BYTES_MAX,
  SEGMENT_BYTES_MAX,
  SEGMENT_COMPACT_LIVE_PERCENT_MIN,
  SHARD_BYTES_MAX,
} from './limits.ts';
import {
  checkShardInput,
  corrupt,
  notFound,
  type ShardHeader,
  type ShardHealth,
  type ShardRecord,
  type ShardStore,
  type ShardStoreStats,
  type ShardTarget,
  targetFor,
  toHex,
} from './shard-store.ts';

const writevAsync = promisify(writev);
const fdatasyncAsync = promisify(fdatasync);
const ftruncateAsync = promisify(ftruncate);

interface Row {
  block: string;
  idx: number;
  k: number;
  m: number;
  block_bytes: number;
  shard_bytes: number;
  sha256: string;
  profile: string;
  seg: number;
  off: number;
}

/** Options of {@link DiskShardStore}. */
export interface DiskShardStoreOptions {
  /** fsync segments, directories and the index (default true). Benchmarks may compare both. */
  readonly durable?: boolean;
  /** Segment size before rolling to a new one (default and maximum {@link SEGMENT_BYTES_MAX}); tests use small ones. */
  readonly segmentBytesMax?: number;
}

/** One segment file of the log. */
interface Segment {
  readonly seq: number;
  readonly path: string;
  fd: number;
  /** Bytes written (the append position). */
  size: number;
  /** Bytes of the records that rows point at (header and data). */
  live: number;
}

/** A record waiting for the writer. */
interface Append {
  readonly parts: readonly Uint8Array[];
  readonly bytes: number;
  /** Bytes of the record before the shard data. */
  readonly headBytes: number;
  /** Runs inside the batch's index transaction, with the data's position. */
  readonly commit: ((seg: number, dataOff: number) => void) | undefined;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** A decoded log record. */
type LogRecord =
  | {
      readonly kind: 'shard';
      readonly record: ShardRecord;
      readonly dataOff: number;
      readonly end: number;
    }
  | {
      readonly kind: 'tombstone';
      readonly block: string;
      readonly index: number;
      readonly end: number;
    };

/** "GSL1": a log record. */
const RECORD_MAGIC = 0x47534c31;
/** Magic plus the u32 header length. */
const RECORD_PREFIX_BYTES = 8;
/** Largest JSON header of a record (a CID, a profile name and a few numbers). */
const RECORD_HEADER_BYTES_MAX = 4096;

/** A tile's durable shard store (see the module comment for the layout and crash rules). */
export class DiskShardStore implements ShardStore {
  private readonly db: Database.Database;
  private readonly durable: boolean;
  private readonly segmentBytesMax: number;
  private readonly segmentsDir: string;
  private readonly segments = new Map<number, Segment>();
  private active: Segment;
  private readonly queue: Append[] = [];
  private pumping = false;
  private compacting = false;
  /** A compaction was asked for while a pass ran (a segment sealed or shrank after its scan). */
  private compactAgain = false;
  private closed = false;
  private corruptDetected = 0;
  private recovered = 0;
  private adopted = 0;
  private compactions = 0;
  private batches = 0;
  private count = 0;
  private bytes = 0;
  private readonly q: {
    insert: Database.Statement;
    get: Database.Statement;
    del: Database.Statement;
    listFrom: Database.Statement;
    listAll: Database.Statement;
    setMark: Database.Statement;
    inSegment: Database.Statement;
    move: Database.Statement;
  };
  private readonly commitBatch: (batch: readonly Append[], seg: number, start: number) => void;

  /** Opens (creating if needed) the store rooted at `dir` and runs crash recovery. @throws {StoreError} `STORE_DISK_FAILURE` */
  constructor(
    readonly dir: string,
    options: DiskShardStoreOptions = {},
  ) {
    this.durable = options.durable ?? true;
    this.segmentBytesMax = Math.min(
      options.segmentBytesMax ?? SEGMENT_BYTES_MAX,
      SEGMENT_BYTES_MAX,
    );
    assert(this.segmentBytesMax >= 1, 'segment size is positive');
    this.segmentsDir = join(dir, 'segments');
    try {
      const fresh = !existsSync(this.segmentsDir);
      mkdirSync(this.segmentsDir, { recursive: true });
      if (fresh && this.durable) syncDirSync(dir);
      this.db = new Database(join(dir, 'index.sqlite'));
      this.db.pragma('journal_mode = WAL');
      // NORMAL is enough: the log is durable and self-describing, and the replay at open
      // re-indexes whatever a lost commit leaves out (see the module comment).
      this.db.pragma(`synchronous = ${this.durable ? 'NORMAL' : 'OFF'}`);
      this.db.exec(`CREATE TABLE IF NOT EXISTS shard_log (
        block TEXT NOT NULL, idx INTEGER NOT NULL, k INTEGER NOT NULL, m INTEGER NOT NULL,
        block_bytes INTEGER NOT NULL, shard_bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
        profile TEXT NOT NULL, seg INTEGER NOT NULL, off INTEGER NOT NULL,
        PRIMARY KEY (block, idx)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS shard_log_seg ON shard_log (seg);
        CREATE TABLE IF NOT EXISTS replay_mark (id INTEGER PRIMARY KEY CHECK (id = 0),
        seg INTEGER NOT NULL, off INTEGER NOT NULL);`);
    } catch (e) {
      throw diskFailure(`cannot open shard store at ${dir}`, e, { dir });
    }
    this.q = {
      insert: this.db.prepare(
        'INSERT OR REPLACE INTO shard_log VALUES (@block, @idx, @k, @m, @block_bytes, @shard_bytes, @sha256, @profile, @seg, @off)',
      ),
      get: this.db.prepare('SELECT * FROM shard_log WHERE block = ? AND idx = ?'),
      del: this.db.prepare('DELETE FROM shard_log WHERE block = ? AND idx = ?'),
      listFrom: this.db.prepare(
        'SELECT * FROM shard_log WHERE (block > @block) OR (block = @block AND idx > @idx) ORDER BY block, idx LIMIT @limit',
      ),
      listAll: this.db.prepare('SELECT * FROM shard_log ORDER BY block, idx LIMIT @limit'),
      setMark: this.db.prepare('INSERT OR REPLACE INTO replay_mark VALUES (0, ?, ?)'),
      inSegment: this.db.prepare('SELECT * FROM shard_log WHERE seg = ?'),
      move: this.db.prepare(
        'UPDATE shard_log SET seg = @seg, off = @off WHERE block = @block AND idx = @idx AND seg = @oldSeg AND off = @oldOff',
      ),
    };
    this.commitBatch = this.db.transaction(
      (batch: readonly Append[], seg: number, start: number) => {
        let off = start;
        for (const a of batch) {
          a.commit?.(seg, off + a.headBytes);
          off += a.bytes;
        }
        this.q.setMark.run(seg, off);
      },
    );
    try {
      this.active = this.recover();
      this.migrateLegacy(dir);
    } catch (e) {
      this.closeFiles();
      if (e instanceof StoreError) throw e;
      throw diskFailure(`cannot recover shard store at ${dir}`, e, { dir });
    }
    this.scheduleCompaction();
  }

  async put(header: ShardHeader, data: Uint8Array): Promise<ShardRecord> {
    checkShardInput(header, data);
    const record: ShardRecord = { ...header, shardBytes: data.length, sha256: toHex(sha256(data)) };
    const existing = this.rowOf(header.block, header.index);
    // Content addressing makes re-puts common: keep the stored copy if it still verifies.
    if (
      existing !== undefined &&
      existing.sha256 === record.sha256 &&
      this.check(header.block, header.index) === 'ok'
    )
      return fromRow(existing);
    await this.appendShard(record, data, undefined);
    return record;
  }

  /**
   * Appends a shard record and indexes it once durable. With `from`, this is a compaction copy:
   * the row moves only if it still points at `from` (a newer put or a delete wins).
   */
  private appendShard(
    record: ShardRecord,
    data: Uint8Array,
    from: { seg: number; off: number } | undefined,
  ): Promise<void> {
    const head = encodeRecordHead(record);
    return this.enqueue([head, data], head.length, (seg, off) => {
      if (from !== undefined) {
        const r = this.q.move.run({
          seg,
          off,
          block: record.block,
          idx: record.index,
          oldSeg: from.seg,
          oldOff: from.off,
        });
        if (r.changes > 0) {
          this.liveDelta(from.seg, -recordBytes(record));
          this.liveDelta(seg, recordBytes(record));
        }
        return;
      }
      const prevRow = this.rowOf(record.block, record.index);
      this.q.insert.run(toRow(record, seg, off));
      if (prevRow === undefined) this.count++;
      else this.liveDelta(prevRow.seg, -recordBytes(fromRow(prevRow)));
      this.bytes += record.shardBytes - (prevRow?.shard_bytes ?? 0);
      this.liveDelta(seg, recordBytes(record));
    });
  }

  /** Queues one record for the writer; resolves once it is durable and its commit ran. */
  private enqueue(
    parts: readonly Uint8Array[],
    headBytes: number,
    commit: ((seg: number, dataOff: number) => void) | undefined,
  ): Promise<void> {
    if (this.closed) return Promise.reject(diskFailure('shard store is closed', undefined, {}));
    const bytes = parts.reduce((n, p) => n + p.length, 0);
    assert(bytes <= SEGMENT_BATCH_BYTES_MAX, 'one record fits a batch');
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ parts, bytes, headBytes, commit, resolve, reject });
      if (!this.pumping) void this.pump();
    });
  }

  /**
   * The single writer: one `writev` and one `fdatasync` per batch of queued records, then one
   * index transaction (group commit). Records reach the log in queue order.
   */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const batch: Append[] = [];
        let bytes = 0;
        for (let a = this.queue[0]; a !== undefined; a = this.queue[0]) {
          if (batch.length > 0 && bytes + a.bytes > SEGMENT_BATCH_BYTES_MAX) break;
          batch.push(a);
          bytes += a.bytes;
          this.queue.shift();
        }
        let seg = this.active;
        let at = seg.size;
        try {
          if (seg.size > 0 && seg.size + bytes > this.segmentBytesMax) seg = await this.roll();
          at = seg.size;
          const { bytesWritten } = await writevAsync(
            seg.fd,
            batch.flatMap((a) => a.parts as Uint8Array[]),
            at,
          );
          if (bytesWritten !== bytes)
            throw new Error(`short write: ${bytesWritten} of ${bytes} bytes`);
          seg.size = at + bytes;
          if (this.durable) await fdatasyncAsync(seg.fd);
          if (this.closed) throw new Error('shard store closed during the write');
          this.commitBatch(batch, seg.seq, at);
          this.batches++;
        } catch (e) {
          // The batch's bytes may be partly on disk: cut them off so the next batch starts
          // right after the last whole record (the replay would stop at them anyway).
          if (!this.closed) {
            seg.size = at;
            await ftruncateAsync(seg.fd, at).catch(() => undefined);
          }
          const err = diskFailure('cannot append to the shard log', e, { segment: seg.seq });
          for (const a of batch) a.reject(err);
          continue;
        }
        for (const a of batch) a.resolve();
      }
    } finally {
      this.pumping = false;
      // close() leaves the descriptors to the writer while a write is in flight: closing them
      // under it could let a reused descriptor number receive the write.
      if (this.closed) this.closeFiles();
    }
  }

  /** Seals the active segment and starts the next one (its directory entry made durable first). */
  private async roll(): Promise<Segment> {
    const seq = this.active.seq + 1;
    const seg = this.openSegment(seq, true);
    if (this.durable) syncDirSync(this.segmentsDir);
    this.active = seg;
    this.scheduleCompaction();
    return seg;
  }

  private openSegment(seq: number, create: boolean): Segment {
    const path = join(this.segmentsDir, `${String(seq).padStart(10, '0')}.seg`);
    const fd = openSync(path, create ? 'wx+' : 'r+');
    const seg: Segment = { seq, path, fd, size: create ? 0 : statSync(path).size, live: 0 };
    this.segments.set(seq, seg);
    return seg;
  }

  /** See {@link ShardStore.get}: one index lookup, one `pread` (into `into` when given), one hash. */
  get(block: string, index: number, into?: ShardTarget): { record: ShardRecord; data: Uint8Array } {
    const row = this.rowOf(block, index);
    if (row === undefined) throw notFound(block, index);
    const record = fromRow(row);
    const seg = this.segments.get(row.seg);
    if (seg === undefined) {
      // The segment vanished under us (an operator, a disk fault): the row is a lie now.
      this.forget(record, row.seg);
      throw notFound(block, index);
    }
    const data = targetFor(into, record) ?? Buffer.allocUnsafe(record.shardBytes);
    let n: number;
    try {
      n = readFull(seg.fd, data, row.off);
    } catch (e) {
      throw diskFailure(`cannot read shard ${block}#${index}`, e, { block, index });
    }
    if (n !== record.shardBytes || toHex(sha256(data)) !== record.sha256) {
      this.corruptDetected++;
      this.remove(record, row.seg);
      throw corrupt(block, index);
    }
    return { record, data };
  }

  stat(block: string, index: number): ShardRecord | undefined {
    const row = this.rowOf(block, index);
    return row === undefined ? undefined : fromRow(row);
  }

  private rowOf(block: string, index: number): Row | undefined {
    return this.q.get.get(block, index) as Row | undefined;
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
    const row = this.rowOf(block, index);
    if (row === undefined) return false;
    this.remove(fromRow(row), row.seg);
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

  /** Shards re-indexed from the log at open (their index commit was lost). */
  get adoptedAtOpen(): number {
    return this.adopted;
  }

  /** Group commits (one `writev` and one `fdatasync` each) since open. */
  get batchesWritten(): number {
    return this.batches;
  }

  /** Segments compacted (live shards moved, file removed) since open. */
  get segmentsCompacted(): number {
    return this.compactions;
  }

  /** Segment files in use, with their sizes and live bytes (for tests and `stat` tools). */
  segmentInfo(): { seq: number; size: number; live: number }[] {
    return [...this.segments.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((s) => ({ seq: s.seq, size: s.size, live: s.live }));
  }

  stats(): ShardStoreStats {
    return {
      shards: this.count,
      bytes: this.bytes,
      corruptDetected: this.corruptDetected,
      recovered: this.recovered,
    };
  }

  /** Waits until queued writes and a running compaction are done (tests, orderly shutdown). */
  async flush(): Promise<void> {
    while (this.pumping || this.queue.length > 0 || this.compacting)
      await new Promise((r) => setTimeout(r, 1));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const err = diskFailure('shard store closed', undefined, {});
    for (const a of this.queue.splice(0)) a.reject(err);
    if (this.db.open) this.db.close();
    if (!this.pumping) this.closeFiles();
  }

  /**
   * Where a shard's bytes are on disk: the segment file and the byte range of its data.
   * Exposed for fault-injection tests (tearing or rotting a stored shard).
   */
  locate(
    block: string,
    index: number,
  ): { path: string; offset: number; length: number } | undefined {
    const row = this.rowOf(block, index);
    const seg = row === undefined ? undefined : this.segments.get(row.seg);
    if (row === undefined || seg === undefined) return undefined;
    return { path: seg.path, offset: row.off, length: row.shard_bytes };
  }

  private closeFiles(): void {
    for (const s of this.segments.values()) {
      try {
        closeSync(s.fd);
      } catch {
        // already closed
      }
    }
    this.segments.clear();
  }

  /** Removes a shard's row and logs a tombstone (so a replay after a lost commit keeps it gone). */
  private remove(record: ShardRecord, seg: number): void {
    this.forget(record, seg);
    if (this.closed) return;
    const head = encodeTombstone(record.block, record.index);
    // Not awaited: a lost tombstone only brings a deleted shard back, which GC and repair
    // delete again; acknowledged data never depends on it.
    this.enqueue([head], head.length, undefined).catch(() => undefined);
  }

  private forget(record: ShardRecord, seg: number): void {
    const r = this.q.del.run(record.block, record.index);
    if (r.changes > 0) {
      this.count--;
      this.bytes -= record.shardBytes;
      this.liveDelta(seg, -recordBytes(record));
    }
  }

  private liveDelta(seq: number, delta: number): void {
    const s = this.segments.get(seq);
    if (s === undefined) return;
    s.live += delta;
    if (delta < 0 && this.compactable(s)) this.scheduleCompaction();
  }

  /** A sealed segment before the replay mark's segment with too few live bytes. */
  private compactable(s: Segment): boolean {
    return s.seq < this.active.seq && s.live * 100 < s.size * SEGMENT_COMPACT_LIVE_PERCENT_MIN;
  }

  private scheduleCompaction(): void {
    if (this.closed) return;
    if (this.compacting) {
      // A pass is running; it may have scanned already, so ask for another one after it.
      this.compactAgain = true;
      return;
    }
    this.compacting = true;
    this.compactAgain = false;
    setImmediate(() => {
      this.compact()
        .catch(() => undefined)
        .finally(() => {
          this.compacting = false;
          if (this.compactAgain) this.scheduleCompaction();
        });
    });
  }

  /** Compacts every compactable segment, one at a time, oldest first. */
  private async compact(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const s = [...this.segments.values()]
        .sort((a, b) => a.seq - b.seq)
        .find((x) => this.compactable(x));
      if (s === undefined) return;
      const rows = this.q.inSegment.all(s.seq) as Row[];
      for (const row of rows) {
        if (this.closed) return;
        let data: Uint8Array;
        try {
          // Verified read: a rotted copy is quarantined here, never copied.
          data = this.get(row.block, row.idx).data;
        } catch {
          continue;
        }
        await this.appendShard(fromRow(row), data, { seg: s.seq, off: row.off });
      }
      if (this.closed) return;
      if ((this.q.inSegment.all(s.seq) as Row[]).length > 0) return; // raced with something; retry later
      closeSync(s.fd);
      this.segments.delete(s.seq);
      unlinkSync(s.path);
      if (this.durable) syncDirSync(this.segmentsDir);
      this.compactions++;
    }
  }

  /**
   * Crash recovery: replays the log after the replay mark, truncates a torn tail, drops rows
   * whose segment is missing or too short, and returns the active segment.
   */
  private recover(): Segment {
    const seqs = readdirSync(this.segmentsDir)
      .flatMap((f) => {
        const m = /^(\d{10})\.seg$/.exec(f);
        if (m === null) {
          rmSync(join(this.segmentsDir, f), { force: true, recursive: true });
          return [];
        }
        return [Number(m[1])];
      })
      .sort((a, b) => a - b);
    for (const seq of seqs) this.openSegment(seq, false);
    const mark = this.db.prepare('SELECT seg, off FROM replay_mark WHERE id = 0').get() as
      | { seg: number; off: number }
      | undefined;
    for (const seq of seqs) {
      if (mark !== undefined && seq < mark.seg) continue;
      const seg = this.segments.get(seq) as Segment;
      this.replay(seg, mark !== undefined && seq === mark.seg ? mark.off : 0);
    }
    // Rows the log no longer backs (a segment removed by compaction whose row moves were lost,
    // a truncated tail): drop them.
    const rows = this.db.prepare('SELECT * FROM shard_log').all() as Row[];
    for (const row of rows) {
      const seg = this.segments.get(row.seg);
      if (seg === undefined || row.off + row.shard_bytes > seg.size) {
        this.q.del.run(row.block, row.idx);
        this.recovered++;
        continue;
      }
      this.count++;
      this.bytes += row.shard_bytes;
      seg.live += recordBytes(fromRow(row));
    }
    const last = seqs.at(-1);
    const active =
      last === undefined ? this.openSegment(1, true) : (this.segments.get(last) as Segment);
    if (last === undefined && this.durable) syncDirSync(this.segmentsDir);
    this.q.setMark.run(active.seq, active.size);
    return active;
  }

  /** Replays one segment from `from`; cuts it at the first record that is not whole and valid. */
  private replay(seg: Segment, from: number): void {
    let pos = from;
    while (pos < seg.size) {
      const rec = readRecord(seg.fd, pos, seg.size);
      if (rec === undefined) {
        ftruncateSync(seg.fd, pos);
        if (this.durable) fdatasyncSync(seg.fd);
        seg.size = pos;
        this.recovered++;
        return;
      }
      if (rec.kind === 'tombstone') {
        this.q.del.run(rec.block, rec.index);
      } else {
        const r = rec.record;
        const prev = this.rowOf(r.block, r.index);
        if (prev === undefined || prev.seg !== seg.seq || prev.off !== rec.dataOff) {
          this.q.insert.run(toRow(r, seg.seq, rec.dataOff));
          this.adopted++;
        }
      }
      pos = rec.end;
    }
  }

  /** Moves shard files of the previous layout (`shards/<xx>/<cid>.<i>`) into the log. */
  private migrateLegacy(dir: string): void {
    const legacy = join(dir, 'shards');
    this.db.exec('DROP TABLE IF EXISTS shards');
    rmSync(join(dir, 'tmp'), { recursive: true, force: true });
    if (!existsSync(legacy)) return;
    for (const sub of readdirSync(legacy)) {
      for (const f of readdirSync(join(legacy, sub))) {
        const path = join(legacy, sub, f);
        const parsed = decodeLegacyShardFile(readFileSync(path));
        const rec = parsed?.record;
        if (
          parsed !== undefined &&
          rec !== undefined &&
          `${rec.block}.${rec.index}` === f &&
          parsed.data.length === rec.shardBytes &&
          toHex(sha256(parsed.data)) === rec.sha256 &&
          this.stat(rec.block, rec.index) === undefined
        ) {
          const head = encodeRecordHead(rec);
          const seg = this.active;
          const n = writevSync(seg.fd, [head, parsed.data], seg.size);
          assert(n === head.length + parsed.data.length, 'whole legacy record written');
          if (this.durable) fdatasyncSync(seg.fd);
          this.q.insert.run(toRow(rec, seg.seq, seg.size + head.length));
          seg.size += n;
          this.q.setMark.run(seg.seq, seg.size);
          this.count++;
          this.bytes += rec.shardBytes;
          seg.live += n;
          this.adopted++;
        } else {
          this.recovered++;
        }
        unlinkSync(path);
      }
    }
    rmSync(legacy, { recursive: true, force: true });
    if (this.durable) syncDirSync(dir);
  }
}

function diskFailure(
  message: string,
  cause: unknown,
  details: Record<string, unknown>,
): StoreError {
  return new StoreError(
    StoreErrorCode.DiskFailure,
    cause instanceof Error ? `${message}: ${cause.message}` : message,
    { cause, details },
  );
}

function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads `into.length` bytes at `pos` (fewer only at end of file). */
function readFull(fd: number, into: Uint8Array, pos: number): number {
  let n = 0;
  while (n < into.length) {
    const r = readSync(fd, into, n, into.length - n, pos + n);
    if (r === 0) break;
    n += r;
  }
  return n;
}

function headerJson(r: ShardRecord): string {
  // Fixed key order so the header is a function of the record.
  return JSON.stringify({
    block: r.block,
    index: r.index,
    k: r.k,
    m: r.m,
    blockBytes: r.blockBytes,
    profile: r.profile,
    shardBytes: r.shardBytes,
    sha256: r.sha256,
  });
}

function framed(json: string): Uint8Array {
  const body = Buffer.from(json, 'utf8');
  assert(body.length <= RECORD_HEADER_BYTES_MAX, 'record header within bounds');
  const out = Buffer.allocUnsafe(RECORD_PREFIX_BYTES + body.length);
  out.writeUInt32BE(RECORD_MAGIC, 0);
  out.writeUInt32BE(body.length, 4);
  body.copy(out, RECORD_PREFIX_BYTES);
  return out;
}

/** Bytes of a shard's whole record in the log (header and data). */
function recordBytes(r: ShardRecord): number {
  return RECORD_PREFIX_BYTES + Buffer.byteLength(headerJson(r)) + r.shardBytes;
}

/**
 * The bytes a shard record starts with: magic "GSL1", u32 big-endian header length, the JSON
 * header (the shard's record, checksum included); the shard bytes follow.
 */
function encodeRecordHead(r: ShardRecord): Uint8Array {
  return framed(headerJson(r));
}

/** A tombstone record: the shard was deleted (or quarantined). */
function encodeTombstone(block: string, index: number): Uint8Array {
  return framed(JSON.stringify({ tombstone: true, block, index }));
}

/** Reads and validates the record at `pos`; undefined when it is not whole and valid. */
function readRecord(fd: number, pos: number, size: number): LogRecord | undefined {
  if (pos + RECORD_PREFIX_BYTES > size) return undefined;
  const prefix = Buffer.allocUnsafe(RECORD_PREFIX_BYTES);
  if (readFull(fd, prefix, pos) !== RECORD_PREFIX_BYTES) return undefined;
  if (prefix.readUInt32BE(0) !== RECORD_MAGIC) return undefined;
  const headBytes = prefix.readUInt32BE(4);
  const dataOff = pos + RECORD_PREFIX_BYTES + headBytes;
  if (headBytes > RECORD_HEADER_BYTES_MAX || dataOff > size) return undefined;
  const headBuf = Buffer.allocUnsafe(headBytes);
  if (readFull(fd, headBuf, pos + RECORD_PREFIX_BYTES) !== headBytes) return undefined;
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(headBuf.toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (
    h === null ||
    typeof h !== 'object' ||
    typeof h.block !== 'string' ||
    !Number.isInteger(h.index)
  )
    return undefined;
  if (h.tombstone === true)
    return { kind: 'tombstone', block: h.block, index: h.index as number, end: dataOff };
  const rec = h as unknown as ShardRecord;
  if (
    typeof rec.sha256 !== 'string' ||
    typeof rec.profile !== 'string' ||
    !Number.isInteger(rec.k) ||
    !Number.isInteger(rec.m) ||
    !Number.isInteger(rec.blockBytes) ||
    !Number.isInteger(rec.shardBytes) ||
    rec.shardBytes < 1 ||
    rec.shardBytes > SHARD_BYTES_MAX ||
    dataOff + rec.shardBytes > size
  )
    return undefined;
  const data = Buffer.allocUnsafe(rec.shardBytes);
  if (readFull(fd, data, dataOff) !== rec.shardBytes || toHex(sha256(data)) !== rec.sha256)
    return undefined;
  return { kind: 'shard', record: rec, dataOff, end: dataOff + rec.shardBytes };
}

/** Parses a shard file of the previous one-file-per-shard layout ("GSH1"). */
function decodeLegacyShardFile(
  bytes: Uint8Array,
): { record: ShardRecord; data: Uint8Array } | undefined {
  const LEGACY_MAGIC = 0x47534831;
  if (bytes.length < RECORD_PREFIX_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== LEGACY_MAGIC) return undefined;
  const headBytes = view.getUint32(4);
  if (headBytes > RECORD_HEADER_BYTES_MAX || RECORD_PREFIX_BYTES + headBytes > bytes.length)
    return undefined;
  try {
    const h = JSON.parse(
      new TextDecoder().decode(
        bytes.subarray(RECORD_PREFIX_BYTES, RECORD_PREFIX_BYTES + headBytes),
      ),
    ) as ShardRecord;
    if (
      typeof h.block !== 'string' ||
      typeof h.sha256 !== 'string' ||
      !Number.isInteger(h.index) ||
      !Number.isInteger(h.shardBytes)
    )
      return undefined;
    return { record: h, data: bytes.subarray(RECORD_PREFIX_BYTES + headBytes) };
  } catch {
    return undefined;
  }
}

function toRow(r: ShardRecord, seg: number, off: number): Row {
  return {
    block: r.block,
    idx: r.index,
    k: r.k,
    m: r.m,
    block_bytes: r.blockBytes,
    shard_bytes: r.shardBytes,
    sha256: r.sha256,
    profile: r.profile,
    seg,
    off,
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
