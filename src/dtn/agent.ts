/**
 * The bundle protocol agent (RFC 9171 §5): accepts bundles from applications and convergence
 * layers, keeps them in a (persistent) store, forwards them along the router's next hop when a
 * link is up, delivers them to registrations, reassembles fragments, expires them at the end of
 * their lifetime, enforces hop limits and sends status reports. Time comes from the injected
 * clock, so the same agent runs a Mars link in virtual time in a test.
 */
import { assert, type Clock, type Logger, silentLogger, type TimerHandle } from '../core/index.ts';
import {
  decodeStatusReport,
  encodeStatusReport,
  ReasonCode,
  type StatusKind,
  type StatusReport,
} from './admin.ts';
import {
  BlockFlags,
  BlockType,
  type Bundle,
  BundleFlags,
  bundleAgeData,
  type CanonicalBlock,
  CrcType,
  createBundle,
  DTN_EPOCH_UNIX_MS,
  decodeBundle,
  dtnTimeOf,
  encodeBundle,
  findBlock,
  hopCountData,
  nextBlockNumber,
  payloadBlock,
  previousNodeData,
  readBundleAge,
  readHopCount,
} from './bundle.ts';
import { type Contact, type ContactPlan, cgrDijkstra } from './cgr.ts';
import { type Eid, eidEquals, formatEid, isNullEid, nodeIdOf } from './eid.ts';
import { BundleError, DtnError, DtnErrorCode } from './errors.ts';
import { fragmentBundle, Reassembly } from './fragment.ts';
import {
  AGENT_BUNDLES_MAX,
  AGENT_BYTES_MAX,
  HOP_LIMIT_DEFAULT,
  REGISTRATION_QUEUE_BUNDLES_MAX,
} from './limits.ts';
import type { BpsecPolicy } from './policy.ts';
import { type BundleStore, MemoryBundleStore } from './store.ts';

/** How often the agent retries waiting bundles and scans for expired ones. */
export const AGENT_PUMP_INTERVAL_MS = 1_000;
/** Most bundles handed to links in one pump (the rest wait for the next). */
export const AGENT_SENDS_PER_PUMP_MAX = 1_024;

/** A link to a neighbour offered by a convergence layer. */
export interface ConvergenceLink {
  /** Node ID of the neighbour (see {@link nodeIdOf}). */
  readonly peer: string;
  /** Largest bundle the link carries whole; larger ones are fragmented. */
  readonly maxBundleBytes?: number;
  /** True while the link can carry bundles now. */
  isUp(): boolean;
  /** Sends one encoded bundle; resolves once the convergence layer has taken responsibility. */
  send(bytes: Uint8Array): Promise<void>;
}

/** The bundle a route is asked for: routers that book contact volume need its id and size. */
export interface RoutedBundle {
  readonly id: string;
  readonly bytes: number;
}

/** Picks the neighbour a bundle for `destNode` goes to next, at time `nowMs` (Unix ms). */
export interface Router {
  nextHop(destNode: string, nowMs: number, bundle?: RoutedBundle): string | undefined;
  /** The bundle was handed to the link of its route: what it booked stays consumed. */
  sent?(bundleId: string): void;
  /** The bundle left this node unsent (delivered, expired or deleted): free what it booked. */
  release?(bundleId: string): void;
}

/** Fixed routes: destination node → neighbour, with an optional default. */
export class StaticRouter implements Router {
  constructor(
    private readonly routes: ReadonlyMap<string, string>,
    private readonly fallback?: string,
  ) {}

  nextHop(destNode: string): string | undefined {
    return this.routes.get(destNode) ?? this.fallback;
  }
}

/**
 * Contact-graph routing for ipn nodes: the plan's times are seconds after `originUnixMs`; the
 * next hop is the first contact of the earliest-arrival route from this node that still has
 * the volume to carry the bundle. As in ION's CGR, the local node books each queued bundle's
 * size against the first contact of its route (the only contact whose queue it knows), so a
 * burst larger than a contact spills onto later or other contacts instead of being promised
 * one that cannot carry it. A re-route replaces the bundle's booking; sent() makes it final
 * (the volume is used); release() frees it when the bundle leaves unsent.
 */
