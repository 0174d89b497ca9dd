/**
 * The trust layer inside a running fabric (`genesis up`):
 *  - every node has an identity: an Ed25519 key made at start (≈50 µs, native) and a composite
 *    ML-DSA-65 + Ed25519 key made lazily (ML-DSA key generation costs milliseconds; doing it
 *    for every node at boot would slow `genesis up`), both cached as key files in the node's
 *    data dir; each node registers its Ed25519 key with its region's log (key transparency);
 *  - each region runs the durable log, batches registrations (and any other entries published
 *    to it), and every {@link LOG_CHECKPOINT_INTERVAL_MS} signs a checkpoint with its composite
 *    key and asks every hub of the region to witness it over the transport;
 *  - each hub is a witness (cosignature/v1) with its own state.
 * Hubs pin the region's log key on first use (TOFU) and refuse any other key afterwards; a
 * deployment with a provisioned key passes it in `logPublicKey` instead.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  GenesisError,
  type NodeContext,
  type NodeService,
  type Subscription,
  type TimerHandle,
} from '../core/index.ts';
import { bytesEqual, fromBase64Strict, toBase64 } from './bytes.ts';
import { CompositeSigner, DEFAULT_COMPOSITE_ALG } from './composite.ts';
import { isTrustError, TRUST_ERROR_CODES, TrustError } from './errors.ts';
import {
  generateKeyPair,
  type KeyAlgorithm,
  type NamedKeyPair,
  readPrivateKey,
  writeKeyPair,
} from './keyfile.ts';
import { DurableLog } from './log.ts';
import { LogServer, type WitnessClient } from './log-server.ts';
import {
  compositeNoteSigner,
  compositeNoteVerifier,
  cosigner,
  type NoteSignature,
  parseCheckpoint,
  parseNote,
} from './note.ts';
import { FileWitnessState, MemoryWitnessState, Witness } from './witness.ts';

/** How often a region log batches pending entries into one durable append. */
export const LOG_FLUSH_INTERVAL_MS = 200;
/** How often a region log signs and witnesses a checkpoint (when it grew). */
export const LOG_CHECKPOINT_INTERVAL_MS = 2_000;
/** Most entries waiting for the next flush; further ones are refused (back-pressure). */
export const LOG_PENDING_ENTRIES_MAX = 10_000;
/** Timeout of one witness request. */
export const WITNESS_REQUEST_TIMEOUT_MS = 2_000;

