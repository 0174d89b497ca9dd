/**
 * Test harness: real nats-server processes (from PATH) on free loopback ports, each with its
 * config file and JetStream store in a temp dir. `startNatsServer()` gives one standalone
 * server; `startTopologyServers()` starts every region/hub/pod server of a topology with the
 * configs `genesis topology nats-config` generates (leaf nodes, gateways, JetStream domains).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Topology } from '../../src/core/index.ts';
import {
  freePort,
  type NatsServerPlan,
  type NatsServerPorts,
  NatsServerProcess,
  planNatsServers,
  serverNodes,
} from '../../src/fabric/index.ts';

/** One running test server. */
export interface TestNatsServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly process: NatsServerProcess;
  /** Stops the server and removes its temp dir. */
  stop(): Promise<void>;
}

/** Starts a standalone nats-server with JetStream on a free port. */
export async function startNatsServer(
  options: { jetstream?: boolean; extraConfig?: string } = {},
): Promise<TestNatsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'genesis-nats-'));
  const port = await freePort();
  const lines = ['server_name: "test"', `listen: "127.0.0.1:${port}"`, 'max_payload: 1048576'];
  if (options.jetstream !== false)
    lines.push('jetstream {', `  store_dir: ${JSON.stringify(join(dir, 'js'))}`, '}');
  if (options.extraConfig !== undefined) lines.push(options.extraConfig);
  const conf = join(dir, 'server.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const proc = new NatsServerProcess('test', conf);
  await proc.start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    process: proc,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP relay that a test can cut and heal (a leaf link across a flaky WAN). */
export class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private cutNow = false;
  private server: Server | undefined;
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.cutNow) {
        client.destroy();
        return;
      }
      const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    this.port = await new Promise<number>((resolve) => {
      this.server?.listen(0, '127.0.0.1', () => {
        const a = this.server?.address();
        resolve(typeof a === 'object' && a !== null ? a.port : 0);
      });
    });
  }

  /** Drops every relayed connection and refuses new ones. */
  cut(): void {
    this.cutNow = true;
    for (const s of this.sockets) s.destroy();
  }

  /** Accepts connections again. */
  heal(): void {
    this.cutNow = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Every server of a topology, started. */
export interface TestTopologyServers {
  readonly dir: string;
  readonly plans: ReadonlyMap<string, NatsServerPlan>;
  readonly servers: ReadonlyMap<string, NatsServerProcess>;
  /** Leaf-link relays of the nodes listed in `cuttable`. */
  readonly proxies: ReadonlyMap<string, CuttableProxy>;
  /** Client URL of a region/hub/pod server. */
  url(node: string): string;
  /** kill -9 a server and start it again with the same config and JetStream store. */
  restart(node: string, downMs?: number): Promise<void>;
  /** Stops every server and removes the temp dir. */
  stop(): Promise<void>;
}

/** Starts every region/hub/pod server of `topology` on free ports, parents first. */
export async function startTopologyServers(
  topology: Topology,
  options: { cuttable?: readonly string[] } = {},
): Promise<TestTopologyServers> {
  const dir = mkdtempSync(join(tmpdir(), 'genesis-fabric-'));
  const ports = new Map<string, NatsServerPorts>();
  for (const n of serverNodes(topology)) {
    const gateway =
      n.level === 'region' &&
      topology.nodes.size > 0 &&
      !topology.dtnRegions.includes(n.name) &&
      [...topology.nodes.values()].filter((x) => x.level === 'region').length > 1;
    ports.set(n.name, {
      client: await freePort(),
      leaf: n.level === 'pod' ? undefined : await freePort(),
      gateway: gateway ? await freePort() : undefined,
      http: undefined,
    });
  }
  const proxies = new Map<string, CuttableProxy>();
  const overrides = new Map<string, string>();
  for (const node of options.cuttable ?? []) {
    const parent = topology.nodes.get(node)?.parent;
    const leaf = parent === undefined ? undefined : ports.get(parent)?.leaf;
    if (leaf === undefined) throw new Error(`${node} has no parent leaf port`);
    const proxy = new CuttableProxy(leaf);
    await proxy.start();
    proxies.set(node, proxy);
    overrides.set(node, `127.0.0.1:${proxy.port}`);
  }
  const plans = planNatsServers(topology, {
    storeRoot: join(dir, 'js'),
    ports,
    monitoring: false,
    leafRemoteOverrides: overrides,
  });
  const servers = new Map<string, NatsServerProcess>();
  const order = ['region', 'hub', 'pod'];
  const sorted = [...plans].sort((a, b) => order.indexOf(a.level) - order.indexOf(b.level));
  try {
    for (const p of sorted) {
      const conf = join(dir, p.fileName);
      writeFileSync(conf, p.config);
      const s = new NatsServerProcess(p.node, conf);
      servers.set(p.node, s);
      await s.start();
    }
  } catch (e) {
    for (const s of servers.values()) await s.stop();
    throw e;
  }
  const byNode = new Map(plans.map((p) => [p.node, p]));
  return {
    dir,
    plans: byNode,
    servers,
    proxies,
    async restart(node: string, downMs = 300) {
      const s = servers.get(node);
      if (s === undefined) throw new Error(`no server ${node}`);
      await s.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, downMs));
      await s.start();
    },
    url(node: string): string {
      const p = byNode.get(node);
      if (p === undefined) throw new Error(`no server for ${node}`);
      return p.clientUrl;
    },
    async stop() {
      for (const p of proxies.values()) await p.stop();
      for (const p of [...sorted].reverse()) await servers.get(p.node)?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
