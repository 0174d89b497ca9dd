/**
 * Errors for expected failures (bad input, bad environment) and `assert` for broken invariants.
 *
 * Every expected failure carries a stable `code` (never match on message text), the offending
 * field or value where there is one, and the `cause` it wraps. Programmer errors are not
 * recoverable: `assert` throws an {@link AssertionError} that callers must not catch.
 */

/** Structured details attached to an error; JSON-serialisable. */
export type ErrorDetails = Readonly<Record<string, unknown>>;

/** Options accepted by every {@link GenesisError}. */
export interface GenesisErrorOptions {
  readonly cause?: unknown;
  readonly details?: ErrorDetails;
}

/**
 * Base class of every expected failure in Genesis.
 *
 * @example
 * throw new GenesisError('TOPOLOGY_INVALID', 'tiles must be >= 1', { details: { field: 'tiles' } });
 */
export class GenesisError extends Error {
  /** Stable, machine-readable code, `LAYER_WHAT` in upper snake case. */
  readonly code: string;
  /** Structured data about the failure (the field, the limit, the value seen). */
  readonly details: ErrorDetails;

  constructor(code: string, message: string, options: GenesisErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GenesisError';
    this.code = code;
    this.details = options.details ?? {};
  }

  /** A one-line, JSON-friendly form for logs and `--json` output. */
  toJSON(): { code: string; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** True when `err` is a {@link GenesisError}, optionally with the given code. */
export function isGenesisError(err: unknown, code?: string): err is GenesisError {
  return err instanceof GenesisError && (code === undefined || err.code === code);
}

/** Thrown by {@link assert}: a broken invariant, i.e. a bug. Never caught to recover. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionError';
  }
}

/**
 * Asserts a programmer invariant. Use for conditions that only a bug can violate; use a
 * {@link GenesisError} for anything bad input or the environment can cause.
 * @throws {AssertionError} when `condition` is false.
 */
export function assert(condition: unknown, message = 'invariant violated'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks unreachable code in exhaustive switches. */
export function assertNever(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}

/** A result union for operations whose failure is expected and common (zod's `safeParse` style). */
export type Result<T, E = GenesisError> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: E };

/** Builds a successful {@link Result}. */
export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

/** Builds a failed {@link Result}. */
export function err<E>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}

/** Turns any thrown value into a readable one-line message (for CLI output and logs). */
export function describeError(e: unknown): string {
  if (e instanceof GenesisError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}
