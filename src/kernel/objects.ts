/**
 * Kernel objects other than domains: endpoints, replies, notifications, scheduling contexts,
 * memory quotas, devices and IRQ handlers. They hold state; the rules for invoking them live in
 * kernel.ts, which is the only place that mutates them on a domain's behalf.
 */
import { ObjType, Status } from './abi.ts';
import type { Cap } from './caps.ts';
import { KObject } from './caps.ts';
import { KernelError, KernelErrorCode } from './errors.ts';
import { DEVICE_REGISTERS_MAX, ENDPOINT_QUEUE_MSGS_MAX, SCHED_PRIORITIES } from './limits.ts';

/** A message as the kernel carries it between domains. */
export interface Message {
  readonly badge: bigint;
  readonly info: number;
  readonly mr0: bigint;
  readonly mr1: bigint;
  /** Extra bytes from the sender's IPC buffer. */
  readonly data: Uint8Array | undefined;
  /** Capabilities granted with the message; derived into the receiver's CSpace on delivery. */
  readonly caps: readonly Cap[];
  /** Sender's priority: the queue is ordered by it, FIFO within a priority. */
  readonly priority: number;
  /** Present for `call`: where the reply goes. */
  readonly reply: Reply | undefined;
}

/** Where a reply is delivered. */
export interface ReplySink {
  deliver(info: number, mr0: bigint, mr1: bigint, data: Uint8Array | undefined): void;
}

/** A single-use reply capability's object, created by `call` (seL4 §4.2.4). */
export class Reply extends KObject {
  readonly type = ObjType.REPLY;
  done = false;

  constructor(private readonly sink: ReplySink) {
    super();
  }

  /** Delivers the reply once; returns false if it was already used. */
  resolve(info: number, mr0: bigint, mr1: bigint, data?: Uint8Array): boolean {
    if (this.done) return false;
    this.done = true;
    this.sink.deliver(info, mr0, mr1, data);
    return true;
  }

  protected override onDestroy(): void {
    // A reply dropped without an answer tells the caller the server went away.
    this.resolve(0xff00 - Status.E_DEAD, 0n, 0n);
  }
}

/** A synchronous IPC endpoint with a priority-ordered, FIFO-within-priority queue. */
export class Endpoint extends KObject {
  readonly type = ObjType.ENDPOINT;
  /** Queued messages, highest priority first; FIFO within a priority. */
  readonly queue: Message[] = [];
  /** The domain bound to receive on this endpoint. */
  receiver: { readonly id: number } | undefined;
  /** Called when the endpoint gets a message, so the kernel can wake the receiver. */
  onMessage: (() => void) | undefined;

  /** Inserts in priority order; returns E_QUEUE_FULL when the bound is reached. */
  enqueue(msg: Message): number {
    if (this.queue.length >= ENDPOINT_QUEUE_MSGS_MAX) return Status.E_QUEUE_FULL;
    // Binary search for the first message with a lower priority: FIFO among equals.
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.queue[mid] as Message).priority >= msg.priority) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, msg);
    this.onMessage?.();
    return Status.OK;
  }

  /** Removes and returns the head message. */
  dequeue(): Message | undefined {
    return this.queue.shift();
  }

  /** Drops queued messages carrying `badge` (seL4 cancelBadgedSends); returns how many. */
  cancelBadged(badge: bigint): number {
    let removed = 0;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const m = this.queue[i] as Message;
      if (m.badge === badge) {
        this.queue.splice(i, 1);
        m.reply?.resolve(0xff00 - Status.E_DEAD, 0n, 0n);
        removed++;
      }
    }
    return removed;
  }

  protected override onDestroy(): void {
    for (const m of this.queue.splice(0)) m.reply?.resolve(0xff00 - Status.E_DEAD, 0n, 0n);
    this.receiver = undefined;
  }
}

/** A word of signal bits (seL4 notifications): signal ORs the badge in, wait/poll clear it. */
export class Notification extends KObject {
  readonly type = ObjType.NOTIFICATION;
  word = 0n;
  /** `word !== 0n`, kept as a boolean: the scheduler tests it several times per signal and a
   * BigInt comparison is a builtin call in optimised code, a boolean a register test. */
  set = false;
  /** The domain whose `genesis_notify` runs when bits arrive. */
  bound: { readonly id: number } | undefined;
  onSignal: (() => void) | undefined;
  /** Domains blocked in `notify_wait`, FIFO (seL4's notification wait queue), bounded by
   * {@link NOTIFY_WAITERS_MAX}. Entries whose domain stopped waiting are skipped lazily. */
  readonly waiters: { readonly id: number }[] = [];
  /** Set by the kernel: hands `bits` to a waiter; returns false when nobody was waiting. */
  wake: ((bits: bigint) => boolean) | undefined;
  /** Set by the kernel: called when the notification dies, to release its waiters. */
  onDead: (() => void) | undefined;

