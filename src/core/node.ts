/**
 * The node runtime: one {@link GenesisNode} per topology member. A node has an identity (its
 * hierarchical name), an idempotent lifecycle, heartbeats to its parent over the transport, and
 * liveness tracking of its children. Later layers attach as {@link NodeService}s — the kernel,
 * the blockstore, the learner, the twin — and receive a {@link NodeContext} with every
 * component injected.
 */
import type { Registry } from 'prom-client';
import type { Clock, TimerHandle } from './clock.ts';
import { assert, GenesisError } from './errors.ts';
import {
  HEARTBEAT_DEAD_PERIODS,
  HEARTBEAT_INTERVAL_MS_DEFAULT,
  HEARTBEAT_SUSPECT_PERIODS,
} from './limits.ts';
import type { Logger } from './logger.ts';
import type { Rng } from './rng.ts';
import type { Level, TopologyNode } from './topology.ts';
import type { Message, Subscription, Transport } from './transport.ts';

/** Everything a service attached to a node receives. */
export interface NodeContext {
  readonly name: string;
  readonly level: Level;
  readonly parent: string | undefined;
  readonly children: readonly string[];
  readonly region: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly logger: Logger;
  readonly transport: Transport;
  readonly metrics: Registry;
  /** This node's own directory under the data dir; undefined when running in memory only. */
  readonly dataDir: string | undefined;
}

/** A layer's per-node component. `start` and `stop` are called once each, in attach order
 * (stop in reverse). */
export interface NodeService {
  readonly name: string;
  start(ctx: NodeContext): void | Promise<void>;
  stop(): void | Promise<void>;
  /** Counters shown by `genesis up` and in `--json` summaries. */
  status?(): Readonly<Record<string, number | string>>;
}

/** Liveness of a child as its parent sees it. */
export type Liveness = 'alive' | 'suspect' | 'dead';

/** A membership change observed by a parent. */
export interface MembershipEvent {
  readonly parent: string;
  readonly child: string;
  readonly from: Liveness | 'unknown';
  readonly to: Liveness;
  readonly atMs: number;
}

/** Subject a node publishes its heartbeats on. */
export function heartbeatSubject(name: string): string {
  return `genesis.hb.${name}`;
}

/** Subject pattern a node subscribes to for its children's heartbeats. */
export function childHeartbeatPattern(node: TopologyNode): string {
  return node.level === 'global' ? 'genesis.hb.*' : `genesis.hb.${node.name}.*`;
}

/** Subject on which a parent publishes membership events. */
export function membershipSubject(parent: string): string {
  return `genesis.members.${parent}`;
}

/** Options of a {@link GenesisNode}. */
export interface NodeInit {
  readonly node: TopologyNode;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly logger: Logger;
  readonly transport: Transport;
  readonly metrics: Registry;
  readonly dataDir: string | undefined;
  readonly heartbeatIntervalMs?: number;
  readonly onMembership?: (event: MembershipEvent) => void;
  readonly onHeartbeatSent?: () => void;
}

const HEARTBEAT_BYTES = 12;

interface ChildState {
  lastSeenMs: number;
  liveness: Liveness | 'unknown';
  lastSeq: number;
}

/** One member of the fabric. */
export class GenesisNode {
  readonly context: NodeContext;
  private readonly services: NodeService[] = [];
  private readonly started: NodeService[] = [];
  private readonly intervalMs: number;
  private readonly children = new Map<string, ChildState>();
  private state: 'idle' | 'starting' | 'running' | 'stopping' = 'idle';
  private heartbeatTimer: TimerHandle | undefined;
  private checkTimer: TimerHandle | undefined;
  private sub: Subscription | undefined;
  private seq = 0;
  private heartbeatsSent = 0;
  private heartbeatsReceived = 0;
  private heartbeatsRejected = 0;

  constructor(private readonly init: NodeInit) {
    const n = init.node;
    this.intervalMs = init.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS_DEFAULT;
    assert(this.intervalMs > 0, 'heartbeat interval');
    this.context = {
      name: n.name,
      level: n.level,
      parent: n.parent,
      children: n.children,
      region: n.region,
      labels: n.labels,
      clock: init.clock,
      rng: init.rng,
      logger: init.logger,
      transport: init.transport,
      metrics: init.metrics,
      dataDir: init.dataDir,
    };
  }

  get name(): string {
    return this.context.name;
  }

  get level(): Level {
    return this.context.level;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Attaches a service; only before start. */
  attach(service: NodeService): this {
    if (this.state !== 'idle') {
      throw new GenesisError(
        'NODE_STATE',
        `cannot attach ${service.name} to ${this.name} while ${this.state}`,
      );
    }
    this.services.push(service);
    return this;
  }

  /** The attached services, in attach order. */
  get attached(): readonly NodeService[] {
    return this.services;
  }

  /** Starts heartbeats, liveness tracking and every service. Idempotent. If a service fails
   * to start, the ones already started are stopped and the error is rethrown. */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'starting';
    try {
      this.startLiveness();
      for (const s of this.services) {
        await s.start(this.context);
        this.started.push(s);
      }
      this.startHeartbeats();
      this.state = 'running';
    } catch (e) {
      this.state = 'running';
      await this.stop();
      throw e;
    }
  }

