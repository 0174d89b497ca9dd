/**
 * The pod agent: admits tiles ("snap-together" self-configuration), keeps their leases, detects
 * failures SWIM-style and publishes membership events.
 *
 * Leases follow Kubernetes' node-lease design (KEP-589): a tile renews every `renewMs`
 * (default 10 s); after `suspectMs` of silence it is *suspect* and the pod probes it directly
 * and through up to k sibling tiles (SWIM, Das, Gupta & Motivala 2002, §3.1 "indirect probing"),
 * so one lossy path between pod and tile cannot kill a healthy tile; after `deadMs` (default
 * 40 s) with every probe failed it is *dead*. Membership lives in the pod's own JetStream
 * domain (KV), so it survives a server restart and stays writable while the hub is cut off;
 * events the hub must see wait in a bounded outbox until the uplink returns.
 */
import type {
  Clock,
  Liveness,
  Logger,
  MembershipEvent,
  Rng,
  Subscription,
  TimerHandle,
  Transport,
} from '../core/index.ts';
import { isGenesisError, TransportErrorCode } from '../core/index.ts';
import { FabricError, FabricErrorCode } from './errors.ts';
import {
  CONTROL_REQUEST_TIMEOUT_MS,
  LEASE_DEAD_MS_DEFAULT,
  LEASE_RENEW_MS_DEFAULT,
  LEASE_SUSPECT_MS_DEFAULT,
  POD_TILES_MAX,
  POD_TILES_MAX_DEFAULT,
  PROBE_TIMEOUT_MS_DEFAULT,
  SWIM_INDIRECT_PROBES_K,
  UPLINK_BUFFER_MESSAGES_MAX,
} from './limits.ts';
import {
  ackSchema,
  EVENT_BATCH_MAX,
  heartbeatBodySchema,
  type Inventory,
  type JoinReply,
  joinBodySchema,
  type LeaseConfig,
  type MemberRecord,
  memberRecordSchema,
  pongBodySchema,
  probeAckBodySchema,
  redirectReplySchema,
  Subjects,
} from './messages.ts';
import type { KeyValueStore } from './state-store.ts';
import { decodeJson, encodeJson, type KeyPair, WireSigner, WireVerifier } from './wire.ts';

/** Options of a {@link PodAgent}. */
export interface PodAgentInit {
  readonly name: string;
  /** The hub above (undefined: a standalone pod). */
  readonly hub: string | undefined;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly logger: Logger;
  readonly keys: KeyPair;
  /** Durable membership (a JetStream KV bucket in the pod's domain). */
  readonly store: KeyValueStore;
  readonly lease?: Partial<LeaseConfig>;
  readonly tilesMax?: number;
  /** URL tiles redirected here should use. */
  readonly advertiseUrl?: string;
  /** Capabilities handed to admitted tiles. */
  readonly capabilities?: readonly string[];
  /** Called on every membership transition. */
  readonly onEvent?: (e: MembershipEvent) => void;
}

interface Member {
  record: MemberRecord;
  lastRenewMs: number;
  probing: boolean;
}

/** Capabilities a pod grants by default. */
export const DEFAULT_TILE_CAPABILITIES = ['wasm.run', 'telemetry.publish'] as const;

/** Builds a full lease config from a partial one, checking the relations. */
export function leaseConfig(partial: Partial<LeaseConfig> = {}): LeaseConfig {
  const renewMs = partial.renewMs ?? LEASE_RENEW_MS_DEFAULT;
  const deadMs =
    partial.deadMs ?? (partial.renewMs === undefined ? LEASE_DEAD_MS_DEFAULT : renewMs * 4);
  const suspectMs =
    partial.suspectMs ?? (partial.renewMs === undefined ? LEASE_SUSPECT_MS_DEFAULT : renewMs * 2);
  const probeTimeoutMs =
    partial.probeTimeoutMs ??
    Math.min(PROBE_TIMEOUT_MS_DEFAULT, Math.max(1, Math.floor(renewMs / 2)));
  if (!(renewMs > 0 && suspectMs > renewMs && deadMs > suspectMs)) {
    throw new FabricError(
      FabricErrorCode.ConfigInvalid,
      `lease needs 0 < renew (${renewMs}) < suspect (${suspectMs}) < dead (${deadMs})`,
      {
        details: { renewMs, suspectMs, deadMs },
      },
    );
  }
  return { renewMs, suspectMs, deadMs, probeTimeoutMs };
}