export class ContactPlanRouter implements Router {
  private readonly booked = new Map<Contact, number>();
  private readonly bookings = new Map<string, { contact: Contact; bits: number }>();

  constructor(
    private readonly plan: ContactPlan,
    private readonly localNode: number,
    private readonly originUnixMs: number,
  ) {}

  nextHop(destNode: string, nowMs: number, bundle?: RoutedBundle): string | undefined {
    const m = /^ipn:(\d+)\.0$/.exec(destNode);
    if (m === null) return undefined;
    if (bundle !== undefined) this.release(bundle.id);
    const route = cgrDijkstra(
      this.plan,
      this.localNode,
      Number(m[1]),
      Math.max(0, (nowMs - this.originUnixMs) / 1000),
      bundle === undefined
        ? {}
        : { bundleBits: bundle.bytes * 8, bookedBits: (c) => this.booked.get(c) ?? 0 },
    );
    if (route === undefined) return undefined;
    const first = route.contacts[0];
    if (bundle !== undefined && first !== undefined) {
      const bits = bundle.bytes * 8;
      this.bookings.set(bundle.id, { contact: first, bits });
      this.booked.set(first, (this.booked.get(first) ?? 0) + bits);
    }
    return `ipn:${route.nextHop}.0`;
  }

  sent(bundleId: string): void {
    this.bookings.delete(bundleId);
  }

  release(bundleId: string): void {
    const b = this.bookings.get(bundleId);
    if (b === undefined) return;
    this.bookings.delete(bundleId);
    const left = (this.booked.get(b.contact) ?? 0) - b.bits;
    if (left > 0) this.booked.set(b.contact, left);
    else this.booked.delete(b.contact);
  }

  /** Bits committed to a contact by bundles sent or queued on it (for tests and status). */
  bookedBits(contact: Contact): number {
    return this.booked.get(contact) ?? 0;
  }

  /** Queued bundles holding a booking. */
  get bookingCount(): number {
    return this.bookings.size;
  }
}

/** A bundle delivered to a registration. */
export interface Delivery {
  readonly id: string;
  readonly bundle: Bundle;
  readonly source: Eid;
  readonly payload: Uint8Array;
}

/** An application's binding to an endpoint (RFC 9171 §3.1 "registration"). */
export class Registration {
  private readonly queue: Delivery[] = [];
  private readonly waiters: ((d: Delivery) => void)[] = [];
  closed = false;

  constructor(
    readonly endpoint: Eid,
    private readonly onClose: () => void,
    private readonly handler?: (d: Delivery) => void,
  ) {}

  /** @internal called by the agent. Returns false when the queue is full. */
  offer(d: Delivery): boolean {
    if (this.handler !== undefined) {
      this.handler(d);
      return true;
    }
    const w = this.waiters.shift();
    if (w !== undefined) {
      w(d);
      return true;
    }
    if (this.queue.length >= REGISTRATION_QUEUE_BUNDLES_MAX) return false;
    this.queue.push(d);
    return true;
  }

