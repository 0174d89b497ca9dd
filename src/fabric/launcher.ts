/**
 * A multi-process fabric on one machine (`genesis fabric up`): writes the nats-server config of
 * every region/hub/pod, starts the servers parents first, then one `genesis node` process per
 * region, hub, pod and tile (tiles get only their pod's URL and configure themselves). Logs go
 * to `<dataDir>/logs/<name>.log`. Stop is children first: tiles, pods, hubs, regions, servers.
 * Node processes are also used directly by the integration tests (kill -9 and all).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Topology } from '../core/index.ts';
import { SupervisedProcess } from './child.ts';
import { FabricError, FabricErrorCode } from './errors.ts';
import type { LeaseConfig } from './messages.ts';
import { type NatsConfigOptions, type NatsServerPlan, planNatsServers } from './nats-config.ts';
import { NatsServerProcess } from './nats-server.ts';
import type { NodeRole } from './node-process.ts';

/** How long a node process may take to report ready. */
export const NODE_READY_MS_MAX = 60_000;
/** Grace after SIGTERM before a node process is killed. */
export const NODE_STOP_GRACE_MS = 5_000;
/** Node processes started at once (each boots a TypeScript runtime; the machine may be small). */
export const NODE_START_CONCURRENCY = 4;

/** The `genesis` entry script, for spawning node processes. */
export const GENESIS_BIN = fileURLToPath(new URL('../../bin/genesis.js', import.meta.url));

/**
 * Command prefix that runs `genesis node` (after `process.execPath`). The default is the full
 * CLI; `genesis fabric up` passes a lighter entry that loads only the fabric commands, so
 * dozens of node processes boot faster and do not depend on every other layer's commands.
 */
export type NodeEntry = readonly string[];

/** Options of a node process spawned by {@link spawnNodeProcess}. */
export interface NodeProcessOptions {
  readonly role: NodeRole;
  readonly nats: string;
  readonly name?: string;
  readonly dataDir?: string;
  readonly lease?: Partial<LeaseConfig>;
  readonly reconcileMs?: number;
  readonly unreachableGraceMs?: number;
  readonly cpuMillis?: number;
  readonly memoryMb?: number;
  readonly tilesMax?: number;
  /** Tile: run placements as kernel domains, modules found by CID in these directories. */
  readonly moduleDirs?: readonly string[];
  /** File to append the process's stderr log to (default: discarded). */
  readonly logFile?: string;
  /** How to run `genesis node` (default: bin/genesis.js). */
  readonly entry?: NodeEntry;
}

/** A spawned `genesis node` process. */
export class NodeProcess extends SupervisedProcess {
  /** Name the node reported when ready (tiles learn theirs from the pod). */
  name = '';

  constructor(readonly options: NodeProcessOptions) {
    super(NODE_STOP_GRACE_MS);
  }

  /** Spawns the process and resolves when it prints its ready line. */
  async start(): Promise<void> {
    const o = this.options;
    const args = [...(o.entry ?? [GENESIS_BIN]), 'node', '--role', o.role, '--nats', o.nats];
    if (o.name !== undefined) args.push('--name', o.name);
    if (o.dataDir !== undefined) args.push('--data-dir', o.dataDir);
    if (o.lease?.renewMs !== undefined) args.push('--renew', `${o.lease.renewMs}ms`);
    if (o.lease?.suspectMs !== undefined) args.push('--suspect', `${o.lease.suspectMs}ms`);
    if (o.lease?.deadMs !== undefined) args.push('--dead', `${o.lease.deadMs}ms`);
    if (o.reconcileMs !== undefined) args.push('--reconcile', `${o.reconcileMs}ms`);
    if (o.unreachableGraceMs !== undefined) args.push('--grace', `${o.unreachableGraceMs}ms`);
    if (o.cpuMillis !== undefined) args.push('--cpu-millis', String(o.cpuMillis));
    if (o.memoryMb !== undefined) args.push('--memory-mb', String(o.memoryMb));
    if (o.tilesMax !== undefined) args.push('--tiles-max', String(o.tilesMax));
    if (o.moduleDirs !== undefined && o.moduleDirs.length > 0)
      args.push('--modules', ...o.moduleDirs);
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', o.logFile === undefined ? 'ignore' : 'pipe'],
    });
    this.adopt(child);
    if (o.logFile !== undefined) child.stderr?.pipe(createWriteStream(o.logFile, { flags: 'a' }));
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(
        () =>
          reject(
            new FabricError(
              FabricErrorCode.ServerStartFailed,
              `${o.role} ${o.name ?? ''} not ready after ${NODE_READY_MS_MAX} ms`,
            ),
          ),
        NODE_READY_MS_MAX,
      );
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(
          new FabricError(
            FabricErrorCode.ServerStartFailed,
            `${o.role} ${o.name ?? ''} exited (${code ?? sig}) before ready; see ${o.logFile ?? 'its log'}`,
          ),
        );
      });
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (chunk: string) => {
        buf += chunk;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        try {
          const line = JSON.parse(buf.slice(0, nl)) as { ready?: boolean; name?: string };
          if (line.ready === true) {
            this.name = line.name ?? '';
            clearTimeout(timer);
            resolve();
          }
        } catch {
          // Not the ready line; keep reading.
        }
        buf = buf.slice(nl + 1);
      });
    });
  }
}