/** A pod's membership service. */
export class PodAgent {
  readonly name: string;
  readonly lease: LeaseConfig;
  private readonly signer: WireSigner;
  private readonly verifier: WireVerifier;
  private readonly members = new Map<string, Member>();
  private readonly byKey = new Map<string, string>();
  /** Names promised to joins whose store write is in flight, and those joins' keys. */
  private readonly reserved = new Set<string>();
  private readonly joining = new Map<string, string>();
  private readonly subs: Subscription[] = [];
  private readonly outbox: MembershipEvent[] = [];
  private readonly tilesMax: number;
  private tickTimer: TimerHandle | undefined;
  private statTimer: TimerHandle | undefined;
  private flushing = false;
  private running = false;
  private draining = false;
  private counters = {
    joins: 0,
    redirects: 0,
    events: 0,
    outboxDropped: 0,
    eventsSentUp: 0,
    storeErrors: 0,
    probes: 0,
    probeRescues: 0,
  };

  constructor(private readonly init: PodAgentInit) {
    this.name = init.name;
    this.lease = leaseConfig(init.lease);
    this.tilesMax = init.tilesMax ?? POD_TILES_MAX_DEFAULT;
    if (
      !(Number.isInteger(this.tilesMax) && this.tilesMax >= 1 && this.tilesMax <= POD_TILES_MAX)
    ) {
      throw new FabricError(FabricErrorCode.ConfigInvalid, `tilesMax must be 1..${POD_TILES_MAX}`, {
        details: { tilesMax: this.tilesMax },
      });
    }
    this.signer = new WireSigner(init.keys, init.clock, init.name);
    this.verifier = new WireVerifier(init.clock);
  }

  /** Loads durable membership, then serves joins, heartbeats and inventory. */
  async start(): Promise<void> {
    if (this.running) return;
    const now = this.init.clock.now();
    for (const [, v] of await this.init.store.entries()) {
      const rec = decodeJson(v, memberRecordSchema);
      if (rec === undefined) continue;
      // A restarted pod gives every known tile a fresh lease: it cannot know how long it was
      // gone, and declaring everyone dead at once would cause a rescheduling storm.
      this.members.set(rec.name, { record: rec, lastRenewMs: now, probing: false });
      this.byKey.set(rec.key, rec.name);
      this.verifier.bind(rec.name, rec.key);
    }
    const t = this.init.transport;
    this.subs.push(
      t.subscribe(Subjects.join(this.name), (m) => this.onJoin(m.data, (d) => m.respond(d)), {
        pendingMessagesMax: 1024,
        dropPolicy: 'drop-newest',
      }),
      t.subscribe(Subjects.heartbeat(this.name), (m) => this.onHeartbeat(m.data), {
        pendingMessagesMax: Math.max(256, this.tilesMax * 4),
        dropPolicy: 'drop-oldest',
      }),
      t.subscribe(Subjects.inventory(this.name), (m) => {
        m.respond(encodeJson(this.inventory()));
      }),
      t.subscribe(Subjects.status(this.name), (m) => {
        m.respond(encodeJson({ status: this.status(), wire: this.wireStats() }));
      }),
    );
    this.running = true;
    const tickMs = Math.max(1, Math.floor(this.lease.renewMs / 2));
    this.tickTimer = this.init.clock.setInterval(() => this.tick(), tickMs);
    if (this.init.hub !== undefined) {
      this.publishPodstat();
      this.statTimer = this.init.clock.setInterval(() => this.publishPodstat(), this.lease.renewMs);
    }
  }

  /** Stops serving; membership stays in the store. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.tickTimer) this.init.clock.clearTimer(this.tickTimer);
    if (this.statTimer) this.init.clock.clearTimer(this.statTimer);
    for (const s of this.subs.splice(0)) s.unsubscribe();
  }

  /** Stops admitting tiles (they are redirected to siblings). */
  setDraining(draining: boolean): void {
    this.draining = draining;
  }

  /** A snapshot of every member. */
  memberRecords(): MemberRecord[] {
    return [...this.members.values()].map((m) => m.record);
  }

