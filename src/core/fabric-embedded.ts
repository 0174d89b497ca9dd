/**
 * The embedded fabric: every node of a topology in one process over one transport (in-process
 * by default). It is what `genesis up` boots. Layers attach services through plugins before
 * start; start is all-or-nothing — if any node fails to start, every started node is stopped,
 * so no half-started fabric is ever left running.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { Clock } from './clock.ts';
import { SystemClock } from './clock.ts';
import { GenesisError } from './errors.ts';
import type { Logger } from './logger.ts';
import { silentLogger } from './logger.ts';
import { counter, createMetricsRegistry, gauge } from './metrics.ts';
import { GenesisNode, type MembershipEvent } from './node.ts';
import type { Rng } from './rng.ts';
import { CryptoRng } from './rng.ts';
import { LEVELS, type Level, type Topology, type TopologyNode } from './topology.ts';
import type { Transport } from './transport.ts';
import { InprocTransport } from './transport-inproc.ts';

/** Components and options of an {@link EmbeddedFabric}. */
export interface EmbeddedFabricInit {
  readonly topology: Topology;
  readonly clock?: Clock;
  readonly rng?: Rng;
  readonly logger?: Logger;
  readonly metrics?: Registry;
  readonly transport?: Transport;
  /** Root data dir; each node gets `<dataDir>/nodes/<name>`. Undefined: memory only. */
  readonly dataDir?: string;
  readonly heartbeatIntervalMs?: number;
}

/** Boot progress, reported every few nodes. */
export interface BootProgress {
  readonly started: number;
  readonly total: number;
  readonly level: Level;
}

/** A fabric-wide summary. */
export interface FabricStats {
  readonly nodesUp: Record<Level, number>;
  readonly heartbeatsSent: number;
  readonly heartbeatsReceived: number;
  readonly membershipEvents: number;
  readonly dead: number;
  readonly transportDropped: number;
  readonly transportErrors: number;
}

/** Every node of a topology in one process. */
export class EmbeddedFabric {
  readonly topology: Topology;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly transport: Transport;
  readonly dataDir: string | undefined;
  readonly nodes = new Map<string, GenesisNode>();
  private readonly membershipListeners: ((e: MembershipEvent) => void)[] = [];
  private heartbeatsSent = 0;
  private membershipEvents = 0;
  private readonly dead = new Set<string>();
  private running = false;

  constructor(init: EmbeddedFabricInit) {
    this.topology = init.topology;
    this.clock = init.clock ?? new SystemClock();
    this.rng = init.rng ?? new CryptoRng();
    this.logger = init.logger ?? silentLogger();
    this.metrics = init.metrics ?? createMetricsRegistry();
    this.transport =
      init.transport ?? new InprocTransport({ clock: this.clock, logger: this.logger });
    this.dataDir = init.dataDir;
    const hbCounter = counter(
      this.metrics,
      'genesis_heartbeats_sent_total',
      'Heartbeats sent by nodes',
    );
    const memberCounter = counter(
      this.metrics,
      'genesis_membership_events_total',
      'Membership transitions',
      ['to'],
    );
    for (const node of this.topology.nodes.values()) {
      this.nodes.set(
        node.name,
        new GenesisNode({
          node,
          clock: this.clock,
          rng: this.rng,
          logger: this.logger,
          transport: this.transport,
          metrics: this.metrics,
          dataDir: this.dataDir === undefined ? undefined : join(this.dataDir, 'nodes', node.name),
          ...(init.heartbeatIntervalMs === undefined
            ? {}
            : { heartbeatIntervalMs: init.heartbeatIntervalMs }),
          onHeartbeatSent: () => {
            this.heartbeatsSent++;
            hbCounter.inc();
          },
          onMembership: (e) => {
            this.membershipEvents++;
            memberCounter.inc({ to: e.to });
            if (e.to === 'dead') this.dead.add(e.child);
            else this.dead.delete(e.child);
            for (const l of this.membershipListeners) l(e);
          },
        }),
      );
    }
    const up = gauge(this.metrics, 'genesis_nodes_up', 'Nodes running, per level', ['level']);
    up.reset();
  }

  /** Nodes of one level, in topology order. */
  nodesAt(level: Level): GenesisNode[] {
    return [...this.nodes.values()].filter((n) => n.level === level);
  }

  /** The topology entry of a node. */
  node(name: string): TopologyNode {
    const n = this.topology.nodes.get(name);
    if (n === undefined) throw new GenesisError('FABRIC_UNKNOWN_NODE', `no node named "${name}"`);
    return n;
  }

  /** Subscribes to membership transitions seen anywhere in the fabric. */
  onMembership(listener: (e: MembershipEvent) => void): void {
    this.membershipListeners.push(listener);
  }

  /**
   * Starts every node, parents before children so first heartbeats find their listener.
   * All-or-nothing: on failure every started node is stopped and the error rethrown.
   */
  async start(onProgress?: (p: BootProgress) => void): Promise<void> {
    if (this.running) return;
    if (this.dataDir !== undefined) {
      try {
        mkdirSync(join(this.dataDir, 'nodes'), { recursive: true });
      } catch (e) {
        throw new GenesisError(
          'FABRIC_DATA_DIR_UNWRITABLE',
          `cannot create data dir ${this.dataDir}: ${(e as Error).message}`,
          {
            cause: e,
            details: { dataDir: this.dataDir },
          },
        );
      }
    }
    const started: GenesisNode[] = [];
    const total = this.nodes.size;
    const every = Math.max(1, Math.floor(total / 50));
    try {
      for (const level of LEVELS) {
        for (const node of this.nodesAt(level)) {
          await node.start();
          started.push(node);
          if (started.length % every === 0 || started.length === total)
            onProgress?.({ started: started.length, total, level });
        }
      }
      this.running = true;
      this.updateGauge();
    } catch (e) {
      for (const n of started.reverse()) await n.stop();
      throw e;
    }
  }

  /** Stops every node, children first. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const level of [...LEVELS].reverse()) {
      for (const node of this.nodesAt(level)) await node.stop();
    }
    this.updateGauge();
    await this.transport.flush();
  }

  /** A summary for status lines and `--json`. */
  stats(): FabricStats {
    const nodesUp: Record<Level, number> = { global: 0, region: 0, hub: 0, pod: 0, tile: 0 };
    let received = 0;
    for (const n of this.nodes.values()) {
      if (n.running) nodesUp[n.level]++;
      received += n.status().heartbeatsReceived ?? 0;
    }
    const t = this.transport.stats();
    return {
      nodesUp,
      heartbeatsSent: this.heartbeatsSent,
      heartbeatsReceived: received,
      membershipEvents: this.membershipEvents,
      dead: this.dead.size,
      transportDropped: t.dropped,
      transportErrors: t.handlerErrors,
    };
  }

  private updateGauge(): void {
    const g = gauge(this.metrics, 'genesis_nodes_up', 'Nodes running, per level', ['level']);
    const s = this.stats();
    for (const level of LEVELS) g.set({ level }, s.nodesUp[level]);
  }
}
