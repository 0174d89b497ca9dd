/** Notifications: the lean signal → handler path keeps priorities, accounting and faults. */
import { describe, expect, it } from 'vitest';
import {
  type Cap,
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

/** A preemptible waiter: main loops `rounds` times on notify_wait, summing what it gets. */
const WAITER = `(module
  (import "genesis" "notify_wait" (func $wait (param i32) (result i64)))
  (memory 1)
  (global (export "genesis_async_buffer") i32 (i32.const 1024))
  (global (export "genesis_async_buffer_bytes") i32 (i32.const 4096))
  (global $sum (export "sum") (mut i64) (i64.const 0))
  (global $got (export "got") (mut i32) (i32.const 0))
  (global $last (export "last") (mut i64) (i64.const 0))
  (func (export "genesis_main")
    (local $i i32)
    (loop $l
      (global.set $last (call $wait (i32.const 4096)))
      (global.set $sum (i64.add (global.get $sum) (global.get $last)))
      (global.set $got (i32.add (global.get $got) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 3))))))`;

describe('notify_wait', () => {
  it('blocks a preemptible domain until a signal and returns the bits', async () => {
    const { makePreemptible, watToWasm } = await import('../../src/toolchain/index.ts');
    const { loadModule } = await import('../../src/kernel/index.ts');
    const mod = loadModule(await makePreemptible(await watToWasm(WAITER)), 'waiter');
    const k = new Kernel();
    const n = k.createNotification();
    const w = k.spawn(mod, { caps: [n] });
    const g = (name: string): unknown =>
      (w.domain.instance.exports[name] as { value: unknown }).value;
    k.run();
    // Word empty: the domain is unwound and blocked, nothing returned yet.
    expect(w.domain.blocked).toBe(true);
    expect(g('got')).toBe(0);
    expect(k.run()).toBe(0);
    k.signal(k.mint(n, Rights.WRITE, 6n));
    // The waiter took the bits directly: the word stays empty.
    expect((n.obj as Notification).word).toBe(0n);
    k.run();
    expect([g('got'), g('last')]).toEqual([1, 6n]);
    expect(w.domain.blocked).toBe(true);
    // Bits already set: notify_wait returns at once, clearing them.
    k.signal(k.mint(n, Rights.WRITE, 1n));
    k.run();
    k.signal(k.mint(n, Rights.WRITE, 8n));
    k.run();
    expect([g('got'), g('sum')]).toEqual([3, 15n]);
    expect(w.domain.state).toBe('live');
    expect(w.domain.stats.preemptions).toBe(0);
  });

  it('returns the word at once when set, E_WOULD_BLOCK when not, for non-preemptible domains', async () => {
    const m = await wat(`(module
      (import "genesis" "notify_wait" (func $wait (param i32) (result i64)))
      (global $a (export "a") (mut i64) (i64.const 0))
      (global $b (export "b") (mut i64) (i64.const 0))
      (func (export "genesis_main")
        (global.set $a (call $wait (i32.const 4096)))
        (global.set $b (call $wait (i32.const 4096)))))`);
    const k = new Kernel();
    const n = k.createNotification();
    const d = k.spawn(m, { caps: [n] });
    k.signal(k.mint(n, Rights.WRITE, 0x30n));
    k.run();
    const g = (name: string): unknown =>
      (d.domain.instance.exports[name] as { value: unknown }).value;
    expect(g('a')).toBe(0x30n);
    expect(g('b')).toBe(-1n);
    expect(d.domain.state).toBe('live');
  });

  it('a waiter whose notification dies resumes with E_DEAD; a killed waiter takes no signal', async () => {
    const { makePreemptible, watToWasm } = await import('../../src/toolchain/index.ts');
    const { loadModule } = await import('../../src/kernel/index.ts');
    const mod = loadModule(await makePreemptible(await watToWasm(WAITER)), 'waiter');
    const k = new Kernel();
    const n = k.createNotification();
    const a = k.spawn(mod, { caps: [n] });
    const b = k.spawn(mod, { caps: [n] });
    k.run();
    expect(a.domain.blocked && b.domain.blocked).toBe(true);
    k.kill(a.domain);
    const c = k.mint(n, Rights.WRITE, 2n);
    k.signal(c);
    k.run();
    expect((b.domain.instance.exports.last as { value: bigint }).value).toBe(2n);
    k.delete(c);
    k.delete(n);
    // b's own cap is the last one: deleting it kills the notification under the waiter.
    expect(b.domain.blocked).toBe(true);
    k.delete(b.domain.cspace.lookup(b.cptrs[0] as number) as Cap);
    expect(n.obj.dead).toBe(true);
    k.run();
    expect((b.domain.instance.exports.last as { value: bigint }).value).toBe(-6n);
  });
});