  /** The inventory the controller pulls. */
  inventory(): Inventory {
    return {
      pod: this.name,
      atMs: this.init.clock.now(),
      draining: this.draining,
      capabilities: [...(this.init.capabilities ?? DEFAULT_TILE_CAPABILITIES)],
      members: this.memberRecords(),
    };
  }

  /** Counters for status lines, including wire rejections by reason. */
  status(): Record<string, number> {
    const alive = [...this.members.values()].filter((m) => m.record.state === 'alive').length;
    const wire = this.verifier.stats();
    return {
      members: this.members.size,
      alive,
      outbox: this.outbox.length,
      ...this.counters,
      wireAccepted: wire.accepted,
      wireRejected: this.verifier.rejected,
    };
  }

  /** Wire rejection counters by reason. */
  wireStats(): Record<string, number> {
    return this.verifier.stats();
  }

  private async onJoin(data: Uint8Array, respond: (d: Uint8Array) => boolean): Promise<void> {
    const r = this.verifier.open(data, { type: 'join', body: joinBodySchema, allowUnbound: true });
    if (!r.ok) {
      respond(encodeJson({ ok: false, reason: 'rejected' } satisfies JoinReply));
      return;
    }
    const env = r.envelope;
    const now = this.init.clock.now();
    let name = this.byKey.get(env.key) ?? this.joining.get(env.key);
    if (name === undefined) {
      if (this.draining || this.liveCount() >= this.tilesMax) {
        if (!this.draining) this.evictOneDead();
        if (this.draining || this.liveCount() >= this.tilesMax) {
          this.counters.redirects++;
          const redirect = await this.findSibling();
          respond(
            encodeJson({
              ok: false,
              reason: this.draining ? 'draining' : 'full',
              ...(redirect === undefined ? {} : { redirect }),
            } satisfies JoinReply),
          );
          return;
        }
      }
      name = this.allocateName(env.body.wantName);
    }
    // Joins run concurrently (the store write is awaited): reserve the name and the key first
    // so two tiles joining at once never get the same name.
    const reservedHere = !this.reserved.has(name);
    this.reserved.add(name);
    this.joining.set(env.key, name);
    const prev = this.members.get(name);
    const record: MemberRecord = {
      name,
      key: env.key,
      state: 'alive',
      capacity: env.body.capacity,
      labels: env.body.labels,
      instances: [],
      joinedAtMs: prev?.record.joinedAtMs ?? now,
      changedAtMs: now,
    };
    try {
      // The join is acknowledged only once the membership change is durable.
      await this.init.store.put(name, encodeJson(record));
    } catch (e) {
      if (reservedHere) this.reserved.delete(name);
      this.joining.delete(env.key);
      this.counters.storeErrors++;
      this.init.logger.warn(
        { pod: this.name, err: String(e) },
        'membership store write failed; join refused',
      );
      respond(encodeJson({ ok: false, reason: 'rejected' } satisfies JoinReply));
      return;
    }
    this.members.set(name, { record, lastRenewMs: now, probing: false });
    this.byKey.set(env.key, name);
    if (reservedHere) this.reserved.delete(name);
    this.joining.delete(env.key);
    this.verifier.bind(name, env.key);
    this.counters.joins++;
    if (prev?.record.state !== 'alive') this.emit(name, prev?.record.state ?? 'unknown', 'alive');
    respond(
      encodeJson({
        ok: true,
        name,
        pod: this.name,
        config: this.lease,
        capabilities: [...(this.init.capabilities ?? DEFAULT_TILE_CAPABILITIES)],
        podKey: this.signer.publicKeyId,
      } satisfies JoinReply),
    );
  }

  private liveCount(): number {
    let n = this.reserved.size;
    for (const m of this.members.values()) if (m.record.state !== 'dead') n++;
    return n;
  }

  /** Frees the slot of the member dead the longest, so a full pod can admit a replacement. */
  private evictOneDead(): void {
    let oldest: Member | undefined;
    for (const m of this.members.values()) {
      if (
        m.record.state === 'dead' &&
        (oldest === undefined || m.record.changedAtMs < oldest.record.changedAtMs)
      )
        oldest = m;
    }
    if (oldest === undefined) return;
    this.members.delete(oldest.record.name);
    this.byKey.delete(oldest.record.key);
    this.verifier.unbind(oldest.record.name);
    this.init.store.delete(oldest.record.name).catch(() => this.counters.storeErrors++);
  }

