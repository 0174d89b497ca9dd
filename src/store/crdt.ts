/**
 * CRDT documents for state many replicas edit (twin state, shared configuration): Automerge 3
 * documents, synced with Automerge's own sync protocol (bloom-filter based "have/need"
 * exchange, see the Automerge sync protocol docs), persisted atomically, and snapshotted into
 * the store by CID.
 *
 * {@link CrdtReplica} knows nothing about networks: `generateSyncMessage(peer)` and
 * `receiveSyncMessage(peer, bytes)` carry opaque bytes, so the DTN layer can move them as
 * bundle payloads over links with hours of delay. {@link CrdtSyncEndpoint} runs the same
 * exchange over the core transport for replicas that share a fabric.
 *
 * Why Automerge rather than Yjs: its sync protocol is peer-to-peer and stateless between
 * sessions (a lost message is recovered by resetting the per-peer state), histories are
 * hash-linked (heads are content hashes, which fit a CID-addressed store), and the save format
 * is compact and self-verifying.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import * as Automerge from '@automerge/automerge';
import type { Subscription, Transport } from '../core/index.ts';
import { StoreError, StoreErrorCode } from './errors.ts';
import { CRDT_DOCUMENT_BYTES_MAX, CRDT_SYNC_MESSAGE_BYTES_MAX } from './limits.ts';
import type { DistributedStore, PutOptions } from './store.ts';

/** A document's root object type. */
export type CrdtRoot = Record<string, unknown>;

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Options of a {@link CrdtReplica}. */
export interface CrdtReplicaOptions {
  /** Automerge actor id (hex); random when omitted. */
  readonly actor?: string;
  /** File the document is saved to on every {@link CrdtReplica.persist} (atomically). */
  readonly path?: string;
}

/** One replica of an Automerge document, with one sync state per peer. */
export class CrdtReplica<T extends CrdtRoot = CrdtRoot> {
  private current: Automerge.Doc<T>;
  private readonly peers = new Map<string, Automerge.SyncState>();

  private constructor(
    doc: Automerge.Doc<T>,
    private readonly path: string | undefined,
  ) {
    this.current = doc;
  }

  /** A new, empty document (every replica of one document must share its first change: use
   * {@link fromBytes} of a common initial save, or only ever add keys). */
  static create<T extends CrdtRoot>(initial: T, options: CrdtReplicaOptions = {}): CrdtReplica<T> {
    return new CrdtReplica(
      Automerge.from<T>(
        initial,
        options.actor === undefined ? undefined : { actor: options.actor },
      ),
      options.path,
    );
  }

  /** A replica loaded from a saved document. @throws {StoreError} `STORE_CRDT_INVALID` */
  static fromBytes<T extends CrdtRoot>(
    bytes: Uint8Array,
    options: CrdtReplicaOptions = {},
  ): CrdtReplica<T> {
    if (bytes.length > CRDT_DOCUMENT_BYTES_MAX)
      throw new StoreError(
        StoreErrorCode.CrdtInvalid,
        `document of ${bytes.length} bytes exceeds CRDT_DOCUMENT_BYTES_MAX`,
      );
    try {
      return new CrdtReplica(
        Automerge.load<T>(
          bytes,
          options.actor === undefined ? undefined : { actor: options.actor },
        ),
        options.path,
      );
    } catch (e) {
      throw new StoreError(StoreErrorCode.CrdtInvalid, 'bytes are not an Automerge document', {
        cause: e,
      });
    }
  }

  /** Opens a replica persisted at `path`, or creates it from `initial`. */
  static open<T extends CrdtRoot>(
    path: string,
    initial: T,
    options: Omit<CrdtReplicaOptions, 'path'> = {},
  ): CrdtReplica<T> {
    let bytes: Uint8Array | undefined;
    try {
      bytes = readFileSync(path);
    } catch {
      bytes = undefined;
    }
    const r =
      bytes === undefined
        ? CrdtReplica.create(initial, { ...options, path })
        : CrdtReplica.fromBytes<T>(bytes, { ...options, path });
    return r;
  }

  /** The current document (immutable snapshot). */
  get doc(): Automerge.Doc<T> {
    return this.current;
  }

  /** The document as plain JSON. */
  toJSON(): T {
    return Automerge.toJS(this.current) as T;
  }

  /** Content hashes of the current heads. */
  heads(): string[] {
    return Automerge.getHeads(this.current);
  }

  /** Applies a local change. */
  change(fn: (d: T) => void, message?: string): void {
    this.current =
      message === undefined
        ? Automerge.change(this.current, fn)
        : Automerge.change(this.current, message, fn);
  }