/** Subject on which a region's log accepts entries. */
export function logAppendSubject(region: string): string {
  return `genesis.trust.log.${region}.append`;
}
/** Subject on which a hub answers witness requests. */
export function witnessSubject(hub: string): string {
  return `genesis.trust.witness.${hub}`;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function loadKey(
  dir: string | undefined,
  file: string,
  alg: KeyAlgorithm,
): NamedKeyPair | undefined {
  if (dir === undefined) return undefined;
  const path = join(dir, 'trust', `${file}.key`);
  return existsSync(path) ? readPrivateKey(path, alg) : undefined;
}

function persistKey(dir: string | undefined, file: string, kp: NamedKeyPair): void {
  if (dir === undefined) return;
  mkdirSync(join(dir, 'trust'), { recursive: true });
  try {
    writeKeyPair(join(dir, 'trust', file), kp);
  } catch (e) {
    if (!isTrustError(e, TRUST_ERROR_CODES.exists)) throw e;
  }
}

function loadOrCreateKey(
  dir: string | undefined,
  file: string,
  alg: KeyAlgorithm,
  name: string,
): NamedKeyPair {
  if (dir === undefined) return generateKeyPair(alg, name);
  const prefix = join(dir, 'trust', file);
  if (existsSync(`${prefix}.key`)) return readPrivateKey(`${prefix}.key`, alg);
  mkdirSync(join(dir, 'trust'), { recursive: true });
  const kp = generateKeyPair(alg, name);
  writeKeyPair(prefix, kp);
  return kp;
}

/** A node's identity service. */
export class IdentityService implements NodeService {
  readonly name = 'trust-identity';
  private ctx: NodeContext | undefined;
  private ed: NamedKeyPair | undefined;
  private composite: NamedKeyPair | undefined;

  start(ctx: NodeContext): void {
    this.ctx = ctx;
    this.ed = loadKey(ctx.dataDir, 'identity-ed25519', 'Ed25519');
    if (this.ed === undefined) {
      // A fresh key is usable at once; writing it (two fsynced files) happens after boot, so
      // 24 nodes do not pay 48 fsyncs before the fabric is up. A crash before that write only
      // means the node registers a new identity next time.
      const kp = generateKeyPair('Ed25519', ctx.name);
      this.ed = kp;
      ctx.clock.setTimeout(() => persistKey(ctx.dataDir, 'identity-ed25519', kp), 0);
    }
    if (ctx.region !== undefined) {
      const reg = {
        type: 'genesis.identity/v1',
        node: ctx.name,
        level: ctx.level,
        ed25519: toBase64(this.ed.publicKey),
      };
      ctx.transport.publish(logAppendSubject(ctx.region), enc.encode(JSON.stringify(reg)));
    }
  }

  /** The node's Ed25519 public key. */
  get ed25519PublicKey(): Uint8Array | undefined {
    return this.ed?.publicKey;
  }

  /** The node's composite identity, generated (and cached on disk) on first use. */
  compositeIdentity(): NamedKeyPair {
    const ctx = this.ctx;
    if (ctx === undefined) throw new GenesisError('NODE_STATE', 'identity service not started');
    this.composite ??= loadOrCreateKey(ctx.dataDir, 'identity', DEFAULT_COMPOSITE_ALG, ctx.name);
    return this.composite;
  }

  stop(): void {}

  status(): Readonly<Record<string, number | string>> {
    return { composite: this.composite === undefined ? 'lazy' : 'ready' };
  }
}

interface WitnessReply {
  readonly ok: boolean;
  readonly name?: string;
  readonly keyId?: number;
  readonly signature?: string;
  readonly code?: string;
  readonly knownSize?: number;
}

/** A hub's witness service. */
export class WitnessService implements NodeService {
  readonly name = 'trust-witness';
  private sub: Subscription | undefined;
  private witness: Witness | undefined;
  private pinned = new Map<string, Uint8Array>();
  cosigned = 0;

  constructor(private readonly logPublicKey?: Uint8Array) {}

  start(ctx: NodeContext): void {
    const key = loadOrCreateKey(ctx.dataDir, 'witness-ed25519', 'Ed25519', `${ctx.name}.witness`);
    const state =
      ctx.dataDir === undefined
        ? new MemoryWitnessState()
        : new FileWitnessState(join(ctx.dataDir, 'trust', 'witness-state.json'));
    const c = cosigner(`${ctx.name}.witness`, key.secretKey);
    this.sub = ctx.transport.subscribe(witnessSubject(ctx.name), (msg) => {
      let reply: WitnessReply;
      try {
        const req = JSON.parse(dec.decode(msg.data)) as {
          oldSize: number;
          consistency: string[];
          checkpoint: string;
          logKey: string;
        };
        const cp = parseCheckpoint(parseNote(req.checkpoint).text);
        const offered = fromBase64Strict(req.logKey);
        if (offered === undefined) throw new TrustError(TRUST_ERROR_CODES.keyFormat, 'bad log key');
        const pinned = this.logPublicKey ?? this.pinned.get(cp.origin) ?? offered;
        if (!bytesEqual(pinned, offered))
          throw new TrustError(TRUST_ERROR_CODES.badSignature, `log ${cp.origin} changed its key`);
        this.pinned.set(cp.origin, pinned);
        const w = new Witness({
          cosigner: c,
          logs: [
            {
              origin: cp.origin,
              verifiers: [compositeNoteVerifier(cp.origin, DEFAULT_COMPOSITE_ALG, pinned)],
            },
          ],
          state,
          clock: ctx.clock,
        });
        this.witness = w;
        const consistency = req.consistency.map((p) => fromBase64Strict(p) ?? new Uint8Array());
        const sig = w.addCheckpoint({
          oldSize: req.oldSize,
          consistency,
          checkpoint: req.checkpoint,
        });
        this.cosigned++;
        reply = { ok: true, name: sig.name, keyId: sig.keyId, signature: toBase64(sig.signature) };
      } catch (e) {
        reply = {
          ok: false,
          code: isTrustError(e) ? e.code : 'TRUST_NOTE_FORMAT',
          ...(isTrustError(e) && typeof e.details.knownSize === 'number'
            ? { knownSize: e.details.knownSize }
            : {}),
        };
      }
      msg.respond(enc.encode(JSON.stringify(reply)));
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
  }

  status(): Readonly<Record<string, number | string>> {
    return { cosigned: this.cosigned, following: this.witness === undefined ? 0 : 1 };
  }
}

/** A witness reached over the transport. */
function transportWitness(ctx: NodeContext, hub: string, logKey: () => Uint8Array): WitnessClient {
  return {
    name: `${hub}.witness`,
    async addCheckpoint(req) {
      const body = {
        oldSize: req.oldSize,
        consistency: req.consistency.map(toBase64),
        checkpoint: req.checkpoint,
        logKey: toBase64(logKey()),
      };
      const msg = await ctx.transport.request(
        witnessSubject(hub),
        enc.encode(JSON.stringify(body)),
        { timeoutMs: WITNESS_REQUEST_TIMEOUT_MS },
      );
      const r = JSON.parse(dec.decode(msg.data)) as WitnessReply;
      if (!r.ok) {
        const code = (Object.values(TRUST_ERROR_CODES) as string[]).includes(r.code ?? '')
          ? (r.code as TrustError['code'])
          : TRUST_ERROR_CODES.badSignature;
        throw new TrustError(code, `witness ${hub} refused: ${r.code}`, {
          details: r.knownSize === undefined ? {} : { knownSize: r.knownSize },
        });
      }
      const signature = fromBase64Strict(r.signature ?? '');
      if (signature === undefined || r.name === undefined || r.keyId === undefined)
        throw new TrustError(
          TRUST_ERROR_CODES.noteFormat,
          `witness ${hub} sent a malformed cosignature`,
        );
      const sig: NoteSignature = { name: r.name, keyId: r.keyId, signature };
      return sig;
    },
  };
}

/** A region's log service. */
export class RegionLogService implements NodeService {
  readonly name = 'trust-log';
  private ctx: NodeContext | undefined;
  private log: DurableLog | undefined;
  private server: LogServer | undefined;
  private pending: Uint8Array[] = [];
  private timers: TimerHandle[] = [];
  private sub: Subscription | undefined;
  private checkpointing = false;
  private signer: CompositeSigner | undefined;
  /** Entries refused because the pending queue was full. */
  dropped = 0;
  /** The newest witnessed checkpoint: size and number of cosignatures. */
  lastWitnessed: { size: number; cosigners: number } | undefined;

  constructor(
    private readonly hubs: readonly string[],
    private readonly identity: IdentityService,
  ) {}

  start(ctx: NodeContext): void {
    this.ctx = ctx;
    const origin = `genesis/${ctx.name}/log`;
    const path = ctx.dataDir === undefined ? ':memory:' : join(ctx.dataDir, 'trust', 'log.db');
    if (ctx.dataDir !== undefined) mkdirSync(join(ctx.dataDir, 'trust'), { recursive: true });
    this.log = DurableLog.open(path, { create: true, origin, clock: ctx.clock });
    this.sub = ctx.transport.subscribe(logAppendSubject(ctx.name), (msg) => {
      if (this.pending.length >= LOG_PENDING_ENTRIES_MAX) {
        this.dropped++;
        return;
      }
      this.pending.push(Uint8Array.from(msg.data));
    });
    this.timers.push(ctx.clock.setInterval(() => this.flush(), LOG_FLUSH_INTERVAL_MS));
    this.timers.push(
      ctx.clock.setInterval(() => {
        this.inflight = this.checkpoint();
      }, LOG_CHECKPOINT_INTERVAL_MS),
    );
  }

  /** Appends the pending entries as one durable batch. */
  flush(): void {
    if (this.log === undefined || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.log.appendBatch(batch);
  }

  /** Signs and witnesses a checkpoint if the log grew since the last one. */
  private inflight: Promise<void> | undefined;

  async checkpoint(): Promise<void> {
    const ctx = this.ctx;
    const log = this.log;
    if (ctx === undefined || log === undefined || this.checkpointing) return;
    if (log.size === 0 || log.size === this.lastWitnessed?.size) return;
    this.checkpointing = true;
    try {
      // The composite log key is made on the first checkpoint, after boot, not during it.
      this.signer ??= new CompositeSigner(
        DEFAULT_COMPOSITE_ALG,
        this.identity.compositeIdentity().secretKey,
      );
      const signer = this.signer;
      this.server ??= new LogServer(
        log,
        [compositeNoteSigner(log.origin, signer)],
        this.hubs.map((h) => transportWitness(ctx, h, () => signer.publicKey)),
        ctx.clock,
      );
      const round = await this.server.publishCheckpoint();
      this.lastWitnessed = { size: round.size, cosigners: round.cosigners.length };
    } catch (e) {
      ctx.logger.warn({ err: String(e) }, 'trust: checkpoint round failed');
    } finally {
      this.checkpointing = false;
    }
  }

  /** The log (for tests and the status line). */
  get durableLog(): DurableLog | undefined {
    return this.log;
  }

  /** Stops timers, waits for a checkpoint round in flight (it reads the log), then closes. */
  async stop(): Promise<void> {
    for (const t of this.timers) this.ctx?.clock.clearTimer(t);
    this.sub?.unsubscribe();
    await this.inflight;
    this.flush();
    this.log?.close();
  }

  status(): Readonly<Record<string, number | string>> {
    return {
      logSize: this.log?.size ?? 0,
      witnessed:
        this.lastWitnessed === undefined
          ? 'none'
          : `${this.lastWitnessed.size}/${this.lastWitnessed.cosigners}cosig`,
    };
  }
}

/** What {@link attachTrust} attached. */
export interface TrustAttachment {
  readonly identities: ReadonlyMap<string, IdentityService>;
  readonly logs: ReadonlyMap<string, RegionLogService>;
  readonly witnesses: ReadonlyMap<string, WitnessService>;
}

/** Attaches identities to every node, a log to every region and a witness to every hub. */
export function attachTrust(fabric: {
  nodes: ReadonlyMap<string, { attach(s: NodeService): unknown; level: string; name: string }>;
  node(name: string): { children: readonly string[] };
}): TrustAttachment {
  const identities = new Map<string, IdentityService>();
  const logs = new Map<string, RegionLogService>();
  const witnesses = new Map<string, WitnessService>();
  for (const [name, node] of fabric.nodes) {
    const id = new IdentityService();
    identities.set(name, id);
    if (node.level === 'region') {
      // The log subscribes before the region's own identity registers with it.
      const log = new RegionLogService(fabric.node(name).children, id);
      logs.set(name, log);
      node.attach(log);
    }
    node.attach(id);
    if (node.level === 'hub') {
      const w = new WitnessService();
      witnesses.set(name, w);
      node.attach(w);
    }
  }
  return { identities, logs, witnesses };
}