  /** The pod assigns names: a wanted name only if it is a free slot of this pod. */
  private allocateName(wanted: string | undefined): string {
    const prefix = `${this.name}.`;
    if (wanted?.startsWith(prefix) && /^t\d{2,4}$/.test(wanted.slice(prefix.length))) {
      const holder = this.members.get(wanted);
      if (holder === undefined && !this.reserved.has(wanted)) return wanted;
    }
    for (let i = 1; i <= POD_TILES_MAX; i++) {
      const n = `${prefix}t${String(i).padStart(2, '0')}`;
      if (!this.members.has(n) && !this.reserved.has(n)) return n;
    }
    throw new FabricError(FabricErrorCode.PodFull, `${this.name} has no free tile names`);
  }

  private async findSibling(): Promise<{ pod: string; url: string } | undefined> {
    if (this.init.hub === undefined) return undefined;
    try {
      const reply = await this.init.transport.request(
        Subjects.redirect(this.init.hub),
        encodeJson({ exclude: [this.name] }),
        {
          timeoutMs: CONTROL_REQUEST_TIMEOUT_MS,
        },
      );
      return decodeJson(reply.data, redirectReplySchema) ?? undefined;
    } catch {
      return undefined;
    }
  }

  private onHeartbeat(data: Uint8Array): void {
    const r = this.verifier.open(data, { type: 'hb', body: heartbeatBodySchema });
    if (!r.ok) return;
    const m = this.members.get(r.envelope.from);
    if (m === undefined) return;
    m.lastRenewMs = this.init.clock.now();
    m.record = { ...m.record, instances: r.envelope.body.instances };
    if (m.record.state !== 'alive') this.setState(m, 'alive');
  }

  private tick(): void {
    if (!this.running) return;
    const now = this.init.clock.now();
    for (const m of this.members.values()) {
      if (m.record.state === 'dead') continue;
      const silentMs = now - m.lastRenewMs;
      if (silentMs > this.lease.deadMs && !m.probing) {
        this.setState(m, 'dead');
        continue;
      }
      if (silentMs > this.lease.suspectMs) {
        if (m.record.state === 'alive') this.setState(m, 'suspect');
        if (!m.probing) void this.probe(m);
      }
    }
    if (this.outbox.length > 0) void this.flushOutbox();
  }

  /** One SWIM probe round: a direct ping and up to k indirect pings through siblings. */
  private async probe(m: Member): Promise<void> {
    m.probing = true;
    this.counters.probes++;
    const target = m.record.name;
    const nonce = this.init.rng.nextU32().toString(16);
    const helpers = this.pickHelpers(target);
    const attempts: Promise<boolean>[] = [this.pingDirect(target, nonce)];
    for (const h of helpers) attempts.push(this.pingVia(h, target, nonce));
    let reachable = false;
    try {
      reachable = await anyTrue(attempts);
    } finally {
      m.probing = false;
    }
    if (reachable && this.members.get(target) === m && m.record.state !== 'dead') {
      // The tile answered although its lease lapsed (lost heartbeats): refute the suspicion.
      this.counters.probeRescues++;
      m.lastRenewMs = this.init.clock.now();
      this.setState(m, 'alive');
    }
  }

  private pickHelpers(exclude: string): string[] {
    const alive = [...this.members.values()]
      .filter((x) => x.record.state === 'alive' && x.record.name !== exclude)
      .map((x) => x.record.name);
    const out: string[] = [];
    while (out.length < SWIM_INDIRECT_PROBES_K && alive.length > 0) {
      const i = this.init.rng.int(0, alive.length - 1);
      out.push(alive[i] as string);
      alive.splice(i, 1);
    }
    return out;
  }

  private async pingDirect(target: string, nonce: string): Promise<boolean> {
    try {
      const reply = await this.init.transport.request(
        Subjects.ping(target),
        encodeJson({ nonce }),
        { timeoutMs: this.lease.probeTimeoutMs },
      );
      const r = this.verifier.open(reply.data, {
        type: 'pong',
        body: pongBodySchema,
        expectFrom: target,
      });
      return r.ok && r.envelope.body.nonce === nonce;
    } catch {
      return false;
    }
  }

