import { describe, expect, it } from 'vitest';
import {
  checkpoint,
  hotSwap,
  isKernelError,
  Kernel,
  KernelErrorCode,
  Rights,
  restore,
  startShadow,
} from '../../src/kernel/index.ts';
import { example, wat } from './helpers.ts';

/** Counter v2: same state format, but "add" adds twice the argument. */
const COUNTER_V2 = `(module
  (memory 1)
  (global $count (mut i64) (i64.const 0))
  (global (export "genesis_ipc_buffer") i32 (i32.const 1024))
  (func (export "genesis_handle") (param $badge i64) (param $info i32) (param $mr0 i64) (param $mr1 i64) (result i64)
    (if (i32.eq (i32.and (local.get $info) (i32.const 0xffff)) (i32.const 1))
      (then (global.set $count (i64.add (global.get $count) (i64.mul (local.get $mr0) (i64.const 2))))))
    (global.get $count))
  (func (export "genesis_upgrade") (param $from i32) (param $len i32) (result i32)
    (if (i32.eq (local.get $len) (i32.const 8)) (then (global.set $count (i64.load (i32.const 1088)))))
    (i32.const 0)))`;

describe('hot swap', () => {
  it('moves state through the upgrade hook and keeps identity, caps and queues', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const d = k.spawn(await example('counter'), { caps: [k.createNotification()] });
    k.bindReceiver(d.domain, ep);
    expect(k.call(ep, 1, 5n).mr0).toBe(5n);
    k.send(ep, 1, 1n); // queued across the swap
    const r = hotSwap(k, d.domain, await wat(COUNTER_V2));
    expect(r).toEqual({ fromVersion: 1, toVersion: 2, stateBytes: 8 });
    expect(k.domain(d.domain.id)).toBe(d.domain);
    expect(d.domain.cspace.count).toBe(1);
    k.run(); // the queued +1 is handled by v2: 5 + 2
    expect(k.call(ep, 2).mr0).toBe(7n);
    expect(k.call(ep, 1, 10n).mr0).toBe(27n);
    expect(d.domain.previous).toBeDefined();
  });

  it('a failing upgrade hook rolls back to the old version untouched', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const d = k.spawn(await example('counter'));
    k.bindReceiver(d.domain, ep);
    k.call(ep, 1, 3n);
    const bad =
      await wat(`(module (memory 1) (global (export "genesis_ipc_buffer") i32 (i32.const 1024))
      (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) (i64.const -1))
      (func (export "genesis_upgrade") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 0)))`);
    let err: unknown;
    try {
      hotSwap(k, d.domain, bad);
    } catch (e) {
      err = e;
    }
    expect(isKernelError(err, KernelErrorCode.UPGRADE_FAILED)).toBe(true);
    expect(d.domain.version).toBe(1);
    expect(k.call(ep, 2).mr0).toBe(3n);
    const noHook = await wat(
      '(module (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) (i64.const 0)))',
    );
    expect(() => hotSwap(k, d.domain, noHook)).toThrow(/genesis_upgrade/);
    expect(k.call(ep, 1, 1n).mr0).toBe(4n);
  });

  it('a fault during probation rolls back automatically to the previous version', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const d = k.spawn(await example('counter'));
    k.bindReceiver(d.domain, ep);
    k.call(ep, 1, 2n);
    const crashy =
      await wat(`(module (memory 1) (global (export "genesis_ipc_buffer") i32 (i32.const 1024))
      (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) unreachable)
      (func (export "genesis_upgrade") (param i32 i32) (result i32) (i32.const 0)))`);
    hotSwap(k, d.domain, crashy);
    expect(d.domain.version).toBe(2);
    const r = k.call(ep, 1, 1n);
    expect(r.label).not.toBe(0); // that call hit the fault
    expect(d.domain.version).toBe(1);
    expect(d.domain.state).toBe('live');
    expect(d.domain.stats.rollbacks).toBe(1);
    expect(k.call(ep, 2).mr0).toBe(2n); // old state intact
  });
});

