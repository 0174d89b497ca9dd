import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CryptoRng, SeededRng, VirtualClock } from '../../src/core/index.ts';

describe('VirtualClock', () => {
  it('fires timers in time order, FIFO at equal times, and only when due', async () => {
    const c = new VirtualClock(0);
    const order: string[] = [];
    c.setTimeout(() => order.push('b'), 20);
    c.setTimeout(() => order.push('a1'), 10);
    c.setTimeout(() => order.push('a2'), 10);
    await c.advance(9);
    expect(order).toEqual([]);
    await c.advance(11);
    expect(order).toEqual(['a1', 'a2', 'b']);
    expect(c.now()).toBe(20);
  });

  it('repeats intervals and stops them when cleared', () => {
    const c = new VirtualClock(0);
    let n = 0;
    const h = c.setInterval(() => n++, 10_000);
    c.advanceSync(40_000);
    expect(n).toBe(4);
    c.clearTimer(h);
    c.advanceSync(100_000);
    expect(n).toBe(4);
    expect(c.pendingTimers).toBe(0);
  });

  it('lets promise chains started by a timer settle before the next timer', async () => {
    const c = new VirtualClock(0);
    const log: string[] = [];
    c.setTimeout(() => {
      void Promise.resolve().then(() => log.push('then'));
    }, 1);
    c.setTimeout(() => log.push('second'), 2);
    await c.advance(5);
    expect(log).toEqual(['then', 'second']);
  });
});

describe('SeededRng', () => {
  it('is reproducible from its seed and differs across seeds', () => {
    const a = new SeededRng(42);
    const b = new SeededRng(42);
    const c = new SeededRng(43);
    const xs = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(xs);
  });

  it('keeps int() within bounds and nextFloat() in [0, 1)', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: 0, max: 1000 }),
        (seed, lo, span) => {
          const r = new SeededRng(seed);
          for (let i = 0; i < 20; i++) {
            const x = r.int(lo, lo + span);
            expect(x).toBeGreaterThanOrEqual(lo);
            expect(x).toBeLessThanOrEqual(lo + span);
            const f = r.nextFloat();
            expect(f >= 0 && f < 1).toBe(true);
          }
        },
      ),
    );
  });

  it('is roughly uniform (chi-square over 16 buckets)', () => {
    for (const rng of [new SeededRng(7), new CryptoRng()]) {
      const buckets = new Array<number>(16).fill(0);
      const n = 64_000;
      for (let i = 0; i < n; i++) buckets[rng.nextU32() >>> 28]! += 1;
      const expected = n / 16;
      const chi = buckets.reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
      // 15 degrees of freedom: p = 0.001 at 37.7.
      expect(chi).toBeLessThan(37.7);
    }
  });
});
