/**
 * Time as an injected component. Production code takes a {@link Clock}; tests and simulations
 * pass a {@link VirtualClock} and advance it explicitly, so a 40 s lease expiry or a Mars light
 * delay runs in microseconds of wall time and in the same order every run.
 */
import { assert } from './errors.ts';

/** An opaque handle for a scheduled callback. */
export interface TimerHandle {
  readonly id: number;
}

/** The clock interface every layer receives. Times are milliseconds. */
export interface Clock {
  /** Wall-clock time in ms since the Unix epoch (virtual in simulations). */
  now(): number;
  /** Monotonic time in ms with sub-millisecond precision, for measuring durations. */
  monotonic(): number;
  /** Runs `fn` once after `delayMs`. */
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  /** Runs `fn` every `periodMs` until cleared. */
  setInterval(fn: () => void, periodMs: number): TimerHandle;
  /** Cancels a timer; unknown or already-fired handles are ignored. */
  clearTimer(handle: TimerHandle): void;
  /** Resolves after `delayMs`. */
  sleep(delayMs: number): Promise<void>;
}

/** The real clock, backed by Node's timers. Timers are unref'd so they never hold a process. */
export class SystemClock implements Clock {
  private nextId = 1;
  private readonly timers = new Map<number, NodeJS.Timeout>();

  now(): number {
    return Date.now();
  }

  monotonic(): number {
    return performance.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    const t = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, delayMs);
    this.timers.set(id, t);
    return { id };
  }

  setInterval(fn: () => void, periodMs: number): TimerHandle {
    assert(periodMs > 0, 'interval period must be positive');
    const id = this.nextId++;
    this.timers.set(id, setInterval(fn, periodMs));
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    const t = this.timers.get(handle.id);
    if (t !== undefined) {
      clearTimeout(t);
      this.timers.delete(handle.id);
    }
  }

  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, delayMs));
  }
}

interface VirtualTimer {
  readonly id: number;
  at: number;
  readonly seq: number;
  readonly periodMs: number;
  readonly fn: () => void;
}

/** Upper bound on timers fired by one `advance` call, so a self-rescheduling zero-delay timer
 * cannot hang a test. */
export const VIRTUAL_CLOCK_FIRES_PER_ADVANCE_MAX = 10_000_000;

/**
 * A deterministic clock whose time moves only when told to. Timers due at the same instant
 * fire in the order they were scheduled.
 */
export class VirtualClock implements Clock {
  private current: number;
  private nextId = 1;
  private seq = 0;
  private readonly timers = new Map<number, VirtualTimer>();

  constructor(startMs = 1_700_000_000_000) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  monotonic(): number {
    return this.current;
  }

  /** Number of pending timers (for leak checks in tests). */
  get pendingTimers(): number {
    return this.timers.size;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    return this.schedule(fn, Math.max(0, delayMs), 0);
  }

  setInterval(fn: () => void, periodMs: number): TimerHandle {
    assert(periodMs > 0, 'interval period must be positive');
    return this.schedule(fn, periodMs, periodMs);
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle.id);
  }

  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, delayMs));
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due, in time order. Awaits a
   * macrotask turn between timers so promise chains started by one timer settle before the next
   * fires (as they would in real time).
   */
  async advance(ms: number): Promise<void> {
    assert(ms >= 0, 'cannot move time backwards');
    const target = this.current + ms;
    for (let fired = 0; this.fireNext(target); ) {
      assert(
        ++fired <= VIRTUAL_CLOCK_FIRES_PER_ADVANCE_MAX,
        'virtual clock: too many timers fired',
      );
      await flushMicrotasks();
    }
    this.current = target;
    await flushMicrotasks();
  }

  /** Synchronous variant of {@link advance} for code with no promise chains between timers. */
  advanceSync(ms: number): void {
    assert(ms >= 0, 'cannot move time backwards');
    const target = this.current + ms;
    for (let fired = 0; this.fireNext(target); ) {
      assert(
        ++fired <= VIRTUAL_CLOCK_FIRES_PER_ADVANCE_MAX,
        'virtual clock: too many timers fired',
      );
    }
    this.current = target;
  }

  /** Fires the earliest timer due at or before `target`; false when there is none. */
  private fireNext(target: number): boolean {
    const next = this.earliest();
    if (next === undefined || next.at > target) return false;
    this.current = Math.max(this.current, next.at);
    if (next.periodMs > 0) next.at += next.periodMs;
    else this.timers.delete(next.id);
    next.fn();
    return true;
  }

  private schedule(fn: () => void, delayMs: number, periodMs: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { id, at: this.current + delayMs, seq: this.seq++, periodMs, fn });
    return { id };
  }

  private earliest(): VirtualTimer | undefined {
    let best: VirtualTimer | undefined;
    for (const t of this.timers.values()) {
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}

/** Lets pending promise callbacks run: one macrotask turn. */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
