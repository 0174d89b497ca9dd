/**
 * Bundle stores. An accepted bundle is in the store before the agent says so: the file store
 * writes to a temporary file, fsyncs it, renames it into place and fsyncs the directory, so a
 * crash (kill -9, power loss) at any instant leaves either no file or the whole bundle, and a
 * restarted agent resumes every bundle it had accepted.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { DtnError, DtnErrorCode } from './errors.ts';

/** One stored bundle with the local facts the agent needs after a restart. */
export interface StoredBundle {
  readonly id: string;
  readonly bytes: Uint8Array;
  /** Local receive (or creation) time, Unix ms: the start of this node's dwell time. */
  readonly receivedAtMs: number;
}

/** The persistence contract of a bundle agent. */
export interface BundleStore {
  put(record: StoredBundle): void;
  delete(id: string): void;
  /** Every stored bundle (used once, at start). */
  load(): StoredBundle[];
  readonly persistent: boolean;
}

/** A store in memory only (simulations and tests). */
export class MemoryBundleStore implements BundleStore {
  readonly persistent = false;
  private readonly map = new Map<string, StoredBundle>();

  put(record: StoredBundle): void {
    this.map.set(record.id, record);
  }

  delete(id: string): void {
    this.map.delete(id);
  }

  load(): StoredBundle[] {
    return [...this.map.values()];
  }
}

const HEADER_BYTES = 8 + 2;
const FILE_SUFFIX = '.bundle';

/** A directory of one file per bundle, crash-safe by write-fsync-rename-fsync. */
export class FileBundleStore implements BundleStore {
  readonly persistent = true;

  constructor(readonly dir: string) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (cause) {
      throw new DtnError(DtnErrorCode.Store, `cannot create bundle store ${dir}`, { cause });
    }
  }

  private fileOf(id: string): string {
    return join(
      this.dir,
      `${createHash('sha256').update(id).digest('hex').slice(0, 32)}${FILE_SUFFIX}`,
    );
  }

  put(record: StoredBundle): void {
    const idBytes = Buffer.from(record.id, 'utf8');
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeDoubleBE(record.receivedAtMs, 0);
    header.writeUInt16BE(idBytes.length, 8);
    const final = this.fileOf(record.id);
    const tmp = `${final}.tmp`;
    try {
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, header);
        writeSync(fd, idBytes);
        writeSync(fd, record.bytes);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, final);
      this.syncDir();
    } catch (cause) {
      throw new DtnError(
        DtnErrorCode.Store,
        `cannot store bundle ${record.id}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
        { cause },
      );
    }
  }

  private syncDir(): void {
    const fd = openSync(this.dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  delete(id: string): void {
    rmSync(this.fileOf(id), { force: true });
  }

  load(): StoredBundle[] {
    const out: StoredBundle[] = [];
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      if (name.endsWith('.tmp')) {
        // A write that never reached its rename: the bundle was never accepted.
        rmSync(path, { force: true });
        continue;
      }
      if (!name.endsWith(FILE_SUFFIX)) continue;
      const buf = readFileSync(path);
      if (buf.length < HEADER_BYTES) continue;
      const receivedAtMs = buf.readDoubleBE(0);
      const idLen = buf.readUInt16BE(8);
      if (HEADER_BYTES + idLen > buf.length) continue;
      const id = buf.subarray(HEADER_BYTES, HEADER_BYTES + idLen).toString('utf8');
      out.push({ id, receivedAtMs, bytes: new Uint8Array(buf.subarray(HEADER_BYTES + idLen)) });
    }
    return out;
  }
}