/** Options of {@link LocalFabric}. */
export interface LocalFabricOptions {
  readonly topology: Topology;
  readonly dataDir: string;
  readonly nats?: Omit<NatsConfigOptions, 'storeRoot'>;
  readonly lease?: Partial<LeaseConfig>;
  readonly reconcileMs?: number;
  /** Start tile processes (default true). */
  readonly tiles?: boolean;
  readonly entry?: NodeEntry;
  /** Tiles run placements as kernel domains, modules found by CID in these directories. */
  readonly moduleDirs?: readonly string[];
}

/** Boot progress of a local fabric. */
export interface LocalFabricProgress {
  readonly done: number;
  readonly total: number;
  readonly what: string;
}

/** Servers and node processes of a whole topology on this machine. */
export class LocalFabric {
  readonly plans: NatsServerPlan[];
  readonly servers = new Map<string, NatsServerProcess>();
  readonly nodes: NodeProcess[] = [];
  private started = false;

  constructor(private readonly options: LocalFabricOptions) {
    this.plans = planNatsServers(options.topology, {
      ...options.nats,
      storeRoot: join(options.dataDir, 'jetstream'),
    });
  }

  /** Client URL of a region/hub/pod server. */
  url(node: string): string {
    const p = this.plans.find((x) => x.node === node);
    if (p === undefined)
      throw new FabricError(FabricErrorCode.UnknownNode, `no server for ${node}`);
    return p.clientUrl;
  }

  /** Writes configs, starts servers and nodes. All-or-nothing: on failure, stops what started. */
  async start(onProgress?: (p: LocalFabricProgress) => void): Promise<void> {
    const dir = this.options.dataDir;
    const confDir = join(dir, 'nats');
    const logDir = join(dir, 'logs');
    mkdirSync(confDir, { recursive: true });
    mkdirSync(logDir, { recursive: true });
    const t = this.options.topology;
    const order = ['region', 'store', 'hub', 'pod'];
    const plans = [...this.plans].sort((a, b) => order.indexOf(a.level) - order.indexOf(b.level));
    const nodeSpecs: NodeProcessOptions[] = [];
    // A region store is a JetStream server only: the region's process reaches it by domain.
    for (const p of plans)
      if (p.level !== 'store') nodeSpecs.push(this.nodeOptions(p.level, p.clientUrl, p.node));
    if (this.options.tiles !== false) {
      for (const p of plans.filter((x) => x.level === 'pod')) {
        const tiles = t.nodes.get(p.node)?.children ?? [];
        for (const tile of tiles) nodeSpecs.push(this.nodeOptions('tile', p.clientUrl, tile));
      }
    }
    const total = plans.length + nodeSpecs.length;
    let done = 0;
    this.started = true;
    try {
      for (const p of plans) {
        const conf = join(confDir, p.fileName);
        writeFileSync(conf, p.config);
        const s = new NatsServerProcess(p.node, conf);
        this.servers.set(p.node, s);
        await s.start();
        onProgress?.({ done: ++done, total, what: `nats-server ${p.node}` });
      }
      // Parents before children (levels in order), a few processes at a time within a level.
      for (const role of ['region', 'hub', 'pod', 'tile'] as const) {
        const batch = nodeSpecs.filter((n) => n.role === role);
        for (let i = 0; i < batch.length; i += NODE_START_CONCURRENCY) {
          await Promise.all(
            batch.slice(i, i + NODE_START_CONCURRENCY).map(async (o) => {
              const n = new NodeProcess(o);
              this.nodes.push(n);
              await n.start();
              onProgress?.({ done: ++done, total, what: `${o.role} ${n.name}` });
            }),
          );
        }
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Stops tiles, pods, hubs, regions, then servers. Idempotent. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const role of ['tile', 'pod', 'hub', 'region'] as const) {
      await Promise.all(this.nodes.filter((n) => n.options.role === role).map((n) => n.stop()));
    }
    const order = ['pod', 'hub', 'store', 'region'];
    const plans = [...this.plans].sort((a, b) => order.indexOf(a.level) - order.indexOf(b.level));
    for (const p of plans) await this.servers.get(p.node)?.stop();
  }

  private nodeOptions(role: NodeRole, nats: string, name: string): NodeProcessOptions {
    const dir = this.options.dataDir;
    return {
      role,
      nats,
      // Tiles are not told their name: they ask, and their pod decides (a tile's wish is only
      // the topology's slot name, so a restarted fabric keeps stable names).
      name,
      dataDir: join(dir, 'nodes', name),
      logFile: join(dir, 'logs', `${name}.log`),
      ...(this.options.lease === undefined ? {} : { lease: this.options.lease }),
      ...(this.options.reconcileMs === undefined || role !== 'hub'
        ? {}
        : { reconcileMs: this.options.reconcileMs }),
      ...(role === 'tile' ? { cpuMillis: 1000, memoryMb: 1024 } : {}),
      ...(role === 'tile' && this.options.moduleDirs !== undefined
        ? { moduleDirs: this.options.moduleDirs }
        : {}),
      ...(this.options.entry === undefined ? {} : { entry: this.options.entry }),
    };
  }
}
