/**
 * Driving code that runs on a VirtualClock over the in-process transport: time moves in steps,
 * and between steps the event loop gets a few turns so that transport deliveries (scheduled with
 * setImmediate) happen at the virtual time they belong to.
 */
import type { VirtualClock } from '../../src/core/index.ts';

/** Event-loop turns given to deliveries after each virtual-time step. */
const TURNS_PER_STEP = 6;

/** Moves virtual time by `ms` in steps of `stepMs`, letting deliveries run between steps. */
export async function runVirtual(clock: VirtualClock, ms: number, stepMs = 100): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    await clock.advance(Math.min(stepMs, ms - t));
    for (let i = 0; i < TURNS_PER_STEP; i++) await new Promise((r) => setImmediate(r));
  }
}

/**
 * Awaits `p` while virtual time moves (at most `maxMs`), so that requests with virtual timeouts
 * can complete; throws if it has not settled by then.
 */
export async function during<T>(clock: VirtualClock, p: Promise<T>, maxMs = 10_000): Promise<T> {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  p.then(
    (v) => {
      done = true;
      value = v;
    },
    (e) => {
      done = true;
      error = e;
    },
  );
  for (let t = 0; t < maxMs && !done; t += 50) await runVirtual(clock, 50, 50);
  if (error !== undefined) throw error;
  if (!done) throw new Error('did not settle');
  return value as T;
}
