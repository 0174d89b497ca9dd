/**
 * The kernel's syscall ABI, version 1 (docs/kernel-abi.md is the prose version of this file).
 *
 * Domains import syscalls from one namespace, `genesis`; there is nothing POSIX-shaped. Each
 * syscall has a fixed WebAssembly signature that the loader checks before instantiation (a JS
 * import would otherwise silently coerce any signature).
 */

/** ABI version; bumped on any incompatible change. A module may export `genesis_abi_version`. */
export const ABI_VERSION = 1;
/** The one import namespace of the ABI. */
export const ABI_NAMESPACE = 'genesis';

/** WebAssembly value type bytes (binary format §5.3.1). */
export const ValType = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c } as const;

const I = ValType.i32;
const L = ValType.i64;

/** Syscall signatures: name → [params, results]. */
export const SYSCALLS: Readonly<Record<string, readonly [readonly number[], readonly number[]]>> = {
  debug_log: [[I, I], [I]],
  cap_copy: [[I, I], [I]],
  cap_mint: [[I, I, L], [I]],
  cap_move: [[I], [I]],
  cap_delete: [[I], [I]],
  cap_revoke: [[I], [I]],
  cap_info: [[I], [L]],
  send: [[I, I, L, L], [I]],
  call: [[I, I, L, L], [L]],
  reply: [[I, L, L], [I]],
  reply_save: [[], [I]],
  reply_send: [[I, I, L, L], [I]],
  recv_bind: [[I], [I]],
  msg_get: [[I], [L]],
  notify_signal: [[I], [I]],
  notify_poll: [[I], [L]],
  notify_bind: [[I], [I]],
  /** Added in ABI 1 without a version bump: a new import breaks no existing module. */
  notify_wait: [[I], [L]],
  ep_cancel_badged: [[I, L], [I]],
  device_read: [[I, I], [L]],
  device_write: [[I, I, L], [I]],
  irq_bind: [[I, I], [I]],
  irq_ack: [[I], [I]],
  domain_restart: [[I], [I]],
  yield: [[], []],
  fuel_yield: [[], []],
};

/** Syscalls after which an Asyncify-instrumented domain may be unwound (see docs/kernel.md). */
export const UNWINDING_SYSCALLS: readonly string[] = ['fuel_yield', 'yield', 'call', 'notify_wait'];

/** Rights bits (seL4's, per-object meaning in docs/kernel-abi.md). */
export const Rights = { READ: 1, WRITE: 2, GRANT: 4, GRANT_REPLY: 8, ALL: 15 } as const;

/** Kernel object types as reported by `cap_info`. */
export const ObjType = {
  ENDPOINT: 1,
  NOTIFICATION: 2,
  REPLY: 3,
  CNODE: 4,
  DOMAIN: 5,
  SCHED_CONTEXT: 6,
  MEMORY_QUOTA: 7,
  DEVICE: 8,
  IRQ: 9,
} as const;
/** One of {@link ObjType}'s values. */
export type ObjTypeValue = (typeof ObjType)[keyof typeof ObjType];

/** Status codes returned (as negative numbers) by syscalls whose failure is expected. */
export const Status = {
  OK: 0,
  /** The receiver is busy and the caller cannot block; nothing was sent. */
  E_WOULD_BLOCK: -1,
  /** The endpoint's queue is full. */
  E_QUEUE_FULL: -2,
  /** No reply capability is pending. */
  E_NO_REPLY: -3,
  /** The server faulted while handling the call. */
  E_SERVER_FAULT: -4,
  /** Too many nested synchronous calls. */
  E_DEPTH: -5,
  /** The object is gone (its last capability was deleted or it was revoked). */
  E_DEAD: -6,
  /** The caller's CNode has no free slot. */
  E_CNODE_FULL: -7,
  /** Minting a badge onto an already badged capability. */
  E_BADGED: -8,
  /** The endpoint has no receiver bound. */
  E_NO_RECEIVER: -9,
} as const;

/** Labels at or above this value are reserved for the kernel. */
export const LABEL_KERNEL_MIN = 0xff00;
/** Label of a fault message delivered to a fault endpoint. */
export const LABEL_FAULT = 0xfff0;
/** Label of a reply the kernel synthesises when a call fails: `LABEL_ERROR_BASE - status`. */
export const LABEL_ERROR_BASE = 0xff00;

/** The `info` word: label (16 bits), data length (11 bits), capability count (3 bits). */
export const Info = {
  label: (info: number): number => info & 0xffff,
  length: (info: number): number => (info >>> 16) & 0x7ff,
  caps: (info: number): number => (info >>> 27) & 0x7,
  make: (label: number, length = 0, caps = 0): number =>
    ((label & 0xffff) | ((length & 0x7ff) << 16) | ((caps & 0x7) << 27)) >>> 0,
} as const;

/** Fault kinds carried in mr0 of a fault message. */
export const FaultKind = {
  TRAP: 1,
  OUT_OF_BUDGET: 2,
  QUOTA_EXCEEDED: 3,
  INVALID_CAP: 4,
  BAD_SYSCALL_ARG: 5,
  /** A passive server ran out of its caller's donated budget (seL4 MCS timeout fault). */
  TIMEOUT: 6,
  UPGRADE_FAILED: 7,
} as const;
/** One of {@link FaultKind}'s values. */
export type FaultKindValue = (typeof FaultKind)[keyof typeof FaultKind];

/** Byte offsets inside the IPC buffer. */
export const IpcBuffer = {
  INFO: 0,
  BADGE: 8,
  MR0: 16,
  MR1: 24,
  CAPS: 32,
  DATA: 64,
} as const;

/** Export names a domain may provide. */
export const Exports = {
  MAIN: 'genesis_main',
  HANDLE: 'genesis_handle',
  NOTIFY: 'genesis_notify',
  IPC_BUFFER: 'genesis_ipc_buffer',
  UPGRADE: 'genesis_upgrade',
  SAVE_STATE: 'genesis_save_state',
  ASYNC_BUFFER: 'genesis_async_buffer',
  ASYNC_BUFFER_BYTES: 'genesis_async_buffer_bytes',
  SOFT_FUEL: 'genesis_soft_fuel',
} as const;

/** Prefix of the exports the kernel's instrumenter adds; modules may not use it. */
export const KERNEL_EXPORT_PREFIX = '__genesis_';
