/**
 * Test harness of the fabric's integration tests: every nats-server of a topology (region,
 * region store, hub, pod) on free loopback ports with the configs `planNatsServers` writes,
 * monitoring on, and optionally a {@link WanRelay} in front of a parent's leafnode listener so
 * a test can partition one child at a time.
 *
 * Why one relay per parent rather than one per child: a parent advertises one leafnode address
 * to its children (nats-server sends it in every INFO and children add it to their reconnect
 * list). With a relay per child, the parent's advertised address would be its real listener
 * and a cut child would reconnect straight to it; that is what made the first leaf-cut test
 * heal itself within a second or two. Here every child dials the relay, the parent advertises
 * the relay, and the relay cuts a child by the server name in its leaf CONNECT.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Topology } from '../../src/core/index.ts';
import {
  freePort,
  type NatsServerPlan,
  type NatsServerPorts,
  NatsServerProcess,
  NodeProcess,
  type NodeProcessOptions,
  planNatsServers,
} from '../../src/fabric/index.ts';

/** How tests start `genesis node`: the fabric command module through the tsx runner. */
const NODE_ENTRY = [
  fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url)),
  fileURLToPath(new URL('../../src/cli/commands/fabric.ts', import.meta.url)),
];

/** Starts a `genesis node` process, recorded in `procs` so the test can stop every one. */
export function startNode(procs: NodeProcess[], o: Omit<NodeProcessOptions, 'entry'>): NodeProcess {
  const p = new NodeProcess({ ...o, entry: NODE_ENTRY });
  procs.push(p);
  return p;
}

/** Polls an async condition every 100 ms until it holds (a throw counts as not yet). */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not there yet.
    }
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Bytes a relay buffers from a child before its CONNECT line (the CONNECT is ~500 B). */
const RELAY_CONNECT_BYTES_MAX = 16 * 1024;

/** A TCP relay in front of one parent's leafnode port: the WAN its children cross. */
export class WanRelay {
  private readonly links = new Map<Socket, string | undefined>();
  /** Upstream socket of each child link. */
  private readonly upstreams = new Map<Socket, Socket>();
  private readonly cutNames = new Set<string>();
  private readonly silenced = new Set<Socket>();
  private server: Server | undefined;
  /** Connections refused per child server name (dialled while cut). */
  readonly refused = new Map<string, number>();
  /** Connections accepted per child server name. */
  readonly accepted = new Map<string, number>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    this.server = createServer((child) => this.onChild(child));
    this.port = await new Promise<number>((resolve) => {
      this.server?.listen(0, '127.0.0.1', () => {
        const a = this.server?.address();
        resolve(typeof a === 'object' && a !== null ? a.port : 0);
      });
    });
  }

  /** Children (server names) with an open link through the relay right now. */
  active(): string[] {
    return [...this.links.values()].filter((n): n is string => n !== undefined);
  }

  /**
   * Partitions `name` until {@link heal}: its new links are refused, and its open links are
   * reset (both ends see the close at once), or with `silent` black-holed: kept open but
   * every byte dropped, as a WAN that goes dark looks (only the servers' pings notice).
   */
  cut(name: string, options: { silent?: boolean } = {}): void {
    this.cutNames.add(name);
    for (const [s, n] of this.links) {
      if (n !== name) continue;
      const up = this.upstreams.get(s);
      if (options.silent !== true || up === undefined) {
        s.destroy();
        continue;
      }
      s.unpipe(up);
      up.unpipe(s);
      const drop = (): void => undefined;
      s.on('data', drop);
      up.on('data', drop);
      this.silenced.add(s);
    }
  }

  /** Lets `name` through again (black-holed links are closed: the servers re-dial). */
  heal(name: string): void {
    this.cutNames.delete(name);
    for (const s of this.silenced) if (this.links.get(s) === name) s.destroy();
  }

  async stop(): Promise<void> {
    for (const s of this.links.keys()) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private onChild(child: Socket): void {
    // The parent speaks first (INFO); the child answers CONNECT {..., "name": <server_name>}.
    const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
    this.links.set(child, undefined);
    this.upstreams.set(child, upstream);
    const close = (): void => {
      child.destroy();
      upstream.destroy();
      this.links.delete(child);
      this.upstreams.delete(child);
      this.silenced.delete(child);
    };
    for (const s of [child, upstream]) {
      s.on('error', close);
      s.on('close', close);
    }
    upstream.pipe(child);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf('\r\n');
      if (nl < 0) {
        if (head.length > RELAY_CONNECT_BYTES_MAX) close();
        return;
      }
      child.off('data', onData);
      const line = head.subarray(0, nl).toString('utf8');
      let name = '?';
      if (line.startsWith('CONNECT ')) {
        try {
          name = String((JSON.parse(line.slice(8)) as { name?: unknown }).name ?? '?');
        } catch {
          // Not JSON: name stays '?'.
        }
      }
      if (this.cutNames.has(name)) {
        this.refused.set(name, (this.refused.get(name) ?? 0) + 1);
        close();
        return;
      }
      this.accepted.set(name, (this.accepted.get(name) ?? 0) + 1);
      this.links.set(child, name);
      upstream.write(head);
      child.pipe(upstream);
    };
    child.on('data', onData);
  }
}