  /**
   * The next sync message for `peer`, or null when the peer is known to be up to date. The
   * bytes are opaque; deliver them to the peer's {@link receiveSyncMessage} in any way.
   */
  generateSyncMessage(peer: string): Uint8Array | null {
    const [state, msg] = Automerge.generateSyncMessage(this.current, this.state(peer));
    this.peers.set(peer, state);
    return msg;
  }

  /** Applies a sync message from `peer`. @throws {StoreError} `STORE_CRDT_INVALID` on garbage */
  receiveSyncMessage(peer: string, bytes: Uint8Array): void {
    if (bytes.length > CRDT_SYNC_MESSAGE_BYTES_MAX)
      throw new StoreError(
        StoreErrorCode.CrdtInvalid,
        `sync message of ${bytes.length} bytes exceeds CRDT_SYNC_MESSAGE_BYTES_MAX`,
      );
    try {
      const [doc, state] = Automerge.receiveSyncMessage(this.current, this.state(peer), bytes);
      this.current = doc;
      this.peers.set(peer, state);
    } catch (e) {
      throw new StoreError(StoreErrorCode.CrdtInvalid, `bad sync message from ${peer}`, {
        cause: e,
        details: { peer },
      });
    }
  }

  /**
   * Forgets what is in flight to `peer` (keeping what both sides are known to share). Call it
   * when a link comes back after messages may have been lost: the sync protocol otherwise waits
   * for replies to messages that will never arrive.
   */
  resetPeer(peer: string): void {
    const s = this.peers.get(peer);
    if (s !== undefined)
      this.peers.set(peer, Automerge.decodeSyncState(Automerge.encodeSyncState(s)));
  }

  /** The whole document in Automerge's compact save format. */
  save(): Uint8Array {
    return Automerge.save(this.current);
  }

  /** Writes the document to its path atomically (temp, fsync, rename). No-op without a path. */
  persist(): void {
    if (this.path === undefined) return;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const data = this.save();
    const fd = openSync(tmp, 'w');
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }

  /** Stores a snapshot of the document in the store; returns its CID. */
  async snapshot(store: DistributedStore, options: PutOptions = {}): Promise<string> {
    return (await store.put(this.save(), options)).cid;
  }

  /** Loads a replica from a snapshot CID. */
  static async fromSnapshot<T extends CrdtRoot>(
    store: DistributedStore,
    cid: string,
    options: CrdtReplicaOptions = {},
  ): Promise<CrdtReplica<T>> {
    return CrdtReplica.fromBytes<T>(await store.getBytes(cid), options);
  }

  /** Merges another replica's full state (for tests and offline imports). */
  merge(other: CrdtReplica<T>): void {
    this.current = Automerge.merge(this.current, Automerge.clone(other.current));
  }

  private state(peer: string): Automerge.SyncState {
    let s = this.peers.get(peer);
    if (s === undefined) {
      s = Automerge.initSyncState();
      this.peers.set(peer, s);
    }
    return s;
  }
}

/** Subject a replica of a document listens on. */
export function crdtSubject(docId: string, replica: string): string {
  return `genesis.crdt.${docId}.${replica}`;
}

/**
 * Syncs a {@link CrdtReplica} with named peers over the core transport. Each message is
 * published to the peer's subject with a `from` header; on receipt the endpoint answers with its
 * own next message, so one {@link syncAll} runs the protocol to quiescence.
 */
export class CrdtSyncEndpoint<T extends CrdtRoot = CrdtRoot> {
  private readonly sub: Subscription;
  /** Messages received that failed to apply. */
  rejected = 0;

  constructor(
    private readonly transport: Transport,
    readonly docId: string,
    readonly self: string,
    readonly replica: CrdtReplica<T>,
    readonly peerNames: readonly string[],
  ) {
    for (const n of [docId, self, ...peerNames]) {
      if (!NAME_RE.test(n.replaceAll('.', '-')))
        throw new StoreError(StoreErrorCode.CrdtInvalid, `bad CRDT name "${n}"`);
    }
    this.sub = transport.subscribe(crdtSubject(docId, self), (msg) => {
      const from = msg.headers?.from;
      if (from === undefined || !peerNames.includes(from)) {
        this.rejected++;
        return;
      }
      try {
        replica.receiveSyncMessage(from, msg.data);
      } catch {
        this.rejected++;
        return;
      }
      this.sendTo(from);
    });
  }

  /** Sends this replica's next message to every peer (after a local change). */
  syncAll(): void {
    for (const p of this.peerNames) this.sendTo(p);
  }

  /** Stops listening. */
  close(): void {
    this.sub.unsubscribe();
  }

  private sendTo(peer: string): void {
    const m = this.replica.generateSyncMessage(peer);
    if (m !== null)
      this.transport.publish(crdtSubject(this.docId, peer), m, { headers: { from: this.self } });
  }
}
