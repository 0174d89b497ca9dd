// Genesis kernel SDK for AssemblyScript, ABI version 1 (docs/kernel-abi.md): typed wrappers
// over the raw `genesis` imports in genesis.ts. Compile with the stub runtime and `--use abort=`
// so the module imports nothing but `genesis` (src/toolchain's compileAssemblyScript does this).
import * as sys from './genesis';

// ---- constants ---------------------------------------------------------------------------
/** Rights bits. */
export const RIGHT_READ: i32 = 1;
export const RIGHT_WRITE: i32 = 2;
export const RIGHT_GRANT: i32 = 4;
export const RIGHT_GRANT_REPLY: i32 = 8;
export const RIGHTS_ALL: i32 = 15;

/** Status codes (negative returns). */
export const OK: i32 = 0;
export const E_WOULD_BLOCK: i32 = -1;
export const E_QUEUE_FULL: i32 = -2;
export const E_NO_REPLY: i32 = -3;
export const E_SERVER_FAULT: i32 = -4;
export const E_DEPTH: i32 = -5;
export const E_DEAD: i32 = -6;
export const E_CNODE_FULL: i32 = -7;
export const E_BADGED: i32 = -8;
export const E_NO_RECEIVER: i32 = -9;

/** Labels at or above this value are the kernel's; a failed call's reply label is 0xff00 - status. */
export const LABEL_KERNEL_MIN: i32 = 0xff00;
export const LABEL_FAULT: i32 = 0xfff0;
/** Size of the IPC buffer a module exports as `genesis_ipc_buffer`. */
export const IPC_BUFFER_BYTES: i32 = 64 + 1024;
export const IPC_DATA_OFFSET: i32 = 64;
export const IPC_CAPS_OFFSET: i32 = 32;

/** The cptr of the i-th capability handed over at spawn (slot i, generation 1). */
export function initialCap(i: i32): i32 {
  return (1 << 12) | i;
}

/** Builds a message info word: label (16 bits), data length (11 bits), cap count (3 bits). */
export function info(label: i32, length: i32 = 0, caps: i32 = 0): i32 {
  return (label & 0xffff) | ((length & 0x7ff) << 16) | ((caps & 7) << 27);
}
export function infoLabel(i: i32): i32 {
  return i & 0xffff;
}
export function infoLength(i: i32): i32 {
  return (i >>> 16) & 0x7ff;
}
export function infoCaps(i: i32): i32 {
  return (i >>> 27) & 7;
}

// ---- capabilities ------------------------------------------------------------------------
/** Copies a capability with at most `rights`; returns the new cptr or a negative status. */
export function capCopy(src: i32, rights: i32): i32 {
  return sys.cap_copy(src, rights);
}
/** Mints a badged copy with at most `rights`. */
export function capMint(src: i32, rights: i32, badge: i64): i32 {
  return sys.cap_mint(src, rights, badge);
}
export function capMove(src: i32): i32 {
  return sys.cap_move(src);
}
export function capDelete(cptr: i32): i32 {
  return sys.cap_delete(cptr);
}
/** Deletes every capability derived from `cptr`; returns how many. */
export function capRevoke(cptr: i32): i32 {
  return sys.cap_revoke(cptr);
}
/** Object type (bits 8..) and rights (bits 0..7) of a cap, or -1 when the cptr is empty/stale. */
export function capInfo(cptr: i32): i64 {
  return sys.cap_info(cptr);
}

// ---- IPC ---------------------------------------------------------------------------------
/** Queues a message on an endpoint (needs Write). */
export function send(ep: i32, label: i32, mr0: i64 = 0, mr1: i64 = 0): i32 {
  return sys.send(ep, info(label), mr0, mr1);
}
/** Sends `length` bytes already placed in the IPC buffer's data area. */
export function sendData(ep: i32, label: i32, length: i32, mr0: i64 = 0): i32 {
  return sys.send(ep, info(label, length), mr0, 0);
}
/** Calls an endpoint (needs Write and GrantReply) and returns the reply's mr0. */
export function call(ep: i32, label: i32, mr0: i64 = 0, mr1: i64 = 0): i64 {
  return sys.call(ep, info(label), mr0, mr1);
}
/** The label of the last reply or message (>= LABEL_KERNEL_MIN for kernel errors). */
export function lastLabel(): i32 {
  return <i32>(sys.msg_get(0) & 0xffff);
}
/** The status of the last call: 0 or a negative E_* code. */
export function lastStatus(): i32 {
  const l = lastLabel();
  return l >= LABEL_KERNEL_MIN && l < LABEL_FAULT ? LABEL_KERNEL_MIN - l : OK;
}
export function lastBadge(): i64 {
  return sys.msg_get(1);
}
export function lastMr1(): i64 {
  return sys.msg_get(3);
}
/** Replies to the message being handled (instead of returning a value from the handler). */
export function reply(label: i32, mr0: i64, mr1: i64 = 0): i32 {
  return sys.reply(info(label), mr0, mr1);
}
/** Keeps the pending reply capability for a deferred reply; returns its cptr. */
export function replySave(): i32 {
  return sys.reply_save();
}
export function replySend(replyCap: i32, label: i32, mr0: i64, mr1: i64 = 0): i32 {
  return sys.reply_send(replyCap, info(label), mr0, mr1);
}
/** Becomes the receiver of an endpoint (needs Read); messages arrive at `genesis_handle`. */
export function recvBind(ep: i32): i32 {
  return sys.recv_bind(ep);
}
export function cancelBadged(ep: i32, badge: i64): i32 {
  return sys.ep_cancel_badged(ep, badge);
}

// ---- notifications, devices, IRQs, domains ------------------------------------------------
export function signal(n: i32): i32 {
  return sys.notify_signal(n);
}
export function poll(n: i32): i64 {
  return sys.notify_poll(n);
}
/**
 * Waits for a signal (seL4 Wait): returns and clears the word if bits are set; otherwise a
 * preemptible build (`makePreemptible`) blocks until a signal arrives and returns its bits.
 * A non-preemptible module gets `E_WOULD_BLOCK` (-1) at once instead of blocking.
 */
export function wait(n: i32): i64 {
  return sys.notify_wait(n);
}
/** Binds a notification: signals arrive at `genesis_notify(bits)`. */
export function notifyBind(n: i32): i32 {
  return sys.notify_bind(n);
}
export function deviceRead(dev: i32, reg: i32): i64 {
  return sys.device_read(dev, reg);
}
export function deviceWrite(dev: i32, reg: i32, value: i64): i32 {
  return sys.device_write(dev, reg, value);
}
export function irqBind(irq: i32, n: i32): i32 {
  return sys.irq_bind(irq, n);
}
export function irqAck(irq: i32): i32 {
  return sys.irq_ack(irq);
}
export function domainRestart(dom: i32): i32 {
  return sys.domain_restart(dom);
}

/** Logs a string through `debug_log`. */
export function log(s: string): void {
  const buf = String.UTF8.encode(s);
  sys.debug_log(changetype<usize>(buf), buf.byteLength);
}
