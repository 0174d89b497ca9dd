/** Notifications: the lean signal → handler path keeps priorities, accounting and faults. */
import { describe, expect, it } from 'vitest';
import {
  type Endpoint,
  FaultKind,
  Kernel,
  LABEL_FAULT,
  type Notification,
  Rights,
} from '../../src/kernel/index.ts';
import { wat } from './helpers.ts';

const NOTIFIED = `(module
  (global $sum (export "sum") (mut i64) (i64.const 0))
  (global $runs (export "runs") (mut i32) (i32.const 0))
  (func (export "genesis_notify") (param $bits i64)
    (global.set $runs (i32.add (global.get $runs) (i32.const 1)))
    (global.set $sum (i64.add (global.get $sum) (local.get $bits)))))`;

describe('notifications', () => {
  it('signals run the highest-priority bound domain first, with bits ORed and cleared', async () => {
    const k = new Kernel();
    const m = await wat(NOTIFIED);
    const lo = k.spawn(m, { priority: 10 });
    const hi = k.spawn(m, { priority: 200 });
    const nLo = k.createNotification();
    const nHi = k.createNotification();
    k.bindNotification(lo.domain, nLo);
    k.bindNotification(hi.domain, nHi);
    k.signal(k.mint(nLo, Rights.WRITE, 4n));
    k.signal(k.mint(nLo, Rights.WRITE, 1n));
    k.signal(k.mint(nHi, Rights.WRITE, 2n));
    expect(k.run(1)).toBe(1);
    const g = (d: typeof lo, n: string): unknown =>
      (d.domain.instance.exports[n] as { value: unknown }).value;
    expect(g(hi, 'runs')).toBe(1);
    expect(g(lo, 'runs')).toBe(0);
    expect(k.run(1)).toBe(1);
    // Two signals before the handler ran coalesce into one activation with both bits.
    expect(g(lo, 'sum')).toBe(5n);
    expect(g(lo, 'runs')).toBe(1);
    expect(k.run()).toBe(0);
    expect(lo.domain.stats.activations).toBe(1);
    expect(lo.domain.stats.fuelUsed).toBeGreaterThan(0);
    expect((nLo.obj as Notification).word).toBe(0n);
  });

  it('a faulting notify handler is reported to the fault endpoint and stops the domain', async () => {
    const k = new Kernel();
    const faultEp = k.createEndpoint();
    const d = k.spawn(
      await wat(`(module (func (export "genesis_notify") (param i64) unreachable))`),
      { faultEndpoint: faultEp },
    );
    const n = k.createNotification();
    k.bindNotification(d.domain, n);
    k.signal(n);
    k.run();
    expect(d.domain.state).toBe('faulted');
    const q = (faultEp.obj as Endpoint).queue;
    expect(q.map((x) => [x.info & 0xffff, x.mr0])).toEqual([[LABEL_FAULT, BigInt(FaultKind.TRAP)]]);
    k.signal(n);
    expect(k.run()).toBe(0);
  });

  it('an endless notify handler faults OUT_OF_BUDGET and is charged its budget', async () => {
    const k = new Kernel();
    const d = k.spawn(
      await wat(`(module (func (export "genesis_notify") (param i64) (loop $l (br $l))))`),
      { budgetUnits: 50_000, periodUnits: 100_000 },
    );
    const n = k.createNotification();
    k.bindNotification(d.domain, n);
    k.signal(n);
    k.run();
    expect(d.domain.faultLog.map((f) => f.kind)).toEqual([FaultKind.OUT_OF_BUDGET]);
    expect(d.domain.stats.fuelUsed).toBeGreaterThanOrEqual(50_000);
    expect(d.domain.sched.remaining).toBeLessThanOrEqual(0);
  });
});
