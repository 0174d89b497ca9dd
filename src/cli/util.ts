/**
 * Helpers shared by every `genesis` subcommand: one-line errors with exit code 2 for bad input
 * and environments, duration parsing, progress bars on stderr, and JSON output on stdout.
 */
import type { Command } from 'commander';
import {
  DEFAULT_TOPOLOGY_SIZE,
  describeError,
  GenesisError,
  generateTopology,
  isGenesisError,
  loadTopologyFile,
  type Topology,
  type TopologySize,
} from '../core/index.ts';

/** Exit code for bad input or a bad environment (a usage error). */
export const EXIT_USAGE = 2;

/** A bad command line or environment: printed as one line, exit code 2. */
export class CliError extends GenesisError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'CliError';
  }
}

/** Process-wide CLI flags that affect error display. */
export const cliState = { verbose: false };

/**
 * Prints a failure as one line naming the problem (and its fix where we know it) and returns
 * the exit code. Expected failures never print a stack trace unless `--verbose`.
 */
export function reportFailure(e: unknown): number {
  const line = isGenesisError(e)
    ? `genesis: ${describeError(e)}`
    : `genesis: internal error: ${describeError(e)}`;
  process.stderr.write(`${line}\n`);
  if (cliState.verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return isGenesisError(e) ? EXIT_USAGE : 1;
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/** Parses `500ms`, `5s`, `2m`, `1h` or a bare number of seconds into milliseconds. */
export function parseDuration(text: string, flag = '--for'): number {
  const m = DURATION_RE.exec(text.trim());
  if (m === null)
    throw new CliError(
      'CLI_BAD_DURATION',
      `${flag} "${text}" is not a duration; use e.g. 500ms, 5s, 2m`,
    );
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

/** Parses a non-negative integer flag. */
export function parseIntFlag(
  text: string,
  flag: string,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new CliError(
      'CLI_BAD_NUMBER',
      `${flag} must be an integer in [${min}, ${max}], got "${text}"`,
    );
  }
  return n;
}

/** Writes one JSON value as a line on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

const BAR_WIDTH_CHARS = 28;

/** Renders a progress bar such as `[#########.......] 12/40 booting`. */
export function renderBar(done: number, total: number, label: string): string {
  const frac = total <= 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(frac * BAR_WIDTH_CHARS);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH_CHARS - filled)}] ${done}/${total} ${label}`;
}

/**
 * A status line on stderr: rewritten in place on a terminal, printed at most every
 * `plainEveryMs` otherwise (so logs and CI output stay readable).
 */
export class StatusLine {
  private lastPlainMs = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly plainEveryMs = 5_000) {}

  update(text: string, force = false): void {
    if (this.tty) {
      const width = process.stderr.columns ?? 120;
      process.stderr.write(`\r\x1b[2K${text.slice(0, Math.max(10, width - 1))}`);
      return;
    }
    const now = Date.now();
    if (force || now - this.lastPlainMs >= this.plainEveryMs) {
      this.lastPlainMs = now;
      process.stderr.write(`${text}\n`);
    }
  }

  done(text?: string): void {
    if (this.tty) process.stderr.write(`\r\x1b[2K${text === undefined ? '' : `${text}\n`}`);
    else if (text !== undefined) process.stderr.write(`${text}\n`);
  }
}

/** The topology flags shared by `up`, `topology ...` and `fabric up`. */
export interface SizeFlags {
  topology?: string;
  regions: string;
  hubs: string;
  pods: string;
  tiles: string;
}

/** Adds `--topology` and the size flags to a command. */
export function sizeOptions(
  cmd: Command,
  tilesDefault = String(DEFAULT_TOPOLOGY_SIZE.tiles),
): Command {
  return cmd
    .option('--topology <file>', 'topology file (YAML or JSON)')
    .option('--regions <n>', 'regions', String(DEFAULT_TOPOLOGY_SIZE.regions))
    .option('--hubs <n>', 'hubs per region', String(DEFAULT_TOPOLOGY_SIZE.hubs))
    .option('--pods <n>', 'pods per hub', String(DEFAULT_TOPOLOGY_SIZE.pods))
    .option('--tiles <n>', 'tiles per pod', tilesDefault);
}

/** Parses the size flags. @throws {CliError} on a bad number. */
export function parseSize(o: SizeFlags): TopologySize {
  return {
    regions: parseIntFlag(o.regions, '--regions', 1, 64),
    hubs: parseIntFlag(o.hubs, '--hubs', 1, 1024),
    pods: parseIntFlag(o.pods, '--pods', 1, 1024),
    tiles: parseIntFlag(o.tiles, '--tiles', 1, 4096),
  };
}

/** The topology the flags name: the file if given, else one generated from the sizes. */
export function topologyFromFlags(o: SizeFlags): Topology {
  return o.topology !== undefined ? loadTopologyFile(o.topology) : generateTopology(parseSize(o));
}
