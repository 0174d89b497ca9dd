/**
 * The fabric's interplanetary tier: regions joined by DTN links instead of NATS gateways. Each
 * region root runs a bundle agent (`ipn:N.0`, N by region order); scheduled contacts from the
 * topology's `dtnLinks` become in-process links with their one-way light time, so the tier runs
 * in real time under `genesis up` and in virtual time in tests. Two application channels ride on
 * it: CRDT document sync (any replica with Automerge-style sync messages, such as the store
 * layer's `CrdtReplica`) and opaque byte messages (federated-learning updates).
 */
import type { Clock, Logger, Topology } from '../core/index.ts';
import { BundleAgent, type Delivery, StaticRouter } from './agent.ts';
import { type ContactWindow, InprocNetwork } from './cl-inproc.ts';
import { type Eid, ipn } from './eid.ts';
import { DtnError, DtnErrorCode } from './errors.ts';
import type { BundleStore } from './store.ts';

/** Service number of CRDT document sync bundles. */
export const SERVICE_CRDT_SYNC = 10;
/** Service number of federated-learning update bundles. */
export const SERVICE_LEARN_UPDATE = 11;
/** Lifetime of tier bundles: long enough to wait out several missed contacts. */
export const TIER_BUNDLE_LIFETIME_MS = 6 * 3_600_000;

/** Anything that syncs by exchanging opaque messages per peer (Automerge's sync protocol). */
export interface SyncReplica {
  generateSyncMessage(peer: string): Uint8Array | null;
  receiveSyncMessage(peer: string, bytes: Uint8Array): void;
}

/** Options of {@link InterplanetaryTier}. */
export interface TierInit {
  readonly topology: Topology;
  readonly clock: Clock;
  readonly logger?: Logger;
  /** Absolute time the contact schedules count from (Unix ms); default: now. */
  readonly epochMs?: number;
  /** A store per region (e.g. a FileBundleStore under the region's data dir). */
  readonly storeFor?: (region: string) => BundleStore | undefined;
}

/** Counters of the tier for status lines. */
export interface TierStatus {
  readonly inFlight: number;
  readonly delivered: number;
  readonly expired: number;
  readonly forwarded: number;
}

/** Region agents and the DTN links between them. */
export class InterplanetaryTier {
  readonly agents = new Map<string, BundleAgent>();
  readonly network: InprocNetwork;
  private readonly numbers = new Map<string, number>();

  constructor(init: TierInit) {
    this.network = new InprocNetwork(init.clock);
    const regions = [...init.topology.nodes.values()]
      .filter((n) => n.level === 'region')
      .map((n) => n.name);
    regions.forEach((r, i) => {
      this.numbers.set(r, i + 1);
    });
    const linked = new Set(init.topology.dtnLinks.flatMap((l) => [l.from, l.to]));
    for (const r of regions) {
      if (!linked.has(r)) continue;
      const n = this.numbers.get(r) as number;
      const store = init.storeFor?.(r);
      this.agents.set(
        r,
        new BundleAgent({
          nodeId: ipn(n, 0),
          clock: init.clock,
          ...(init.logger === undefined ? {} : { logger: init.logger }),
          ...(store === undefined ? {} : { store }),
        }),
      );
    }
    const epoch = init.epochMs ?? init.clock.now();
    for (const link of init.topology.dtnLinks) {
      const a = this.agent(link.from);
      const b = this.agent(link.to);
      const windows: ContactWindow[] = link.contacts.map((c) => ({
        startMs: epoch + c.startSec * 1000,
        endMs: epoch + c.endSec * 1000,
      }));
      const rate = Math.min(...link.contacts.map((c) => c.rateBitsPerSec));
      this.network.connect(a, b, {
        owltMs: link.owltSec * 1000,
        rateBitsPerSec: Number.isFinite(rate) ? rate : 1e6,
        windows,
      });
    }
    // Routes: every region reaches the others through its first DTN neighbour (the topology
    // joins each DTN region to one terrestrial region, so one hop is the common case).
    for (const [name, agent] of this.agents) {
      const routes = new Map<string, string>();
      for (const link of init.topology.dtnLinks) {
        const other = link.from === name ? link.to : link.to === name ? link.from : undefined;
        if (other === undefined) continue;
        for (const target of this.agents.keys())
          if (target !== name && !routes.has(`ipn:${this.numbers.get(target)}.0`))
            routes.set(`ipn:${this.numbers.get(target)}.0`, `ipn:${this.numbers.get(other)}.0`);
      }
      agent.setRouter(new StaticRouter(routes));
    }
  }