  /** Resolves with the next delivery. */
  next(): Promise<Delivery> {
    const d = this.queue.shift();
    if (d !== undefined) return Promise.resolve(d);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Deliveries waiting to be read. */
  get pending(): number {
    return this.queue.length;
  }

  /** Unbinds the endpoint. */
  close(): void {
    this.closed = true;
    this.onClose();
  }
}

interface Entry {
  readonly id: string;
  bundle: Bundle;
  readonly size: number;
  readonly receivedAtMs: number;
  readonly expiresAtMs: number;
  sending: boolean;
  /** The BPSec acceptor already processed it (its security blocks are gone). */
  secured?: boolean;
}

/** Counters of an agent. */
export interface AgentStats {
  received: number;
  accepted: number;
  rejected: number;
  duplicates: number;
  forwarded: number;
  delivered: number;
  expired: number;
  deleted: number;
  hopLimitExceeded: number;
  fragmented: number;
  reassembled: number;
  reportsSent: number;
  reportsReceived: number;
  /** Bundles for this node deleted by the BPSec policy (missing or failed protection). */
  securityFailed: number;
}

/** Options of a {@link BundleAgent}. */
export interface AgentInit {
  /** This node's ID, e.g. `ipn:2.0` or `dtn://mars/`. */
  readonly nodeId: Eid;
  readonly clock: Clock;
  readonly logger?: Logger;
  readonly store?: BundleStore;
  readonly router?: Router;
  /** BPSec policy: protect originated bundles, verify and decrypt delivered ones (RFC 9172 §5). */
  readonly security?: BpsecPolicy;
  /** Accept bundles breaking the two cross-block presence rules (see DecodeOptions). */
  readonly lenient?: boolean;
  readonly bundlesMax?: number;
  readonly bytesMax?: number;
  readonly pumpIntervalMs?: number;
}

/** Options of {@link BundleAgent.send}. */
export interface SendInit {
  readonly destination: Eid;
  readonly payload: Uint8Array;
  readonly source?: Eid;
  readonly lifetimeMs: number;
  readonly flags?: number;
  readonly reportTo?: Eid;
  readonly hopLimit?: number;
}

/** Bundle ID (RFC 9171 §5.4 footnote): source, creation timestamp, and fragment position. */
export function bundleIdOf(b: Bundle): string {
  const p = b.primary;
  const base = `${formatEid(p.source)}/${p.creationTime}/${p.sequence}`;
  return p.fragmentOffset === undefined
    ? base
    : `${base}/${p.fragmentOffset}/${payloadBlock(b).data.length}`;
}

const KNOWN_BLOCK_TYPES = new Set<number>([
  BlockType.Payload,
  BlockType.PreviousNode,
  BlockType.BundleAge,
  BlockType.HopCount,
  BlockType.Integrity,
  BlockType.Confidentiality,
]);

/**
 * Applies RFC 9171 §5.6 step 3 to blocks this agent cannot process: delete the bundle, or
 * discard the block, as its processing flags say; otherwise keep it untouched.
 */
export function processUnknownBlocks(bundle: Bundle): {
  bundle: Bundle;
  deleteBundle: boolean;
  report: boolean;
} {
  let report = false;
  const kept: CanonicalBlock[] = [];
  for (const b of bundle.blocks) {
    if (KNOWN_BLOCK_TYPES.has(b.type)) {
      kept.push(b);
      continue;
    }
    if ((b.flags & BlockFlags.ReportIfUnprocessed) !== 0) report = true;
    if ((b.flags & BlockFlags.DeleteBundleIfUnprocessed) !== 0)
      return { bundle, deleteBundle: true, report };
    if ((b.flags & BlockFlags.DiscardBlockIfUnprocessed) === 0) kept.push(b);
  }
  return {
    bundle:
      kept.length === bundle.blocks.length ? bundle : { primary: bundle.primary, blocks: kept },
    deleteBundle: false,
    report,
  };
}

/** A bundle protocol agent. */
export class BundleAgent {
  readonly nodeId: Eid;
  readonly nodeKey: string;
  readonly stats: AgentStats = {
    received: 0,
    accepted: 0,
    rejected: 0,
    duplicates: 0,
    forwarded: 0,
    delivered: 0,
    expired: 0,
    deleted: 0,
    hopLimitExceeded: 0,
    fragmented: 0,
    reassembled: 0,
    reportsSent: 0,
    reportsReceived: 0,
    securityFailed: 0,
  };
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly store: BundleStore;
  private router: Router | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly links = new Map<string, ConvergenceLink>();
  private readonly registrations: Registration[] = [];
  private readonly reassemblies = new Map<string, Reassembly>();
  private readonly statusListeners: ((r: StatusReport) => void)[] = [];
  private readonly deliveredIds = new Set<string>();
  private bytesHeld = 0;
  private sequence = 0;
  private lastCreation = -1;
  private timer: TimerHandle | undefined;
  private running = false;

  constructor(private readonly init: AgentInit) {
    this.nodeId = init.nodeId;
    this.nodeKey = nodeIdOf(init.nodeId);
    this.clock = init.clock;
    this.logger = init.logger ?? silentLogger();
    this.store = init.store ?? new MemoryBundleStore();
    this.router = init.router;
  }

