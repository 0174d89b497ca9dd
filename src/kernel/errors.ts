/**
 * Kernel errors. The kernel imports nothing outside Node built-ins (it is the TCB), so it has its
 * own error class with the same shape as core's `GenesisError`: a stable `code` (`KERNEL_*`),
 * structured `details` and a `cause`. Layers above wrap it when they need a core error.
 */

/** Stable codes of every expected kernel failure. */
export const KernelErrorCode = {
  /** The bytes are not a WebAssembly binary the kernel accepts (bad magic, truncated, invalid). */
  LOADER_MALFORMED: 'KERNEL_LOADER_MALFORMED',
  /** The module uses a feature the kernel refuses (imported memory, shared memory, memory64...). */
  LOADER_UNSUPPORTED: 'KERNEL_LOADER_UNSUPPORTED',
  /** The module imports something other than a known `genesis` syscall with its ABI type. */
  LOADER_IMPORT: 'KERNEL_LOADER_IMPORT',
  /** The module is larger than the loader accepts. */
  LOADER_TOO_LARGE: 'KERNEL_LOADER_TOO_LARGE',
  /** A module was not instrumented by this kernel (missing or wrong marker). */
  LOADER_NOT_INSTRUMENTED: 'KERNEL_LOADER_NOT_INSTRUMENTED',
  /** The live-domain bound was reached. */
  DOMAINS_EXHAUSTED: 'KERNEL_DOMAINS_EXHAUSTED',
  /** A memory quota does not cover the request. */
  QUOTA_EXCEEDED: 'KERNEL_QUOTA_EXCEEDED',
  /** A capability lookup failed (empty, stale, wrong type, missing rights). */
  CAP_INVALID: 'KERNEL_CAP_INVALID',
  /** A CNode has no free slot. */
  CNODE_FULL: 'KERNEL_CNODE_FULL',
  /** The operation needs a quiescent domain (no activation on the stack). */
  DOMAIN_BUSY: 'KERNEL_DOMAIN_BUSY',
  /** Unknown or dead domain. */
  DOMAIN_UNKNOWN: 'KERNEL_DOMAIN_UNKNOWN',
  /** Instantiation trapped or failed (for example the start function ran out of fuel). */
  SPAWN_FAILED: 'KERNEL_SPAWN_FAILED',
  /** A hot swap failed and was rolled back. */
  UPGRADE_FAILED: 'KERNEL_UPGRADE_FAILED',
  /** A bad argument to a host-side kernel API. */
  BAD_ARGUMENT: 'KERNEL_BAD_ARGUMENT',
} as const;

/** One of {@link KernelErrorCode}'s values. */
export type KernelErrorCodeValue = (typeof KernelErrorCode)[keyof typeof KernelErrorCode];

/** An expected kernel failure with a stable code. */
export class KernelError extends Error {
  /** Stable machine-readable code. */
  readonly code: KernelErrorCodeValue;
  /** Structured data about the failure. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: KernelErrorCodeValue,
    message: string,
    options: { cause?: unknown; details?: Readonly<Record<string, unknown>> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KernelError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** True when `e` is a {@link KernelError}, optionally with the given code. */
export function isKernelError(e: unknown, code?: KernelErrorCodeValue): e is KernelError {
  return e instanceof KernelError && (code === undefined || e.code === code);
}

/** Thrown when a kernel invariant is broken: a bug, never caught to recover. */
export class KernelAssertionError extends Error {
  constructor(message: string) {
    super(`kernel assertion failed: ${message}`);
    this.name = 'KernelAssertionError';
  }
}

/** Asserts a kernel invariant. */
export function kassert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new KernelAssertionError(message);
}