/** Every server of a topology, started. */
export interface FabricServers {
  readonly dir: string;
  readonly plans: ReadonlyMap<string, NatsServerPlan>;
  readonly servers: ReadonlyMap<string, NatsServerProcess>;
  /** Relays in front of the leafnode listeners of the parents listed in `relayed`. */
  readonly relays: ReadonlyMap<string, WanRelay>;
  /** Client URL of a server (region, store, hub or pod name). */
  url(node: string): string;
  /** GET a monitoring endpoint of a server (`varz`, `leafz`, `gatewayz`, `jsz`). */
  monitor(node: string, endpoint: string): Promise<Record<string, unknown>>;
  /** kill -9 a server and start it again with the same config and JetStream store. */
  restart(node: string, downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Options of {@link startFabricServers}. */
export interface FabricServersOptions {
  /** Parents whose leafnode listener is reached through a {@link WanRelay}. */
  readonly relayed?: readonly string[];
  /** Start only the servers this accepts (default all). */
  readonly only?: (plan: NatsServerPlan) => boolean;
}

const ORDER = ['region', 'store', 'hub', 'pod'];

/** Starts the servers of `topology` on free ports, parents first. */
export async function startFabricServers(
  topology: Topology,
  options: FabricServersOptions = {},
): Promise<FabricServers> {
  const dir = mkdtempSync(join(tmpdir(), 'genesis-fabric-'));
  // First pass: which servers exist and which listeners they need.
  const shape = planNatsServers(topology, { storeRoot: dir, basePort: 20_000 });
  const ports = new Map<string, NatsServerPorts>();
  for (const p of shape) {
    ports.set(p.node, {
      client: await freePort(),
      leaf: p.ports.leaf === undefined ? undefined : await freePort(),
      gateway: p.ports.gateway === undefined ? undefined : await freePort(),
      http: await freePort(),
    });
  }
  const relays = new Map<string, WanRelay>();
  const overrides = new Map<string, string>();
  for (const parent of options.relayed ?? []) {
    const leaf = ports.get(parent)?.leaf;
    if (leaf === undefined) throw new Error(`${parent} has no leafnode listener`);
    const relay = new WanRelay(leaf);
    await relay.start();
    relays.set(parent, relay);
    for (const c of shape.filter((p) => p.parent === parent))
      overrides.set(c.node, `127.0.0.1:${relay.port}`);
  }
  const plans = planNatsServers(topology, {
    storeRoot: join(dir, 'js'),
    ports,
    leafRemoteOverrides: overrides,
  }).filter((p) => options.only?.(p) ?? true);
  const sorted = [...plans].sort((a, b) => ORDER.indexOf(a.level) - ORDER.indexOf(b.level));
  const servers = new Map<string, NatsServerProcess>();
  const stopAll = async (): Promise<void> => {
    for (const r of relays.values()) await r.stop();
    for (const p of [...sorted].reverse()) await servers.get(p.node)?.stop();
  };
  try {
    for (const p of sorted) {
      const conf = join(dir, p.fileName);
      writeFileSync(conf, p.config);
      const s = new NatsServerProcess(p.node, conf);
      servers.set(p.node, s);
      await s.start();
    }
  } catch (e) {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const byNode = new Map(plans.map((p) => [p.node, p]));
  const plan = (node: string): NatsServerPlan => {
    const p = byNode.get(node);
    if (p === undefined) throw new Error(`no server for ${node}`);
    return p;
  };
  return {
    dir,
    plans: byNode,
    servers,
    relays,
    url: (node) => plan(node).clientUrl,
    async monitor(node, endpoint) {
      const r = await fetch(`http://127.0.0.1:${plan(node).ports.http}/${endpoint}`);
      return (await r.json()) as Record<string, unknown>;
    },
    async restart(node, downMs = 300) {
      const s = servers.get(node);
      if (s === undefined) throw new Error(`no server ${node}`);
      await s.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, downMs));
      await s.start();
    },
    async stop() {
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