  /** Loads the store (bundles accepted before a restart) and starts the pump. */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const rec of this.store.load()) {
      try {
        const bundle = decodeBundle(rec.bytes, { lenient: true });
        this.admit(rec.id, bundle, rec.bytes.length, rec.receivedAtMs, false);
      } catch (e) {
        this.logger.warn({ id: rec.id, err: String(e) }, 'dropping unreadable stored bundle');
        this.store.delete(rec.id);
      }
    }
    this.timer = this.clock.setInterval(
      () => this.pump(),
      this.init.pumpIntervalMs ?? AGENT_PUMP_INTERVAL_MS,
    );
    this.pump();
  }

  /** Stops the pump; stored bundles stay in the store. */
  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  /** Replaces the router (e.g. when a new contact plan arrives). */
  setRouter(router: Router): void {
    this.router = router;
    this.pump();
  }

  /** Adds (or replaces) a link to a neighbour and tries to forward over it. */
  addLink(link: ConvergenceLink): void {
    this.links.set(link.peer, link);
    this.pump();
  }

  /** Removes the link to a neighbour. */
  removeLink(peer: string): void {
    this.links.delete(peer);
  }

  /** Tells the agent a link's state changed (a contact began). */
  linkStateChanged(): void {
    this.pump();
  }

  /** Number of bundles held (waiting to be forwarded or delivered). */
  get held(): number {
    return this.entries.size;
  }

  /** Bundles held and not currently being handed to a link. */
  get waiting(): number {
    let n = 0;
    for (const e of this.entries.values()) if (!e.sending) n++;
    return n;
  }

  /** Bytes of bundles held. */
  get heldBytes(): number {
    return this.bytesHeld;
  }

  /** IDs of held bundles. */
  heldIds(): string[] {
    return [...this.entries.keys()];
  }

  /** Subscribes to status reports addressed to this node. */
  onStatusReport(listener: (r: StatusReport) => void): void {
    this.statusListeners.push(listener);
  }

  /**
   * Binds an endpoint. Bundles for it that were waiting are delivered at once.
   * @param handler called for each delivery; without it, read with `registration.next()`.
   */
  register(endpoint: Eid, handler?: (d: Delivery) => void): Registration {
    const reg: Registration = new Registration(
      endpoint,
      () => {
        const i = this.registrations.indexOf(reg);
        if (i >= 0) this.registrations.splice(i, 1);
      },
      handler,
    );
    this.registrations.push(reg);
    for (const e of [...this.entries.values()])
      if (eidEquals(e.bundle.primary.destination, endpoint)) this.dispatch(e);
    return reg;
  }

  /**
   * Creates a bundle from an application payload and accepts it (stored before this returns).
   * @returns the bundle ID.
   * @throws {DtnError} when the store is full.
   */
  send(init: SendInit): string {
    const nowDtn = dtnTimeOf(this.clock.now());
    if (nowDtn === this.lastCreation) this.sequence++;
    else {
      this.lastCreation = nowDtn;
      this.sequence = 0;
    }
    const bundle = createBundle({
      source: init.source ?? this.nodeId,
      destination: init.destination,
      reportTo: init.reportTo ?? this.nodeId,
      payload: init.payload,
      creationTime: nowDtn,
      sequence: this.sequence,
      lifetimeMs: init.lifetimeMs,
      flags: init.flags ?? 0,
      hopLimit: init.hopLimit ?? HOP_LIMIT_DEFAULT,
    });
    const secured = this.init.security?.protect(bundle) ?? bundle;
    const bytes = encodeBundle(secured);
    return this.accept(secured, bytes.length, this.clock.now());
  }

  /**
   * Receives an encoded bundle from a convergence layer.
   * @returns the outcome; malformed bundles are counted and refused, never thrown.
   */
  receive(bytes: Uint8Array): { ok: true; id: string } | { ok: false; reason: string } {
    this.stats.received++;
    let bundle: Bundle;
    try {
      bundle = decodeBundle(bytes, { lenient: this.init.lenient === true });
    } catch (e) {
      this.stats.rejected++;
      if (e instanceof BundleError) return { ok: false, reason: e.rule };
      throw e;
    }
    const unknown = processUnknownBlocks(bundle);
    if (unknown.deleteBundle) {
      this.stats.deleted++;
      this.report(bundle, 'deleted', ReasonCode.BlockUnintelligible);
      return { ok: false, reason: 'block-unintelligible' };
    }
    bundle = unknown.bundle;
    const hop = findBlock(bundle, BlockType.HopCount);
    if (hop !== undefined) {
      const { limit, count } = readHopCount(hop);
      if (count > limit) {
        this.stats.hopLimitExceeded++;
        this.stats.deleted++;
        this.report(bundle, 'deleted', ReasonCode.HopLimitExceeded);
        return { ok: false, reason: 'hop-limit-exceeded' };
      }
    }
    const id = bundleIdOf(bundle);
    if (this.entries.has(id) || this.deliveredIds.has(id)) {
      this.stats.duplicates++;
      return { ok: true, id };
    }
    try {
      this.accept(bundle, bytes.length, this.clock.now());
    } catch (e) {
      if (e instanceof DtnError) return { ok: false, reason: e.code };
      throw e;
    }
    if ((bundle.primary.flags & BundleFlags.ReportReception) !== 0)
      this.report(bundle, 'received', ReasonCode.NoInformation);
    return { ok: true, id };
  }

  private accept(bundle: Bundle, size: number, receivedAtMs: number): string {
    const id = bundleIdOf(bundle);
    if (
      this.entries.size >= (this.init.bundlesMax ?? AGENT_BUNDLES_MAX) ||
      this.bytesHeld + size > (this.init.bytesMax ?? AGENT_BYTES_MAX)
    ) {
      this.stats.deleted++;
      this.report(bundle, 'deleted', ReasonCode.DepletedStorage);
      throw new DtnError(
        DtnErrorCode.Agent,
        'bundle store is full (AGENT_BUNDLES_MAX / AGENT_BYTES_MAX)',
      );
    }
    // Persist before admitting: once accept returns, the bundle survives a crash.
    this.store.put({ id, bytes: encodeBundle(bundle), receivedAtMs });
    this.stats.accepted++;
    this.admit(id, bundle, size, receivedAtMs, true);
    return id;
  }

  private admit(
    id: string,
    bundle: Bundle,
    size: number,
    receivedAtMs: number,
    dispatchNow: boolean,
  ): void {
    const entry: Entry = {
      id,
      bundle,
      size,
      receivedAtMs,
      expiresAtMs: expiryOf(bundle, receivedAtMs),
      sending: false,
    };
    this.entries.set(id, entry);
    this.bytesHeld += size;
    if (dispatchNow) this.dispatch(entry);
  }

  private remove(entry: Entry): void {
    if (!this.entries.delete(entry.id)) return;
    this.bytesHeld -= entry.size;
    this.store.delete(entry.id);
    this.router?.release?.(entry.id);
  }

  private isLocal(eid: Eid): boolean {
    return nodeIdOf(eid) === this.nodeKey;
  }

  private dispatch(entry: Entry): void {
    if (this.clock.now() >= entry.expiresAtMs) {
      this.expire(entry);
      return;
    }
    const p = entry.bundle.primary;
    if (!this.isLocal(p.destination)) {
      void this.forward(entry);
      return;
    }
    if ((p.flags & BundleFlags.AdminRecord) !== 0) {
      this.remove(entry);
      this.stats.delivered++;
      try {
        const r = decodeStatusReport(payloadBlock(entry.bundle).data);
        this.stats.reportsReceived++;
        for (const l of this.statusListeners) l(r);
      } catch (e) {
        this.logger.debug({ err: String(e) }, 'unreadable administrative record');
      }
      return;
    }
    if (p.fragmentOffset !== undefined && p.totalAduLength !== undefined) {
      this.reassemble(entry);
      return;
    }
    if (this.init.security !== undefined && !entry.secured) {
      const r = this.init.security.accept(entry.bundle);
      if (!r.ok) {
        this.logger.warn(
          { id: entry.id, reason: r.reason, err: r.message },
          'BPSec refused bundle',
        );
        this.remove(entry);
        this.stats.securityFailed++;
        this.stats.deleted++;
        this.report(entry.bundle, 'deleted', r.reason);
        return;
      }
      entry.bundle = r.bundle;
      entry.secured = true;
    }
    const reg = this.registrations.find((r) => eidEquals(r.endpoint, p.destination));
    if (reg === undefined) return; // Kept until an application registers (or it expires).
    const delivery: Delivery = {
      id: entry.id,
      bundle: entry.bundle,
      source: p.source,
      payload: payloadBlock(entry.bundle).data,
    };
    if (!reg.offer(delivery)) return;
    this.remove(entry);
    this.deliveredIds.add(entry.id);
    if (this.deliveredIds.size > AGENT_BUNDLES_MAX)
      this.deliveredIds.delete(this.deliveredIds.values().next().value as string);
    this.stats.delivered++;
    if ((p.flags & BundleFlags.ReportDelivery) !== 0)
      this.report(entry.bundle, 'delivered', ReasonCode.NoInformation);
  }

  private reassemble(entry: Entry): void {
    const p = entry.bundle.primary;
    const key = `${formatEid(p.source)}/${p.creationTime}/${p.sequence}`;
    let r = this.reassemblies.get(key);
    if (r === undefined) {
      r = new Reassembly(p.totalAduLength ?? 0);
      this.reassemblies.set(key, r);
    }
    const whole = r.add(entry.bundle);
    if (whole === undefined) return;
    this.reassemblies.delete(key);
    for (const e of [...this.entries.values()]) {
      const q = e.bundle.primary;
      if (
        q.fragmentOffset !== undefined &&
        `${formatEid(q.source)}/${q.creationTime}/${q.sequence}` === key
      )
        this.remove(e);
    }
    this.stats.reassembled++;
    this.accept(whole, encodeBundle(whole).length, entry.receivedAtMs);
  }

  private expire(entry: Entry): void {
    this.remove(entry);
    this.stats.expired++;
    this.stats.deleted++;
    this.report(entry.bundle, 'deleted', ReasonCode.LifetimeExpired);
  }

  /** Retries waiting bundles and expires old ones. */
  pump(): void {
    if (!this.running) return;
    const now = this.clock.now();
    let sends = 0;
    for (const e of [...this.entries.values()]) {
      if (now >= e.expiresAtMs) {
        this.expire(e);
        continue;
      }
      if (e.sending || this.isLocal(e.bundle.primary.destination)) continue;
      if (++sends > AGENT_SENDS_PER_PUMP_MAX) break;
      void this.forward(e);
    }
  }

  private linkFor(destNode: string, entry: Entry): ConvergenceLink | undefined {
    const direct = this.links.get(destNode);
    if (direct?.isUp()) return direct;
    const hop = this.router?.nextHop(destNode, this.clock.now(), {
      id: entry.id,
      bytes: entry.size,
    });
    const link = hop === undefined ? undefined : this.links.get(hop);
    return link?.isUp() ? link : undefined;
  }

  /** Updates the blocks a forwarder owns: previous node, bundle age, hop count (§5.4). */
  private outgoing(entry: Entry): Bundle | undefined {
    let b = entry.bundle;
    const blocks = [...b.blocks];
    const crcType = b.primary.crcType === CrcType.None ? CrcType.Crc32c : b.primary.crcType;
    const setBlock = (type: number, data: Uint8Array): void => {
      const i = blocks.findIndex((x) => x.type === type);
      if (i >= 0) blocks[i] = { ...(blocks[i] as CanonicalBlock), data };
      else
        blocks.splice(blocks.length - 1, 0, {
          type,
          number: nextBlockNumber({ primary: b.primary, blocks }),
          flags: 0,
          crcType,
          data,
        });
    };
    setBlock(BlockType.PreviousNode, previousNodeData(this.nodeId));
    const age = findBlock(b, BlockType.BundleAge);
    if (age !== undefined)
      setBlock(
        BlockType.BundleAge,
        bundleAgeData(readBundleAge(age) + Math.max(0, this.clock.now() - entry.receivedAtMs)),
      );
    const hop = findBlock(b, BlockType.HopCount);
    if (hop !== undefined) {
      const { limit, count } = readHopCount(hop);
      if (count + 1 > limit) return undefined;
      setBlock(BlockType.HopCount, hopCountData(limit, count + 1));
    }
    b = { primary: b.primary, blocks };
    return b;
  }

  private async forward(entry: Entry): Promise<void> {
    if (entry.sending) return;
    const link = this.linkFor(nodeIdOf(entry.bundle.primary.destination), entry);
    if (link === undefined) return; // No contact now: keep it (store-and-forward).
    const out = this.outgoing(entry);
    if (out === undefined) {
      this.remove(entry);
      this.stats.hopLimitExceeded++;
      this.stats.deleted++;
      this.report(entry.bundle, 'deleted', ReasonCode.HopLimitExceeded);
      return;
    }
    let pieces = [out];
    const bytes = encodeBundle(out);
    if (link.maxBundleBytes !== undefined && bytes.length > link.maxBundleBytes) {
      if ((out.primary.flags & BundleFlags.MustNotFragment) !== 0) return;
      const overhead = bytes.length - payloadBlock(out).data.length + 64;
      const room = link.maxBundleBytes - overhead;
      if (room < 1) return;
      pieces = fragmentBundle(out, room);
      this.stats.fragmented += pieces.length;
    }
    entry.sending = true;
    try {
      for (const piece of pieces)
        await link.send(pieces.length === 1 ? bytes : encodeBundle(piece));
    } catch (e) {
      entry.sending = false;
      this.logger.debug(
        { id: entry.id, peer: link.peer, err: String(e) },
        'forwarding failed; will retry',
      );
      return;
    }
    this.router?.sent?.(entry.id);
    this.remove(entry);
    this.stats.forwarded++;
    if ((entry.bundle.primary.flags & BundleFlags.ReportForwarding) !== 0)
      this.report(entry.bundle, 'forwarded', ReasonCode.NoInformation);
  }

  /** Sends a status report about `b` if its flags ask for one (RFC 9171 §5.x "report"). */
  private report(b: Bundle, kind: StatusKind, reason: number): void {
    const p = b.primary;
    const wanted = {
      received: BundleFlags.ReportReception,
      forwarded: BundleFlags.ReportForwarding,
      delivered: BundleFlags.ReportDelivery,
      deleted: BundleFlags.ReportDeletion,
    }[kind];
    // Never report on reports (RFC 9171 §5.1), and only when asked to.
    if (
      (p.flags & wanted) === 0 ||
      (p.flags & BundleFlags.AdminRecord) !== 0 ||
      isNullEid(p.reportTo)
    )
      return;
    const timeMs =
      (p.flags & BundleFlags.StatusTimeRequested) !== 0 ? dtnTimeOf(this.clock.now()) : 0;
    const rec: StatusReport = {
      kind,
      timeMs,
      reason,
      source: p.source,
      creationTime: p.creationTime,
      sequence: p.sequence,
      ...(p.fragmentOffset === undefined
        ? {}
        : { fragmentOffset: p.fragmentOffset, fragmentLength: payloadBlock(b).data.length }),
    };
    this.stats.reportsSent++;
    try {
      this.send({
        destination: p.reportTo,
        payload: encodeStatusReport(rec),
        lifetimeMs: Math.max(60_000, p.lifetimeMs),
        flags: BundleFlags.AdminRecord,
      });
    } catch (e) {
      this.logger.debug({ err: String(e) }, 'status report not sent');
    }
  }
}

/** When a bundle's lifetime ends, in Unix ms (RFC 9171 §4.2.2 creation time + lifetime). */
function expiryOf(b: Bundle, receivedAtMs: number): number {
  const p = b.primary;
  if (p.creationTime !== 0) return DTN_EPOCH_UNIX_MS + p.creationTime + p.lifetimeMs;
  const age = findBlock(b, BlockType.BundleAge);
  const ageMs = age === undefined ? 0 : readBundleAge(age);
  return receivedAtMs + p.lifetimeMs - ageMs;
}

assert(AGENT_PUMP_INTERVAL_MS > 0, 'pump interval');
