/**
 * A durable, append-only RFC 9162 log in SQLite (better-sqlite3).
 *
 * Schema: `entries(idx, leaf_hash, data)`, `nodes(level, idx, hash)` holding every complete
 * subtree of level ≥ 1, `tree_heads(size, root, created_ms, note)` with one row per committed
 * batch, and `meta(key, value)`. One batch is one SQLite transaction that writes the entries,
 * the subtrees they complete and the new tree head together, so the database only ever holds
 * whole batches: a crash can lose an unacknowledged batch but never leaves a partial one.
 *
 * Durability point: `appendBatch` returns (and {@link BatchingAppender} resolves) only after the
 * COMMIT of that batch. The database runs in WAL mode with `synchronous=FULL`, so COMMIT fsyncs
 * the WAL: an acknowledged entry survives kill -9 *and* power loss. `synchronous=NORMAL` (an
 * option) survives kill -9 but may lose the last commits on power loss (SQLite docs, "WAL mode
 * ... synchronous=NORMAL"); batching makes FULL's one fsync per batch cheap, so FULL is default.
 *
 * Integrity on open: the tree head stored by the last commit must equal the root recomputed
 * from the stored subtrees, the entry count must equal its size, and the newest entries must
 * hash to their stored leaf hashes; `verify('full')` rehashes every entry and every node.
 */

import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { assert, type Clock, SystemClock } from '../core/index.ts';
import { bytesEqual, toHex } from './bytes.ts';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';
import {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  MERKLE_HASH_BYTES,
  type MerkleHashSource,
  nodeHash,
  rangeHash,
} from './merkle.ts';

/** Largest single entry. */
export const LOG_ENTRY_BYTES_MAX = 1024 * 1024;
/** Most entries in one batch (one transaction). */
export const LOG_BATCH_ENTRIES_MAX = 65_536;
/** Most bytes in one batch. */
export const LOG_BATCH_BYTES_MAX = 64 * 1024 * 1024;
/** Newest entries rehashed by the quick integrity check on open. */
export const LOG_OPEN_RECHECK_ENTRIES = 256;
/** Schema version stored in `meta`. */
export const LOG_SCHEMA_VERSION = '1';
/** Most levels of a tree (2^63 leaves). */
const LEVELS_MAX = 64;

/** How COMMIT reaches the disk; see the module comment. */
export type LogSynchronous = 'full' | 'normal';

/** Options of {@link DurableLog.open}. */
export interface DurableLogOptions {
  /** Create the database if it does not exist (default false: a missing log is an error). */
  readonly create?: boolean;
  /** The log's origin line for checkpoints (required when creating). */
  readonly origin?: string;
  readonly synchronous?: LogSynchronous;
  readonly clock?: Clock;
  /** Open read-only (for verifiers and `log verify`). */
  readonly readonly?: boolean;
}

/** A tree head recorded by a commit. */
export interface TreeHead {
  readonly size: number;
  readonly root: Uint8Array;
  readonly createdMs: number;
}

/** Result of one appended batch. */
export interface AppendResult {
  readonly firstIndex: number;
  readonly size: number;
  readonly root: Uint8Array;
}