describe('checkpoint/restore', () => {
  it('round-trips memory, globals and the CSpace; never resurrects deleted caps', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const n1 = k.createNotification();
    const d = k.spawn(await example('counter'), { caps: [n1] });
    k.bindReceiver(d.domain, ep);
    k.call(ep, 1, 41n);
    const cp = checkpoint(d.domain);
    k.call(ep, 1, 100n);
    const slot0 = d.domain.cspace.slots[0];
    const extra = k.mint(ep, Rights.WRITE);
    d.domain.cspace.insert(extra);
    expect(d.domain.cspace.count).toBe(2);
    restore(k, d.domain, cp);
    expect(k.call(ep, 2).mr0).toBe(41n);
    expect(d.domain.cspace.count).toBe(1);
    expect(d.domain.cspace.slots[0]).toBe(slot0);
    expect(extra.live).toBe(false);
    // Revoke the notification's caps after the checkpoint: restore must not bring them back.
    const cp2 = checkpoint(d.domain);
    k.revoke(n1);
    restore(k, d.domain, cp2);
    expect(d.domain.cspace.count).toBe(0);
  });

  it('refuses a module whose code may change its table (a restore could not bring it back)', async () => {
    const k = new Kernel();
    const d = k.spawn(
      await wat(`(module
        (table 2 funcref)
        (func $a (result i32) (i32.const 1))
        (elem declare func $a)
        (func (export "genesis_main") (table.set (i32.const 0) (ref.func $a))))`),
    );
    expect(d.domain.module.hiddenState).toMatch(/table/);
    expect(() => checkpoint(d.domain)).toThrowError(
      expect.objectContaining({ code: KernelErrorCode.BAD_ARGUMENT }),
    );
  });

  it('refuses a domain that is not quiescent', async () => {
    const k = new Kernel();
    const d = k.spawn(await example('counter'));
    d.domain.active = true;
    expect(() => checkpoint(d.domain)).toThrow(/quiescent/);
    d.domain.active = false;
  });
});

describe('shadow execution', () => {
  it('mirrors inputs, records effects instead of performing them, and reports divergences', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const out = k.createEndpoint();
    const sink = k.spawn(
      await wat(`(module (global $n (export "n") (mut i32) (i32.const 0))
      (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) (global.set $n (i32.add (global.get $n) (i32.const 1))) (i64.const 0)))`),
    );
    k.bindReceiver(sink.domain, out);
    const forwarder = (mult: number) => `(module
      (import "genesis" "send" (func $send (param i32 i32 i64 i64) (result i32)))
      (global $count (mut i64) (i64.const 0))
      (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64)
        (global.set $count (i64.add (global.get $count) (i64.mul (local.get 2) (i64.const ${mult}))))
        (drop (call $send (i32.const 4096) (i32.const 3) (global.get $count) (i64.const 0)))
        (global.get $count)))`;
    const live = k.spawn(await wat(forwarder(1)), { caps: [k.mint(out, Rights.WRITE)] });
    k.bindReceiver(live.domain, ep);
    const same = startShadow(k, live.domain, await wat(forwarder(1)));
    for (let i = 1; i <= 3; i++) k.call(ep, 1, BigInt(i));
    k.run();
    expect((sink.domain.instance.exports.n as { value: number }).value).toBe(3); // only live sends arrived
    const r1 = same.stop();
    expect(r1.activations).toBe(3);
    expect(r1.divergences).toEqual([]);
    expect(r1.effects).toEqual({ live: 3, shadow: 3 });

    const diff = startShadow(k, live.domain, await wat(forwarder(2)));
    k.call(ep, 1, 1n);
    const r2 = diff.stop();
    expect(r2.divergences.map((d) => d.kind).sort()).toEqual(['effects', 'result']);
    expect(r2.fuel.shadow).toBeGreaterThan(0);
    k.run();
    expect((sink.domain.instance.exports.n as { value: number }).value).toBe(4);

    const crash = startShadow(
      k,
      live.domain,
      await wat(
        '(module (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) unreachable))',
      ),
    );
    k.call(ep, 1, 1n);
    const r3 = crash.stop();
    expect(r3.faults).toEqual({ live: 0, shadow: 1 });
    expect(r3.divergences[0]?.kind).toBe('fault');
    expect(live.domain.state).toBe('live');
    expect(k.faulted().length).toBe(0);
  });
});