  signal(bits: bigint): void {
    const b = bits === 0n ? 1n : bits;
    // A waiter takes the signal directly and the word stays as it was (seL4 Signal).
    if (this.waiters.length > 0 && this.wake?.(b)) return;
    // No BigInt allocation in the common case (word empty): the badge itself is stored.
    this.word = this.set ? this.word | b : b;
    this.set = true;
    this.onSignal?.();
  }

  /** Returns and clears the word. */
  take(): bigint {
    const w = this.word;
    this.word = 0n;
    this.set = false;
    return w;
  }

  protected override onDestroy(): void {
    this.bound = undefined;
    this.onSignal = undefined;
    this.onDead?.();
  }
}

/** MCS scheduling context: a budget per period (fuel units of kernel time) and a priority. */
export class SchedContext extends KObject {
  readonly type = ObjType.SCHED_CONTEXT;
  /** Budget left in the current period; may go negative (an overrun postpones the next run). */
  remaining: number;
  periodStart = 0;

  constructor(
    readonly budget: number,
    readonly period: number,
    readonly priority: number,
  ) {
    super();
    if (!Number.isInteger(priority) || priority < 0 || priority >= SCHED_PRIORITIES) {
      throw new KernelError(
        KernelErrorCode.BAD_ARGUMENT,
        `priority must be in [0, ${SCHED_PRIORITIES})`,
      );
    }
    if (!Number.isInteger(budget) || budget < 1 || !Number.isInteger(period) || period < budget) {
      throw new KernelError(
        KernelErrorCode.BAD_ARGUMENT,
        'need 1 <= budget <= period (fuel units)',
        {
          details: { budget, period },
        },
      );
    }
    this.remaining = budget;
  }

  /** Refills whole periods that have elapsed by `now`; returns true if budget is available. */
  refill(now: number): boolean {
    if (this.remaining > 0) return true;
    const elapsed = Math.floor((now - this.periodStart) / this.period);
    if (elapsed > 0) {
      const debt = -this.remaining;
      const periods = Math.min(elapsed, Math.ceil((debt + 1) / this.budget));
      this.remaining += periods * this.budget;
      this.periodStart += elapsed * this.period;
    }
    return this.remaining > 0;
  }

  /** Kernel time at which the next refill happens. */
  nextRelease(): number {
    return this.periodStart + this.period;
  }
}

/** Untyped-style memory: bytes of linear memory that may be retyped into domains. */
export class MemoryQuota extends KObject {
  readonly type = ObjType.MEMORY_QUOTA;
  bytesUsed = 0;

  constructor(readonly bytesMax: number) {
    super();
  }

  /** Reserves `bytes`; throws QUOTA_EXCEEDED when the quota cannot cover it. */
  reserve(bytes: number): void {
    if (bytes > this.bytesMax - this.bytesUsed) {
      throw new KernelError(
        KernelErrorCode.QUOTA_EXCEEDED,
        `quota has ${this.bytesMax - this.bytesUsed} bytes left`,
        {
          details: { requested: bytes, left: this.bytesMax - this.bytesUsed },
        },
      );
    }
    this.bytesUsed += bytes;
  }

  unreserve(bytes: number): void {
    this.bytesUsed = Math.max(0, this.bytesUsed - bytes);
  }
}

/**
 * The host-side device interface the HAL implements: registers addressed by number. Reads and
 * writes are synchronous and must be bounded in time (they run inside a domain's syscall).
 */
export interface HostDevice {
  readonly name: string;
  read(register: number): bigint;
  write(register: number, value: bigint): void;
}

/** A handle to a host device; Read allows `device_read`, Write allows `device_write`. */
export class Device extends KObject {
  readonly type = ObjType.DEVICE;
  constructor(readonly host: HostDevice) {
    super();
  }

  checkRegister(reg: number): boolean {
    return Number.isInteger(reg) && reg >= 0 && reg < DEVICE_REGISTERS_MAX;
  }
}

/** An IRQ handler: delivers an interrupt line through a bound notification until acked. */
export class Irq extends KObject {
  readonly type = ObjType.IRQ;
  notification: Notification | undefined;
  bits = 1n;
  /** Raised and not yet acknowledged; further raises are coalesced (level-triggered model). */
  pending = false;
  raised = 0;

  constructor(readonly line: number) {
    super();
  }

  raise(): void {
    this.raised++;
    if (this.pending) return;
    this.pending = true;
    if (this.notification !== undefined && !this.notification.dead)
      this.notification.signal(this.bits);
  }
}

/**
 * A device for tests and examples: a bank of registers. Writing register 0 appends the value to
 * `output`; writing register 1 raises the attached IRQ callback (a "doorbell").
 */
export class TestDevice implements HostDevice {
  readonly registers = new BigUint64Array(16);
  readonly output: bigint[] = [];
  onDoorbell: (() => void) | undefined;

  constructor(readonly name = 'test-device') {}

  read(register: number): bigint {
    return this.registers[register % this.registers.length] as bigint;
  }

  write(register: number, value: bigint): void {
    this.registers[register % this.registers.length] = BigInt.asUintN(64, value);
    if (register === 0 && this.output.length < 4096) this.output.push(value);
    if (register === 1) this.onDoorbell?.();
  }
}