function corrupt(path: string, what: string, cause?: unknown): TrustError {
  return new TrustError(TRUST_ERROR_CODES.logCorrupt, `log ${path}: ${what}`, {
    cause,
    details: { path },
  });
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS entries(idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, data BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS nodes(level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY(level, idx)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_heads(size INTEGER PRIMARY KEY, root BLOB NOT NULL, created_ms INTEGER NOT NULL, note TEXT) STRICT;
`;

type Stmt = Database.Statement;

/** The durable log. Methods are synchronous: each call is one SQLite operation. */
export class DurableLog implements MerkleHashSource {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly st: Record<
    'entry' | 'leaf' | 'node' | 'insEntry' | 'insNode' | 'insHead' | 'head' | 'headAt' | 'setNote',
    Stmt
  >;
  /** frontier[level] = hash of the last complete subtree at that level. */
  private frontier: (Uint8Array | undefined)[] = [];
  private treeSize = 0;
  private currentRoot: Uint8Array = EMPTY_ROOT;
  /** The log's origin line. */
  readonly origin: string;

  private constructor(
    readonly path: string,
    db: Database.Database,
    clock: Clock,
  ) {
    this.db = db;
    this.clock = clock;
    this.st = {
      entry: db.prepare('SELECT data FROM entries WHERE idx = ?').pluck(),
      leaf: db.prepare('SELECT leaf_hash FROM entries WHERE idx = ?').pluck(),
      node: db.prepare('SELECT hash FROM nodes WHERE level = ? AND idx = ?').pluck(),
      insEntry: db.prepare('INSERT INTO entries(idx, leaf_hash, data) VALUES (?, ?, ?)'),
      insNode: db.prepare('INSERT INTO nodes(level, idx, hash) VALUES (?, ?, ?)'),
      insHead: db.prepare('INSERT INTO tree_heads(size, root, created_ms) VALUES (?, ?, ?)'),
      head: db.prepare('SELECT size, root, created_ms FROM tree_heads ORDER BY size DESC LIMIT 1'),
      headAt: db.prepare('SELECT size, root, created_ms, note FROM tree_heads WHERE size = ?'),
      setNote: db.prepare('UPDATE tree_heads SET note = ? WHERE size = ?'),
    };
    const origin = db.prepare("SELECT value FROM meta WHERE key = 'origin'").pluck().get();
    if (typeof origin !== 'string') throw corrupt(path, 'no origin in meta');
    this.origin = origin;
  }

  /**
   * Opens (or with `create`, creates) a log and checks its integrity.
   * @throws {TrustError} TRUST_NOT_FOUND, TRUST_EXISTS, TRUST_LOG_CORRUPT.
   */
  static open(path: string, options: DurableLogOptions = {}): DurableLog {
    const exists = existsSync(path);
    if (!exists && options.create !== true)
      throw new TrustError(
        TRUST_ERROR_CODES.notFound,
        `no log at ${path} (create one with genesis log init)`,
      );
    let db: Database.Database | undefined;
    try {
      db = new Database(path, {
        readonly: options.readonly === true,
        fileMustExist: !options.create,
      });
      if (options.readonly !== true) {
        db.pragma('journal_mode = WAL');
        db.pragma(`synchronous = ${(options.synchronous ?? 'full').toUpperCase()}`);
      }
      db.pragma('foreign_keys = ON');
      if (!exists) {
        if (options.origin === undefined)
          throw new TrustError(TRUST_ERROR_CODES.keyFormat, 'creating a log needs an origin');
        const d = db;
        d.transaction(() => {
          d.exec(SCHEMA);
          d.prepare('INSERT INTO meta(key, value) VALUES (?, ?)').run('origin', options.origin);
          d.prepare('INSERT INTO meta(key, value) VALUES (?, ?)').run('schema', LOG_SCHEMA_VERSION);
        })();
      }
      const log = new DurableLog(path, db, options.clock ?? new SystemClock());
      log.load();
      return log;
    } catch (e) {
      db?.close();
      if (e instanceof TrustError) throw e;
      throw corrupt(path, `cannot be read as a log database (${(e as Error).message})`, e);
    }
  }

  /** Loads the last tree head and the frontier, and runs the quick integrity check. */
  private load(): void {
    const schema = this.db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get();
    if (schema !== LOG_SCHEMA_VERSION)
      throw corrupt(this.path, `schema ${String(schema)} is not ${LOG_SCHEMA_VERSION}`);
    const head = this.st.head.get() as
      | { size: number; root: Uint8Array; created_ms: number }
      | undefined;
    const size = head?.size ?? 0;
    const count = this.db.prepare('SELECT count(*) FROM entries').pluck().get() as number;
    const maxIdx = this.db.prepare('SELECT max(idx) FROM entries').pluck().get() as number | null;
    if (count !== size || (maxIdx ?? -1) !== size - 1) {
      throw corrupt(
        this.path,
        `tree head says ${size} entries but ${count} are stored (max index ${maxIdx})`,
      );
    }
    this.treeSize = size;
    this.frontier = [];
    for (let level = 0; level < LEVELS_MAX && 2 ** level <= size; level++) {
      const count2 = Math.floor(size / 2 ** level);
      this.frontier[level] = this.readPerfect(level, count2 - 1);
    }
    const root = this.computeRoot(size);
    if (head !== undefined && !bytesEqual(root, head.root)) {
      throw corrupt(
        this.path,
        `root recomputed from stored subtrees ${toHex(root)} differs from the committed tree head ${toHex(head.root)}`,
      );
    }
    this.currentRoot = root;
    for (let i = Math.max(0, size - LOG_OPEN_RECHECK_ENTRIES); i < size; i++) this.checkEntry(i);
  }

  private checkEntry(i: number): void {
    const data = this.st.entry.get(i) as Uint8Array | undefined;
    const stored = this.st.leaf.get(i) as Uint8Array | undefined;
    if (data === undefined || stored === undefined || !bytesEqual(leafHash(data), stored)) {
      throw corrupt(this.path, `entry ${i} does not hash to its stored leaf hash`);
    }
  }

  private readPerfect(level: number, index: number): Uint8Array {
    const h = (level === 0 ? this.st.leaf.get(index) : this.st.node.get(level, index)) as
      | Uint8Array
      | undefined;
    if (h === undefined || h.length !== MERKLE_HASH_BYTES)
      throw corrupt(this.path, `missing subtree hash level ${level} index ${index}`);
    return new Uint8Array(h);
  }

  /** {@link MerkleHashSource}: the complete subtree at (level, index). */
  perfectHash(level: number, index: number): Uint8Array {
    return this.readPerfect(level, index);
  }

  private computeRoot(size: number): Uint8Array {
    if (size === this.treeSize) return rootFromFrontier(this.frontier, size);
    return size === 0 ? EMPTY_ROOT : rangeHash(this, 0, size);
  }

  /** Number of entries. */
  get size(): number {
    return this.treeSize;
  }

  /** Root of the current tree. */
  get root(): Uint8Array {
    return this.currentRoot;
  }

  /** Root of the tree of the first `size` entries (any size up to the current one). */
  rootAt(size: number): Uint8Array {
    this.checkSize(size);
    return size === this.treeSize ? this.currentRoot : this.computeRoot(size);
  }

  private checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.treeSize) {
      throw new TrustError(
        TRUST_ERROR_CODES.outOfRange,
        `tree size ${size} is outside [0, ${this.treeSize}]`,
      );
    }
  }

  /** Entry bytes at `index`. */
  entry(index: number): Uint8Array {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.treeSize) {
      throw new TrustError(
        TRUST_ERROR_CODES.outOfRange,
        `entry ${index} is outside [0, ${this.treeSize})`,
      );
    }
    const d = this.st.entry.get(index) as Uint8Array | undefined;
    if (d === undefined) throw corrupt(this.path, `entry ${index} missing`);
    return new Uint8Array(d);
  }

  /** Leaf hash of entry `index`. */
  leafHashAt(index: number): Uint8Array {
    this.entry(index);
    return this.readPerfect(0, index);
  }

  /** Index of the first entry whose leaf hash is `hash`, or undefined. */
  findLeaf(hash: Uint8Array): number | undefined {
    const r = this.db
      .prepare('SELECT idx FROM entries WHERE leaf_hash = ? LIMIT 1')
      .pluck()
      .get(hash) as number | undefined;
    return r;
  }

  /** RFC 9162 inclusion proof of `index` in the tree of size `size` (default current). */
  inclusionProof(index: number, size = this.treeSize): Uint8Array[] {
    this.checkSize(size);
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
      throw new TrustError(TRUST_ERROR_CODES.outOfRange, `index ${index} is outside [0, ${size})`);
    }
    return inclusionProof(index, size, this);
  }

  /** RFC 9162 consistency proof from `size1` to `size2` (default current). */
  consistencyProof(size1: number, size2 = this.treeSize): Uint8Array[] {
    this.checkSize(size2);
    if (!Number.isSafeInteger(size1) || size1 < 1 || size1 > size2) {
      throw new TrustError(TRUST_ERROR_CODES.outOfRange, `size1 ${size1} is outside [1, ${size2}]`);
    }
    return consistencyProof(size1, size2, this);
  }

  /**
   * Appends entries as one batch (one transaction). Returns after COMMIT: the durability point.
   * On any error nothing of the batch is stored and the in-memory state is unchanged.
   * @throws {TrustError} TRUST_TOO_LARGE for an oversized entry or batch.
   */
  appendBatch(entries: readonly Uint8Array[]): AppendResult {
    if (entries.length === 0)
      return { firstIndex: this.treeSize, size: this.treeSize, root: this.currentRoot };
    if (entries.length > LOG_BATCH_ENTRIES_MAX)
      throw new TrustError(
        TRUST_ERROR_CODES.tooLarge,
        `batch of ${entries.length} entries, max ${LOG_BATCH_ENTRIES_MAX}`,
      );
    let bytes = 0;
    for (const e of entries) {
      if (!(e instanceof Uint8Array))
        throw new TrustError(TRUST_ERROR_CODES.keyFormat, 'log entries must be byte arrays');
      if (e.length > LOG_ENTRY_BYTES_MAX)
        throw new TrustError(
          TRUST_ERROR_CODES.tooLarge,
          `entry of ${e.length} bytes, max ${LOG_ENTRY_BYTES_MAX}`,
        );
      bytes += e.length;
    }
    if (bytes > LOG_BATCH_BYTES_MAX)
      throw new TrustError(
        TRUST_ERROR_CODES.tooLarge,
        `batch of ${bytes} bytes, max ${LOG_BATCH_BYTES_MAX}`,
      );
    const frontier = [...this.frontier];
    const firstIndex = this.treeSize;
    let size = firstIndex;
    const nowMs = this.clock.now();
    let root: Uint8Array = this.currentRoot;
    this.db.transaction(() => {
      for (const e of entries) {
        const lh = leafHash(e);
        this.st.insEntry.run(size, lh, e);
        appendToFrontier(frontier, size, lh, (level, index, hash) =>
          this.st.insNode.run(level, index, hash),
        );
        size++;
      }
      root = rootFromFrontier(frontier, size);
      this.st.insHead.run(size, root, nowMs);
    })();
    this.frontier = frontier;
    this.treeSize = size;
    this.currentRoot = root;
    return { firstIndex, size, root };
  }

  /** Appends one entry (a batch of one). */
  append(entry: Uint8Array): AppendResult {
    return this.appendBatch([entry]);
  }

  /** The newest tree head. */
  latestTreeHead(): TreeHead {
    const h = this.st.head.get() as
      | { size: number; root: Uint8Array; created_ms: number }
      | undefined;
    if (h === undefined) return { size: 0, root: EMPTY_ROOT, createdMs: 0 };
    return { size: h.size, root: new Uint8Array(h.root), createdMs: h.created_ms };
  }

  /** Stores a signed checkpoint note for the tree head of `size` (which must exist). */
  saveCheckpointNote(size: number, note: string): void {
    const r = this.st.setNote.run(note, size);
    if (r.changes !== 1)
      throw new TrustError(TRUST_ERROR_CODES.outOfRange, `no tree head of size ${size}`);
  }

  /** The newest stored signed checkpoint note, if any. */
  latestCheckpointNote(): { size: number; note: string } | undefined {
    const r = this.db
      .prepare(
        'SELECT size, note FROM tree_heads WHERE note IS NOT NULL ORDER BY size DESC LIMIT 1',
      )
      .get() as { size: number; note: string } | undefined;
    return r;
  }

  /**
   * Full integrity check: SQLite's own `quick_check`, then every entry rehashed, every stored
   * subtree recomputed, and every committed tree head's root recomputed.
   * @throws {TrustError} TRUST_LOG_CORRUPT naming the first mismatch.
   */
  verifyFull(): { size: number; root: Uint8Array; treeHeads: number } {
    try {
      const qc = this.db.pragma('quick_check', { simple: true });
      if (qc !== 'ok') throw corrupt(this.path, `sqlite quick_check: ${String(qc)}`);
      const frontier: (Uint8Array | undefined)[] = [];
      const heads = new Map<number, Uint8Array>();
      for (const h of this.db.prepare('SELECT size, root FROM tree_heads').iterate() as Iterable<{
        size: number;
        root: Uint8Array;
      }>) {
        heads.set(h.size, new Uint8Array(h.root));
      }
      let i = 0;
      for (const row of this.db
        .prepare('SELECT idx, leaf_hash, data FROM entries ORDER BY idx')
        .iterate() as Iterable<{
        idx: number;
        leaf_hash: Uint8Array;
        data: Uint8Array;
      }>) {
        if (row.idx !== i) throw corrupt(this.path, `entry ${i} missing`);
        const lh = leafHash(row.data);
        if (!bytesEqual(lh, row.leaf_hash))
          throw corrupt(this.path, `entry ${i} does not hash to its stored leaf hash`);
        appendToFrontier(frontier, i, lh, (level, index, hash) => {
          if (!bytesEqual(this.readPerfect(level, index), hash))
            throw corrupt(this.path, `subtree level ${level} index ${index} is wrong`);
        });
        i++;
        const want = heads.get(i);
        if (want !== undefined && !bytesEqual(rootFromFrontier(frontier, i), want))
          throw corrupt(this.path, `tree head of size ${i} has a wrong root`);
      }
      if (i !== this.treeSize)
        throw corrupt(this.path, `found ${i} entries, tree head says ${this.treeSize}`);
      return { size: i, root: this.currentRoot, treeHeads: heads.size };
    } catch (e) {
      if (e instanceof TrustError) throw e;
      throw corrupt(this.path, `read failed (${(e as Error).message})`, e);
    }
  }

  /** Closes the database (checkpointing the WAL). */
  close(): void {
    if (this.db.open) this.db.close();
  }
}

/**
 * Adds leaf `index` with hash `lh` to `frontier`, calling `onNode` for every complete subtree of
 * level ≥ 1 it closes. frontier[ℓ] always holds the newest complete subtree at level ℓ, which
 * is the left sibling whenever the new node at ℓ has an odd index.
 */
function appendToFrontier(
  frontier: (Uint8Array | undefined)[],
  index: number,
  lh: Uint8Array,
  onNode: (level: number, index: number, hash: Uint8Array) => void,
): void {
  let level = 0;
  let i = index;
  let h = lh;
  for (;;) {
    if (i % 2 === 0) {
      frontier[level] = h;
      return;
    }
    const left = frontier[level];
    assert(left !== undefined, 'left sibling in frontier');
    frontier[level] = h;
    h = nodeHash(left, h);
    level++;
    i = Math.floor(i / 2);
    onNode(level, i, h);
  }
}

/** Root of a tree of `size` leaves from its frontier (RFC 9162 §2.1.1, right-to-left fold). */
function rootFromFrontier(frontier: readonly (Uint8Array | undefined)[], size: number): Uint8Array {
  if (size === 0) return EMPTY_ROOT;
  let r: Uint8Array | undefined;
  for (let level = 0; 2 ** level <= size; level++) {
    if (Math.floor(size / 2 ** level) % 2 === 1) {
      const node = frontier[level];
      assert(node !== undefined, 'frontier node for a set bit');
      r = r === undefined ? node : nodeHash(node, r);
    }
  }
  assert(r !== undefined, 'non-empty root');
  return r;
}