  /** The agent of a region. @throws {DtnError} for a region without DTN links. */
  agent(region: string): BundleAgent {
    const a = this.agents.get(region);
    if (a === undefined)
      throw new DtnError(DtnErrorCode.Agent, `region "${region}" has no DTN agent`);
    return a;
  }

  /** The endpoint of `service` in `region`. */
  endpoint(region: string, service: number): Eid {
    const n = this.numbers.get(region);
    if (n === undefined) throw new DtnError(DtnErrorCode.Agent, `unknown region "${region}"`);
    return ipn(n, service);
  }

  /** Starts every agent (loads their stores). */
  start(): void {
    for (const a of this.agents.values()) a.start();
  }

  /** Stops every agent and cancels contact timers. */
  stop(): void {
    this.network.close();
    for (const a of this.agents.values()) a.stop();
  }

  /** Counters across the tier. */
  status(): TierStatus {
    let held = 0;
    let delivered = 0;
    let expired = 0;
    let forwarded = 0;
    for (const a of this.agents.values()) {
      held += a.waiting;
      delivered += a.stats.delivered;
      expired += a.stats.expired;
      forwarded += a.stats.forwarded;
    }
    return { inFlight: held + this.network.stats.onWire, delivered, expired, forwarded };
  }

  /**
   * Sends opaque bytes (a federated-learning update, for instance) from one region to another
   * as a bundle; the seam for the learn layer, which cannot import dtn (same rank).
   */
  sendOpaque(from: string, to: string, service: number, bytes: Uint8Array): string {
    return this.agent(from).send({
      source: this.endpoint(from, service),
      destination: this.endpoint(to, service),
      payload: bytes,
      lifetimeMs: TIER_BUNDLE_LIFETIME_MS,
    });
  }

  /** Receives opaque bytes for `service` in `region`. */
  onOpaque(
    region: string,
    service: number,
    handler: (bytes: Uint8Array, from: Eid, d: Delivery) => void,
  ): () => void {
    const reg = this.agent(region).register(this.endpoint(region, service), (d) =>
      handler(d.payload, d.source, d),
    );
    return () => reg.close();
  }

  /**
   * Keeps `replica` in `region` in sync with the replicas of the same document in `peers` over
   * bundles: a sync message goes out after every local change ({@link CrdtLink.changed}) and
   * in answer to every message received, until Automerge says the peer is up to date.
   */
  syncCrdt(
    region: string,
    peers: readonly string[],
    replica: SyncReplica,
    docId = 'doc',
  ): CrdtLink {
    const service = SERVICE_CRDT_SYNC;
    const send = (peer: string): void => {
      const msg = replica.generateSyncMessage(`${peer}/${docId}`);
      if (msg !== null) this.sendOpaque(region, peer, service, frame(docId, msg));
    };
    const off = this.onOpaque(region, service, (bytes, from) => {
      const f = unframe(bytes);
      if (f === undefined || f.docId !== docId) return;
      const peer = [...this.numbers.entries()].find(
        ([, n]) => from.scheme === 'ipn' && from.node === n,
      )?.[0];
      if (peer === undefined || !peers.includes(peer)) return;
      replica.receiveSyncMessage(`${peer}/${docId}`, f.msg);
      send(peer);
    });
    return {
      changed: () => {
        for (const p of peers) send(p);
      },
      close: off,
    };
  }
}

/** The handle of one CRDT document synced over DTN. */
export interface CrdtLink {
  /** Call after a local change to send it. */
  changed(): void;
  close(): void;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function frame(docId: string, msg: Uint8Array): Uint8Array {
  const id = enc.encode(docId);
  const out = new Uint8Array(2 + id.length + msg.length);
  out[0] = id.length >> 8;
  out[1] = id.length & 0xff;
  out.set(id, 2);
  out.set(msg, 2 + id.length);
  return out;
}

function unframe(b: Uint8Array): { docId: string; msg: Uint8Array } | undefined {
  if (b.length < 2) return undefined;
  const n = ((b[0] as number) << 8) | (b[1] as number);
  if (2 + n > b.length) return undefined;
  return { docId: dec.decode(b.subarray(2, 2 + n)), msg: b.subarray(2 + n) };
}