  private async pingVia(helper: string, target: string, nonce: string): Promise<boolean> {
    try {
      const reply = await this.init.transport.request(
        Subjects.probe(helper),
        encodeJson({ target, nonce }),
        { timeoutMs: this.lease.probeTimeoutMs * 2 },
      );
      const r = this.verifier.open(reply.data, {
        type: 'probe-ack',
        body: probeAckBodySchema,
        expectFrom: helper,
      });
      return (
        r.ok &&
        r.envelope.body.target === target &&
        r.envelope.body.nonce === nonce &&
        r.envelope.body.reachable
      );
    } catch {
      return false;
    }
  }

  private setState(m: Member, to: Liveness): void {
    const from = m.record.state;
    if (from === to) return;
    m.record = { ...m.record, state: to, changedAtMs: this.init.clock.now() };
    this.init.store
      .put(m.record.name, encodeJson(m.record))
      .catch(() => this.counters.storeErrors++);
    this.emit(m.record.name, from, to);
  }

  private emit(child: string, from: Liveness | 'unknown', to: Liveness): void {
    const e: MembershipEvent = { parent: this.name, child, from, to, atMs: this.init.clock.now() };
    this.counters.events++;
    this.init.onEvent?.(e);
    if (!this.running) return;
    try {
      this.init.transport.publish(Subjects.members(this.name), encodeJson(e));
    } catch (err) {
      this.init.logger.debug({ err: String(err) }, 'membership event publish failed');
    }
    if (this.init.hub === undefined) return;
    if (this.outbox.length >= UPLINK_BUFFER_MESSAGES_MAX) {
      this.outbox.shift();
      this.counters.outboxDropped++;
    }
    this.outbox.push(e);
    void this.flushOutbox();
  }

  /** Sends buffered events up until the hub acknowledges them; keeps them while cut off. */
  private async flushOutbox(): Promise<void> {
    if (this.flushing || this.init.hub === undefined || !this.running) return;
    this.flushing = true;
    try {
      while (this.outbox.length > 0 && this.running) {
        const batch = this.outbox.slice(0, EVENT_BATCH_MAX);
        const reply = await this.init.transport.request(
          Subjects.events(this.init.hub),
          this.signer.seal('events', { pod: this.name, events: batch }),
          {
            timeoutMs: CONTROL_REQUEST_TIMEOUT_MS,
          },
        );
        const ack = decodeJson(reply.data, ackSchema);
        if (ack?.ok !== true) break;
        this.outbox.splice(0, batch.length);
        this.counters.eventsSentUp += batch.length;
      }
    } catch (e) {
      if (
        !isGenesisError(e, TransportErrorCode.NoResponders) &&
        !isGenesisError(e, TransportErrorCode.Timeout)
      ) {
        this.init.logger.debug({ err: String(e) }, 'uplink flush failed');
      }
    } finally {
      this.flushing = false;
    }
  }

  private publishPodstat(): void {
    if (!this.running || this.init.hub === undefined) return;
    const alive = [...this.members.values()].filter((m) => m.record.state === 'alive').length;
    const body = {
      pod: this.name,
      url: this.init.advertiseUrl ?? '',
      tiles: this.liveCount(),
      tilesMax: this.draining ? 0 : this.tilesMax,
      alive,
      atMs: this.init.clock.now(),
    };
    try {
      this.init.transport.publish(
        Subjects.podstat(this.init.hub),
        this.signer.seal('podstat', body),
      );
    } catch (e) {
      this.init.logger.debug({ err: String(e) }, 'podstat publish failed');
    }
  }
}

/** Resolves true as soon as one promise resolves true; false when all resolve false. */
function anyTrue(ps: Promise<boolean>[]): Promise<boolean> {
  return new Promise((resolve) => {
    let left = ps.length;
    if (left === 0) resolve(false);
    for (const p of ps) {
      p.then(
        (v) => {
          if (v) resolve(true);
          else if (--left === 0) resolve(false);
        },
        () => {
          if (--left === 0) resolve(false);
        },
      );
    }
  });
}
