/**
 * `genesis up`: boots the embedded fabric, attaches every layer's plugin, serves `/metrics` and
 * `/healthz`, shows a live status line, and stops cleanly on Ctrl-C or after `--for`.
 */
import { accessSync, constants as fsConstants, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { resolve } from 'node:path';
import {
  createLogger,
  EmbeddedFabric,
  generateTopology,
  LEVELS,
  loadTopologyFile,
  type Topology,
} from '../core/index.ts';
import type { FabricPlugin, UpOptions } from './plugin.ts';
import { CliError, printJson, renderBar, StatusLine } from './util.ts';

/** Options of `genesis up` after parsing. */
export interface UpCommandOptions {
  readonly topologyFile: string | undefined;
  readonly size: { regions: number; hubs: number; pods: number; tiles: number };
  readonly dataDir: string;
  readonly port: number;
  readonly forMs: number | undefined;
  readonly json: boolean;
  readonly interplanetary: boolean;
  readonly verbose: boolean;
  readonly heartbeatMs: number | undefined;
}

/** The `--json` summary of a run. */
export interface UpSummary {
  readonly nodesStarted: Record<string, number>;
  readonly heartbeatsSent: number;
  readonly heartbeatsReceived: number;
  readonly errors: number;
  readonly elapsedMs: number;
  readonly bootMs: number;
  /** Time to load every layer's code before boot. */
  readonly moduleLoadMs: number;
  readonly port: number;
  readonly layers: Record<string, Readonly<Record<string, number | string>>>;
}

function prepareDataDir(dir: string): string {
  const abs = resolve(dir);
  try {
    mkdirSync(abs, { recursive: true });
    accessSync(abs, fsConstants.W_OK);
  } catch (e) {
    throw new CliError(
      'CLI_DATA_DIR_UNWRITABLE',
      `data dir ${abs} is not writable (${(e as NodeJS.ErrnoException).code ?? 'error'}); pass --data-dir DIR with a writable directory`,
      { cause: e },
    );
  }
  return abs;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE')
        fail(
          new CliError(
            'CLI_PORT_IN_USE',
            `port ${port} is in use; pass --port N with a free port (or --port 0 for any)`,
            { cause: e },
          ),
        );
      else if (e.code === 'EACCES')
        fail(
          new CliError(
            'CLI_PORT_DENIED',
            `port ${port} needs privileges; pass --port N above 1023`,
            { cause: e },
          ),
        );
      else fail(e);
    });
    server.listen(port, '127.0.0.1', () => {
      const addr = server.address();
      ok(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}

/** Runs `genesis up` and returns the process exit code. */
export async function runUp(opts: UpCommandOptions): Promise<number> {
  const tLoad = performance.now();
  // Plugins load here, not at start-up, so other commands never pay for every layer.
  const { FABRIC_PLUGINS } = await import('./plugins/index.ts');
  const loadMs = performance.now() - tLoad;
  const t0 = performance.now();
  const topology: Topology =
    opts.topologyFile !== undefined
      ? loadTopologyFile(opts.topologyFile)
      : generateTopology({ ...opts.size, interplanetary: opts.interplanetary });
  const dataDir = prepareDataDir(opts.dataDir);
  const logger = createLogger({ level: opts.verbose ? 'debug' : 'warn' });
  const fabric = new EmbeddedFabric({
    topology,
    logger,
    dataDir,
    ...(opts.heartbeatMs === undefined ? {} : { heartbeatIntervalMs: opts.heartbeatMs }),
  });
  const upOptions: UpOptions = {
    dataDir,
    interplanetary: opts.interplanetary || topology.dtnRegions.length > 0,
    verbose: opts.verbose,
  };
  const plugins: FabricPlugin[] = FABRIC_PLUGINS.map((f) => f(upOptions));
  const status = new StatusLine();
  let healthy = false;
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      fabric.metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': fabric.metrics.contentType }).end(text),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
    } else if (req.url === '/healthz') {
      res
        .writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ok: healthy, ...fabric.stats() }));
    } else res.writeHead(404).end('not found\n');
  });
  const port = await listen(server, opts.port);
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    healthy = false;
    for (const p of [...plugins].reverse()) await p.stop?.();
    await fabric.stop();
    await new Promise<void>((r) => server.close(() => r()));
  };
  try {
    for (const p of plugins) await p.attach(fabric, upOptions);
    status.update(`genesis: booting ${topology.nodes.size} nodes...`, true);
    await fabric.start((p) => status.update(renderBar(p.started, p.total, `booting (${p.level})`)));
    for (const p of plugins) await p.afterStart?.(fabric);
  } catch (e) {
    await stopAll();
    throw e;
  }
  healthy = true;
  const bootMs = performance.now() - t0;
  status.done(
    `genesis: ${topology.nodes.size} nodes up in ${bootMs.toFixed(0)} ms (modules loaded in ${loadMs.toFixed(0)} ms); metrics on http://127.0.0.1:${port}/metrics`,
  );
  const line = (): string => {
    const s = fabric.stats();
    const levels = LEVELS.map((l) => `${l} ${s.nodesUp[l]}`).join(' ');
    const elapsedS = Math.max(1e-3, (performance.now() - t0 - bootMs) / 1000);
    const layerText = plugins
      .filter((p) => Object.keys(p.status()).length > 0)
      .map(
        (p) =>
          `${p.name}: ${Object.entries(p.status())
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`,
      )
      .join(' | ');
    return `up ${levels} | hb/s ${(s.heartbeatsSent / elapsedS).toFixed(0)} | dead ${s.dead} | errors ${s.transportErrors}${layerText ? ` | ${layerText}` : ''}`;
  };
  const ticker = setInterval(() => status.update(line()), 500);
  await new Promise<void>((done) => {
    const finish = (): void => done();
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    if (opts.forMs !== undefined) setTimeout(finish, opts.forMs).unref();
  });
  clearInterval(ticker);
  status.done(line());
  const summary: UpSummary = {
    nodesStarted: Object.fromEntries(LEVELS.map((l) => [l, fabric.stats().nodesUp[l]])),
    heartbeatsSent: fabric.stats().heartbeatsSent,
    heartbeatsReceived: fabric.stats().heartbeatsReceived,
    errors: fabric.stats().transportErrors,
    elapsedMs: Math.round(performance.now() - t0),
    bootMs: Math.round(bootMs),
    moduleLoadMs: Math.round(loadMs),
    port,
    layers: Object.fromEntries(plugins.map((p) => [p.name, p.status()])),
  };
  await stopAll();
  process.stderr.write('genesis: stopped cleanly\n');
  if (opts.json) printJson(summary);
  return 0;
}
