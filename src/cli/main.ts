/**
 * The `genesis` command line. Every capability of every layer is reachable from here; layers
 * add their subcommands through `commands/index.ts` and their part of `genesis up` through
 * `plugins/index.ts`.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { countByLevel, generateTopology, loadTopologyFile, type Topology } from '../core/index.ts';
import { type CommandRegistrar, registrarsFor } from './commands/index.ts';
import { runUp } from './up.ts';
import {
  cliState,
  EXIT_USAGE,
  parseDuration,
  parseIntFlag,
  parseSize,
  printJson,
  reportFailure,
  type SizeFlags,
  sizeOptions,
} from './util.ts';

/** The package version, read from package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function printTree(t: Topology, name: string, depth: number): void {
  const n = t.nodes.get(name);
  if (n === undefined) return;
  const labels = Object.entries(n.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  process.stdout.write(
    `${'  '.repeat(depth)}${n.name} (${n.level})${labels ? ` [${labels}]` : ''}\n`,
  );
  for (const c of n.children) printTree(t, c, depth + 1);
}

/** Builds the program; exported for tests. */
export function buildProgram(layerCommands: readonly CommandRegistrar[] = []): Command {
  const program = new Command('genesis')
    .description('Genesis: an open operating layer for edge compute fabrics')
    .option('--verbose', 'show stack traces and debug logs')
    .showHelpAfterError('(run genesis --help for usage)')
    .exitOverride();
  program.hook('preAction', (cmd) => {
    cliState.verbose = cmd.optsWithGlobals().verbose === true;
  });
  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`genesis ${version()} (node ${process.version})\n`);
    });
  sizeOptions(program.command('up'))
    .description('boot the embedded fabric (default: 1 region, 2 hubs, 2 pods each, 4 tiles each)')
    .option('--data-dir <dir>', 'data directory', './.genesis')
    .option('--port <n>', 'port for /metrics and /healthz (0 = any free port)', '7070')
    .option('--for <duration>', 'run for this long, then stop cleanly (e.g. 5s, 2m)')
    .option('--heartbeat <duration>', 'heartbeat period of every node (default 1s)')
    .option('--interplanetary', 'add a Mars region linked by DTN contacts only')
    .option('--json', 'print a JSON summary on stdout when stopping')
    .action(
      async (
        o: SizeFlags & {
          dataDir: string;
          port: string;
          for?: string;
          heartbeat?: string;
          interplanetary?: boolean;
          json?: boolean;
        },
      ) => {
        process.exitCode = await runUp({
          topologyFile: o.topology,
          size: parseSize(o),
          dataDir: o.dataDir,
          port: parseIntFlag(o.port, '--port', 0, 65535),
          forMs: o.for === undefined ? undefined : parseDuration(o.for),
          heartbeatMs:
            o.heartbeat === undefined ? undefined : parseDuration(o.heartbeat, '--heartbeat'),
          json: o.json === true,
          interplanetary: o.interplanetary === true,
          verbose: cliState.verbose,
        });
      },
    );
  const topo = program.command('topology').description('inspect and validate topologies');
  sizeOptions(topo.command('show'))
    .description('validate a topology and print its nodes per level')
    .option('--json', 'print JSON')
    .addOption(new Option('--list', 'list every node name'))
    .action((o: SizeFlags & { json?: boolean; list?: boolean }) => {
      const t =
        o.topology !== undefined ? loadTopologyFile(o.topology) : generateTopology(parseSize(o));
      const counts = countByLevel(t);
      if (o.json === true)
        printJson({
          name: t.name,
          counts,
          dtnRegions: t.dtnRegions,
          nodes: o.list ? [...t.nodes.keys()] : undefined,
        });
      else {
        process.stdout.write(
          `${t.name}: ${Object.entries(counts)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ')}\n`,
        );
        if (o.list === true) printTree(t, 'global', 0);
        for (const r of t.dtnRegions) if (o.list === true) printTree(t, r, 0);
      }
    });
  for (const register of layerCommands) register(program);
  return program;
}

/** Top-level commands defined here rather than by a layer. */
const BUILT_IN_COMMANDS = ['version', 'up', 'topology'];

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  cliState.verbose = argv.includes('--verbose');
  const program = buildProgram(await registrarsFor(argv, BUILT_IN_COMMANDS));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are successes; everything else commander rejects is a usage error.
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.help' ||
        e.code === 'commander.version'
      )
        return 0;
      return EXIT_USAGE;
    }
    return reportFailure(e);
  }
}
