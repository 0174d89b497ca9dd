/**
 * Structured logging through pino, injected as a {@link Logger}. Layers log objects first,
 * message second (`log.info({ node }, 'started')`) so logs stay machine-readable.
 */
import { pino } from 'pino';

/** The logger interface layers receive (a subset of pino's). */
export interface Logger {
  trace(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Log levels, most verbose first. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  readonly level?: LogLevel;
  /** File descriptor or path to write to; stderr by default so stdout stays for `--json`. */
  readonly destination?: number | string;
  readonly name?: string;
}

/** Creates a pino logger writing JSON lines (to stderr unless told otherwise). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const dest = pino.destination({ dest: options.destination ?? 2, sync: true });
  return pino({ level: options.level ?? 'info', name: options.name ?? 'genesis' }, dest);
}

/** A logger that drops everything, for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