  /** Stops services in reverse order, then timers and subscriptions. Idempotent. */
  async stop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    if (this.heartbeatTimer) this.init.clock.clearTimer(this.heartbeatTimer);
    if (this.checkTimer) this.init.clock.clearTimer(this.checkTimer);
    this.sub?.unsubscribe();
    for (const s of this.started.splice(0).reverse()) {
      try {
        await s.stop();
      } catch (e) {
        this.init.logger.error(
          { node: this.name, service: s.name, err: String(e) },
          'service failed to stop',
        );
      }
    }
    this.state = 'idle';
  }

  /** Liveness of each child, as last computed. */
  childLiveness(): ReadonlyMap<string, Liveness | 'unknown'> {
    const out = new Map<string, Liveness | 'unknown'>();
    for (const [k, v] of this.children) out.set(k, v.liveness);
    return out;
  }

  /** Counters for status displays. */
  status(): Record<string, number> {
    return {
      heartbeatsSent: this.heartbeatsSent,
      heartbeatsReceived: this.heartbeatsReceived,
      heartbeatsRejected: this.heartbeatsRejected,
    };
  }

  private startHeartbeats(): void {
    if (this.context.parent === undefined) return;
    const subject = heartbeatSubject(this.name);
    const beat = (): void => {
      const buf = new Uint8Array(HEARTBEAT_BYTES);
      const view = new DataView(buf.buffer);
      view.setUint32(0, ++this.seq);
      view.setFloat64(4, this.init.clock.now());
      this.init.transport.publish(subject, buf);
      this.heartbeatsSent++;
      this.init.onHeartbeatSent?.();
    };
    beat();
    // Jitter the phase so thousands of tiles do not beat in the same instant.
    const phase = this.init.rng.int(0, Math.max(0, this.intervalMs - 1));
    this.heartbeatTimer = this.init.clock.setTimeout(() => {
      if (this.state !== 'running') return;
      beat();
      this.heartbeatTimer = this.init.clock.setInterval(beat, this.intervalMs);
    }, phase);
  }

  private startLiveness(): void {
    if (this.context.children.length === 0) return;
    const now = this.init.clock.now();
    for (const c of this.context.children)
      this.children.set(c, { lastSeenMs: now, liveness: 'unknown', lastSeq: 0 });
    const node: TopologyNode = { ...this.init.node };
    this.sub = this.init.transport.subscribe(
      childHeartbeatPattern(node),
      (m) => this.onHeartbeat(m),
      {
        // Heartbeats are only useful fresh: keep the newest.
        pendingMessagesMax: Math.max(64, this.context.children.length * 4),
        dropPolicy: 'drop-oldest',
      },
    );
    this.checkTimer = this.init.clock.setInterval(() => this.checkChildren(), this.intervalMs);
  }

  private onHeartbeat(m: Message): void {
    const child = m.subject.slice('genesis.hb.'.length);
    const state = this.children.get(child);
    if (state === undefined || m.data.byteLength !== HEARTBEAT_BYTES) {
      // A name we did not admit, or a malformed beat: counted, never trusted.
      this.heartbeatsRejected++;
      return;
    }
    const seq = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength).getUint32(0);
    if (seq <= state.lastSeq && seq !== 1) {
      this.heartbeatsRejected++;
      return;
    }
    state.lastSeq = seq;
    this.heartbeatsReceived++;
    state.lastSeenMs = this.init.clock.now();
    if (state.liveness !== 'alive') this.transition(child, state, 'alive');
  }

  private checkChildren(): void {
    const now = this.init.clock.now();
    for (const [child, state] of this.children) {
      const silentMs = now - state.lastSeenMs;
      if (silentMs > HEARTBEAT_DEAD_PERIODS * this.intervalMs) {
        if (state.liveness !== 'dead') this.transition(child, state, 'dead');
      } else if (silentMs > HEARTBEAT_SUSPECT_PERIODS * this.intervalMs) {
        if (state.liveness === 'alive') this.transition(child, state, 'suspect');
      }
    }
  }

  private transition(child: string, state: ChildState, to: Liveness): void {
    const event: MembershipEvent = {
      parent: this.name,
      child,
      from: state.liveness,
      to,
      atMs: this.init.clock.now(),
    };
    state.liveness = to;
    this.init.onMembership?.(event);
    if (this.state === 'running' || this.state === 'starting') {
      this.init.transport.publish(
        membershipSubject(this.name),
        new TextEncoder().encode(JSON.stringify(event)),
      );
    }
  }
}
