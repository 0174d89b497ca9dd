/**
 * Fabric commands: `genesis topology nats-config`, `genesis fabric up`, `genesis node`, and the
 * orchestration verbs `genesis apply|get|explain|drain`, which talk to a hub's controller over
 * NATS (`--nats URL`, else $GENESIS_NATS_URL, else the fabric `genesis fabric up` started).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { createLogger } from '../../core/index.ts';
import {
  type FabricNodeHandle,
  LocalFabric,
  levelOfName,
  loadWorkloadFile,
  NatsTransport,
  NODE_ROLES,
  type NodeRole,
  parentOfName,
  planNatsServers,
  Subjects,
  startFabricNode,
} from '../../fabric/index.ts';
import {
  CliError,
  parseDuration,
  parseIntFlag,
  printJson,
  renderBar,
  reportFailure,
  type SizeFlags,
  StatusLine,
  sizeOptions,
  topologyFromFlags,
} from '../util.ts';

/**
 * A light entry for node processes: this file run directly (through bin/run-ts.js) serves only
 * the fabric commands, so `genesis fabric up` boots its processes without loading every
 * layer's commands.
 */
const NODE_ENTRY = [
  fileURLToPath(new URL('../../../bin/run-ts.js', import.meta.url)),
  fileURLToPath(import.meta.url),
];

const FABRIC_DIR_DEFAULT = './.genesis-fabric';
const CONTROL_TIMEOUT_MS = 10_000;

interface ControlFlags {
  nats?: string;
  hub?: string;
  json?: boolean;
}

function controlOptions(cmd: Command): Command {
  return cmd
    .option(
      '--nats <url>',
      'NATS URL of a hub or pod server (default: $GENESIS_NATS_URL, else the local fabric)',
    )
    .option(
      '--hub <name>',
      'hub whose controller to ask (default: the server you connect to, or its hub)',
    )
    .option('--json', 'print JSON');
}

function defaultUrl(): string {
  const env = process.env.GENESIS_NATS_URL;
  if (env !== undefined && env !== '') return env;
  const f = join(FABRIC_DIR_DEFAULT, 'fabric.json');
  if (existsSync(f)) {
    const j = JSON.parse(readFileSync(f, 'utf8')) as { hubs?: Record<string, string> };
    const first = Object.values(j.hubs ?? {})[0];
    if (first !== undefined) return first;
  }
  return 'nats://127.0.0.1:4222';
}

/** Sends one control request to a hub's controller and returns the JSON answer. */
async function control(
  o: ControlFlags,
  verb: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const url = o.nats ?? defaultUrl();
  let t: NatsTransport;
  try {
    t = await NatsTransport.connect({ servers: url, reconnect: false, connectTimeoutMs: 3_000 });
  } catch (e) {
    throw new CliError(
      'CLI_NATS_UNREACHABLE',
      `cannot reach NATS at ${url}; start a fabric (genesis fabric up) or pass --nats URL`,
      { cause: e },
    );
  }
  try {
    const server = t.connection.info?.server_name ?? '';
    const level = levelOfName(server);
    const hub =
      o.hub ?? (level === 'hub' ? server : level === 'pod' ? parentOfName(server) : undefined);
    if (hub === undefined)
      throw new CliError(
        'CLI_HUB_UNKNOWN',
        `${url} is server "${server}", not a hub or pod; pass --hub NAME`,
      );
    let reply: Awaited<ReturnType<NatsTransport['request']>>;
    try {
      reply = await t.request(
        Subjects.control(hub, verb),
        new TextEncoder().encode(JSON.stringify(body)),
        { timeoutMs: CONTROL_TIMEOUT_MS },
      );
    } catch (e) {
      throw new CliError(
        'CLI_CONTROLLER_UNREACHABLE',
        `no controller answered for hub ${hub} (${(e as Error).message})`,
        { cause: e },
      );
    }
    const out = JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
    if (out.ok !== true)
      throw new CliError(
        'CLI_CONTROLLER_REFUSED',
        `controller ${hub}: ${String(out.error ?? 'refused')}`,
      );
    return out;
  } finally {
    await t.close();
  }
}

function table(rows: Record<string, unknown>[], cols: string[]): string {
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [
    line(cols.map((c) => c.toUpperCase())),
    ...rows.map((r) => line(cols.map((c) => String(r[c] ?? '')))),
  ].join('\n');
}

