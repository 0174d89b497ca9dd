/**
 * The store client's catalog: pins (with the object's profile and size) and the tiles marked
 * out of the placement member set. It is small coordinator state, kept in SQLite next to the
 * coordinator node (or in memory for tests); the block data itself is found from the CID by
 * placement, not from here.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError, StoreErrorCode } from './errors.ts';

/** A pinned object. */
export interface PinRecord {
  readonly cid: string;
  readonly profile: string;
  readonly size: number;
  readonly pinnedAtMs: number;
}

/** Coordinator state of a store client. */
export interface StoreCatalog {
  pins(): PinRecord[];
  getPin(cid: string): PinRecord | undefined;
  addPin(pin: PinRecord): void;
  removePin(cid: string): boolean;
  /** Tiles marked out of the member set (down long enough, or removed by the operator). */
  outTiles(): string[];
  setOutTiles(tiles: readonly string[]): void;
  close(): void;
}

/** A catalog in memory. */
export class MemoryCatalog implements StoreCatalog {
  private readonly pinMap = new Map<string, PinRecord>();
  private out: string[] = [];
  pins(): PinRecord[] {
    return [...this.pinMap.values()];
  }
  getPin(cid: string): PinRecord | undefined {
    return this.pinMap.get(cid);
  }
  addPin(pin: PinRecord): void {
    this.pinMap.set(pin.cid, pin);
  }
  removePin(cid: string): boolean {
    return this.pinMap.delete(cid);
  }
  outTiles(): string[] {
    return [...this.out];
  }
  setOutTiles(tiles: readonly string[]): void {
    this.out = [...tiles];
  }
  close(): void {}
}

/** A catalog in a SQLite file (WAL, synchronous=FULL). */
export class SqliteCatalog implements StoreCatalog {
  private readonly db: Database.Database;
  private getPinStmt: Database.Statement | undefined;

  /** @throws {StoreError} `STORE_DISK_FAILURE` */
  constructor(readonly path: string) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.exec(`CREATE TABLE IF NOT EXISTS pins (cid TEXT PRIMARY KEY, profile TEXT NOT NULL, size INTEGER NOT NULL, pinned_at_ms INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS out_tiles (tile TEXT PRIMARY KEY);`);
    } catch (e) {
      throw new StoreError(
        StoreErrorCode.DiskFailure,
        `cannot open store catalog ${path}: ${(e as Error).message}`,
        { cause: e, details: { path } },
      );
    }
  }

  pins(): PinRecord[] {
    return (
      this.db.prepare('SELECT * FROM pins ORDER BY cid').all() as {
        cid: string;
        profile: string;
        size: number;
        pinned_at_ms: number;
      }[]
    ).map((r) => ({
      cid: r.cid,
      profile: r.profile,
      size: r.size,
      pinnedAtMs: r.pinned_at_ms,
    }));
  }

  getPin(cid: string): PinRecord | undefined {
    // Every block read asks (candidate profiles): keep the statement prepared.
    this.getPinStmt ??= this.db.prepare('SELECT * FROM pins WHERE cid = ?');
    const r = this.getPinStmt.get(cid) as
      | { cid: string; profile: string; size: number; pinned_at_ms: number }
      | undefined;
    return r === undefined
      ? undefined
      : { cid: r.cid, profile: r.profile, size: r.size, pinnedAtMs: r.pinned_at_ms };
  }

  addPin(pin: PinRecord): void {
    this.db
      .prepare('INSERT OR REPLACE INTO pins VALUES (?, ?, ?, ?)')
      .run(pin.cid, pin.profile, pin.size, pin.pinnedAtMs);
  }

  removePin(cid: string): boolean {
    return this.db.prepare('DELETE FROM pins WHERE cid = ?').run(cid).changes > 0;
  }

  outTiles(): string[] {
    return (
      this.db.prepare('SELECT tile FROM out_tiles ORDER BY tile').all() as { tile: string }[]
    ).map((r) => r.tile);
  }

  setOutTiles(tiles: readonly string[]): void {
    const tx = this.db.transaction((list: readonly string[]) => {
      this.db.prepare('DELETE FROM out_tiles').run();
      const ins = this.db.prepare('INSERT INTO out_tiles VALUES (?)');
      for (const t of list) ins.run(t);
    });
    tx(tiles);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