function registerNatsConfig(program: Command): void {
  const topo =
    program.commands.find((c) => c.name() === 'topology') ??
    program.command('topology').description('inspect and validate topologies');
  sizeOptions(topo.command('nats-config'))
    .description(
      'write the nats-server config of every region/hub/pod server (leaf nodes, gateways, JetStream domains)',
    )
    .requiredOption('--out <dir>', 'output directory')
    .option('--base-port <n>', 'first client port (leaf +1000, gateway +2000, http +3000)', '14222')
    .option('--host <host>', 'address servers listen on and dial', '127.0.0.1')
    .option('--store <dir>', 'JetStream store root', './jetstream')
    .option('--json', 'print the plan as JSON')
    .action(
      (
        o: SizeFlags & {
          out: string;
          basePort: string;
          host: string;
          store: string;
          json?: boolean;
        },
      ) => {
        const t = topologyFromFlags(o);
        const plans = planNatsServers(t, {
          basePort: parseIntFlag(o.basePort, '--base-port', 1024, 65535),
          host: o.host,
          storeRoot: resolve(o.store),
        });
        mkdirSync(o.out, { recursive: true });
        for (const p of plans) writeFileSync(join(o.out, p.fileName), p.config);
        if (o.json === true) printJson(plans.map(({ config: _c, ...rest }) => rest));
        else {
          for (const p of plans)
            process.stdout.write(
              `${join(o.out, p.fileName)}  ${p.level.padEnd(6)} ${p.clientUrl}${p.parent === undefined ? '' : `  leaf→${p.parent}`}${p.ports.gateway === undefined ? '' : `  gateway :${p.ports.gateway}`}\n`,
            );
          process.stdout.write(`start each with: nats-server -c ${join(o.out, '<name>.conf')}\n`);
        }
      },
    );
}

function registerFabricUp(program: Command): void {
  const fabric = program.command('fabric').description('a real multi-process fabric over NATS');
  sizeOptions(fabric.command('up'), '2')
    .description('start nats-servers and one node process per region/hub/pod/tile on this machine')
    .option('--data-dir <dir>', 'data, configs and logs', FABRIC_DIR_DEFAULT)
    .option('--base-port <n>', 'first NATS client port', '14222')
    .option('--for <duration>', 'run this long, then stop cleanly')
    .option('--renew <duration>', 'lease renew period (default 10s)')
    .option('--dead <duration>', 'lease expiry (default 40s)')
    .option('--json', 'print a JSON summary when stopping')
    .option(
      '--modules <dir...>',
      'tiles run placements as kernel domains, modules found by CID here',
    )
    .action(
      async (
        o: SizeFlags & {
          dataDir: string;
          basePort: string;
          for?: string;
          renew?: string;
          dead?: string;
          json?: boolean;
          modules?: string[];
        },
      ) => {
        const t = topologyFromFlags(o);
        const dir = resolve(o.dataDir);
        const lease = {
          ...(o.renew === undefined ? {} : { renewMs: parseDuration(o.renew, '--renew') }),
          ...(o.dead === undefined ? {} : { deadMs: parseDuration(o.dead, '--dead') }),
        };
        const lf = new LocalFabric({
          topology: t,
          dataDir: dir,
          nats: { basePort: parseIntFlag(o.basePort, '--base-port', 1024, 65535) },
          lease,
          entry: NODE_ENTRY,
          ...(o.modules === undefined ? {} : { moduleDirs: o.modules.map((d) => resolve(d)) }),
        });
        const status = new StatusLine(2_000);
        const t0 = performance.now();
        await lf.start((p) => status.update(renderBar(p.done, p.total, p.what)));
        const hubs = Object.fromEntries(
          lf.plans.filter((p) => p.level === 'hub').map((p) => [p.node, p.clientUrl]),
        );
        writeFileSync(
          join(dir, 'fabric.json'),
          JSON.stringify(
            { hubs, servers: Object.fromEntries(lf.plans.map((p) => [p.node, p.clientUrl])) },
            null,
            2,
          ),
        );
        status.done(
          `genesis fabric: ${lf.servers.size} nats-servers and ${lf.nodes.length} node processes up in ${((performance.now() - t0) / 1000).toFixed(1)} s; logs in ${join(dir, 'logs')}`,
        );
        process.stderr.write(
          `try: genesis get nodes    (or: GENESIS_NATS_URL=${Object.values(hubs)[0] ?? ''} genesis apply examples/workload.yaml)\n`,
        );
        let summary: Record<string, unknown> = {};
        const poll = async (): Promise<string> => {
          let alive = 0;
          let tiles = 0;
          let placed = 0;
          let replicas = 0;
          for (const url of Object.values(hubs)) {
            try {
              const n = (await control({ nats: url }, 'get', { what: 'nodes' })).items as {
                state: string;
              }[];
              tiles += n.length;
              alive += n.filter((x) => x.state === 'alive').length;
              const w = (await control({ nats: url }, 'get', { what: 'workloads' })).items as {
                placed: number;
                replicas: number;
              }[];
              for (const x of w) {
                placed += x.placed;
                replicas += x.replicas;
              }
            } catch {
              // A hub that does not answer shows as fewer tiles.
            }
          }
          summary = {
            servers: lf.servers.size,
            processes: lf.nodes.filter((n) => n.running).length,
            tilesAlive: alive,
            tilesKnown: tiles,
            placed,
            replicas,
          };
          return `fabric: ${lf.nodes.filter((n) => n.running).length}/${lf.nodes.length} processes, tiles alive ${alive}/${tiles}, replicas placed ${placed}/${replicas}`;
        };
        await new Promise<void>((done) => {
          let stopping = false;
          const stop = (): void => {
            if (stopping) return;
            stopping = true;
            clearInterval(timer);
            done();
          };
          const timer = setInterval(() => {
            void poll().then((l) => !stopping && status.update(l));
          }, 1_000);
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          if (o.for !== undefined) setTimeout(stop, parseDuration(o.for)).unref();
        });
        await poll();
        status.done('genesis fabric: stopping...');
        await lf.stop();
        if (o.json === true) printJson(summary);
        process.stderr.write('genesis fabric: stopped cleanly\n');
      },
    );
}

function registerNode(program: Command): void {
  program
    .command('node')
    .description('run one fabric node process (tile, pod, hub or region)')
    .requiredOption('--role <role>', `one of ${NODE_ROLES.join('|')}`)
    .requiredOption('--nats <url>', 'URL of the nearest nats-server (a tile: its pod server)')
    .option(
      '--name <name>',
      'pod/hub/region name (default: the server name); a tile only asks for it',
    )
    .option('--data-dir <dir>', 'identity and local state')
    .option('--renew <duration>', 'lease renew period (pod/hub; default 10s)')
    .option('--suspect <duration>', 'silence before probes start (default 2x renew)')
    .option('--dead <duration>', 'lease expiry (default 40s)')
    .option('--reconcile <duration>', 'controller loop period (hub; default 2s)')
    .option(
      '--grace <duration>',
      'time a pod may be unreachable before its work moves (hub; default 60s)',
    )
    .option('--cpu-millis <n>', 'tile CPU capacity (default: cores x 1000)')
    .option('--memory-mb <n>', 'tile memory capacity (default: total RAM)')
    .option('--tiles-max <n>', 'tiles a pod admits (default 64)')
    .option('--label <k=v...>', 'tile labels')
    .option('--memory-state', 'keep state in memory instead of JetStream')
    .option(
      '--modules <dir...>',
      'tile: run placements as kernel domains, modules found by CID here',
    )
    .action(
      async (o: {
        modules?: string[];
        role: string;
        nats: string;
        name?: string;
        dataDir?: string;
        renew?: string;
        suspect?: string;
        dead?: string;
        reconcile?: string;
        grace?: string;
        cpuMillis?: string;
        memoryMb?: string;
        tilesMax?: string;
        label?: string[];
        memoryState?: boolean;
      }) => {
        if (!(NODE_ROLES as readonly string[]).includes(o.role))
          throw new CliError(
            'CLI_BAD_ROLE',
            `--role must be one of ${NODE_ROLES.join('|')}, got "${o.role}"`,
          );
        const labels: Record<string, string> = {};
        for (const l of o.label ?? []) {
          const i = l.indexOf('=');
          if (i <= 0) throw new CliError('CLI_BAD_LABEL', `--label "${l}" must be key=value`);
          labels[l.slice(0, i)] = l.slice(i + 1);
        }
        const logger = createLogger({ level: 'info', name: `genesis-${o.role}` });
        const handle: FabricNodeHandle = await startFabricNode({
          role: o.role as NodeRole,
          nats: o.nats,
          ...(o.name === undefined ? {} : { name: o.name }),
          ...(o.dataDir === undefined ? {} : { dataDir: resolve(o.dataDir) }),
          ...(o.modules === undefined ? {} : { moduleDirs: o.modules.map((d) => resolve(d)) }),
          lease: {
            ...(o.renew === undefined ? {} : { renewMs: parseDuration(o.renew, '--renew') }),
            ...(o.suspect === undefined
              ? {}
              : { suspectMs: parseDuration(o.suspect, '--suspect') }),
            ...(o.dead === undefined ? {} : { deadMs: parseDuration(o.dead, '--dead') }),
          },
          capacity: {
            ...(o.cpuMillis === undefined
              ? {}
              : { cpuMillis: parseIntFlag(o.cpuMillis, '--cpu-millis', 1, 1_000_000) }),
            ...(o.memoryMb === undefined
              ? {}
              : { memoryMb: parseIntFlag(o.memoryMb, '--memory-mb', 1, 16_777_216) }),
          },
          labels,
          ...(o.tilesMax === undefined
            ? {}
            : { tilesMax: parseIntFlag(o.tilesMax, '--tiles-max', 1, 4096) }),
          ...(o.reconcile === undefined
            ? {}
            : { reconcileMs: parseDuration(o.reconcile, '--reconcile') }),
          ...(o.grace === undefined
            ? {}
            : { unreachableGraceMs: parseDuration(o.grace, '--grace') }),
          memoryState: o.memoryState === true,
          logger,
        });
        printJson({ ready: true, role: handle.role, name: handle.name });
        await new Promise<void>((done) => {
          process.once('SIGINT', done);
          process.once('SIGTERM', done);
        });
        await handle.stop();
        logger.info({ status: handle.status() }, 'stopped');
      },
    );
}

function registerOrchestration(program: Command): void {
  controlOptions(
    program
      .command('apply')
      .argument('<file>', 'workload spec (YAML, several documents allowed, or JSON)'),
  )
    .description('create or update workloads')
    .action(async (file: string, o: ControlFlags) => {
      const specs = loadWorkloadFile(file);
      const out = await control(o, 'apply', { specs });
      if (o.json === true) printJson(out);
      else process.stdout.write(`applied: ${(out.applied as string[]).join(', ')}\n`);
    });
  controlOptions(program.command('get').argument('<what>', 'nodes|workloads|pods'))
    .description('list nodes, workloads or pods as the controller sees them')
    .action(async (what: string, o: ControlFlags) => {
      if (!['nodes', 'workloads', 'pods'].includes(what))
        throw new CliError('CLI_BAD_ARGUMENT', `get: expected nodes|workloads|pods, got "${what}"`);
      const out = await control(o, 'get', { what });
      const items = out.items as Record<string, unknown>[];
      if (o.json === true) printJson(items);
      else {
        const cols =
          what === 'nodes'
            ? ['name', 'state', 'schedulable', 'cpuFree', 'memoryFree', 'instances']
            : what === 'workloads'
              ? ['name', 'replicas', 'placed', 'running', 'pending', 'priority']
              : ['pod', 'reachable', 'members'];
        process.stdout.write(`${table(items, cols)}\n`);
      }
    });
  controlOptions(program.command('explain').argument('<workload>', 'workload name'))
    .description('say why each tile was picked or rejected for a workload')
    .action(async (name: string, o: ControlFlags) => {
      const out = await control(o, 'explain', { name });
      const ex = out.explanation as {
        workload: string;
        strategy: string;
        tilesConsidered: number;
        feasible: number;
        rejectedBy: Record<string, number>;
        best: { tile: string; score: number }[];
        rejected: { tile: string; reason: string }[];
        placements: Record<string, string>;
        pending: string[];
        lastFailure?: string;
      };
      if (o.json === true) {
        printJson(ex);
        return;
      }
      const w = process.stdout;
      w.write(
        `workload ${ex.workload} (${ex.strategy}): ${ex.feasible} of ${ex.tilesConsidered} tiles feasible\n`,
      );
      for (const [id, tile] of Object.entries(ex.placements))
        w.write(`  placed   ${id} on ${tile}\n`);
      for (const id of ex.pending)
        w.write(`  pending  ${id}${ex.lastFailure === undefined ? '' : `: ${ex.lastFailure}`}\n`);
      for (const [reason, n] of Object.entries(ex.rejectedBy))
        w.write(`  rejected ${n} tiles: ${reason}\n`);
      for (const b of ex.best.slice(0, 5)) w.write(`  candidate ${b.tile} score ${b.score}\n`);
      for (const r of ex.rejected.slice(0, 10)) w.write(`  rejected ${r.tile}: ${r.reason}\n`);
    });
  controlOptions(program.command('drain').argument('<node>', 'tile, pod or hub name'))
    .description('move every instance off a node and stop placing there (--undo to reverse)')
    .option('--undo', 'make the node schedulable again')
    .action(async (node: string, o: ControlFlags & { undo?: boolean }) => {
      const out = await control(o, 'drain', { name: node, undo: o.undo === true });
      if (o.json === true) printJson(out);
      else
        process.stdout.write(
          `${o.undo === true ? 'undrained' : 'draining'} ${node} (${String(out.tiles)} tiles)\n`,
        );
    });
}

/** Adds the fabric commands. */
export function register(program: Command): void {
  registerNatsConfig(program);
  registerFabricUp(program);
  registerNode(program);
  registerOrchestration(program);
}

if (
  process.argv[1] !== undefined &&
  pathToFileURL(resolve(process.argv[1])).href === import.meta.url
) {
  const program = new Command('genesis').exitOverride();
  register(program);
  try {
    await program.parseAsync(process.argv.slice(2), { from: 'user' });
  } catch (e) {
    process.exitCode =
      (e as { code?: string }).code?.startsWith('commander.') === true ? 2 : reportFailure(e);
  }
}
