import { describe, expect, it } from 'vitest';
import {
  FaultKind,
  Info,
  Kernel,
  LABEL_ERROR_BASE,
  Rights,
  Status,
  TestDevice,
} from '../../src/kernel/index.ts';
import { example, wat } from './helpers.ts';

describe('kernel IPC', () => {
  it('a client calls a counter server through the fast path', async () => {
    const logs: string[] = [];
    const k = new Kernel({ log: (_d, text) => logs.push(text) });
    const ep = k.createEndpoint();
    const server = k.spawn(await example('counter'), { name: 'counter' });
    k.bindReceiver(server.domain, ep);
    const client = k.spawn(await example('client'), {
      name: 'client',
      caps: [k.mint(ep, Rights.WRITE | Rights.GRANT_REPLY)],
    });
    expect(client.cptrs).toEqual([4096]);
    k.run();
    expect(client.domain.state).toBe('live');
    expect((client.domain.instance.exports.last as { value: bigint }).value).toBe(10n);
    expect(client.domain.stats.ipcSent).toBe(10);
    expect(server.domain.stats.ipcReceived).toBe(10);
    expect(k.stats.ipcFastpath).toBe(10);
    expect(logs).toEqual(['done']);
    // The server ran on the client's donated fuel: the client's own fuel excludes it.
    expect(server.domain.stats.fuelUsed).toBeGreaterThan(0);
  });

  it('host call and message data through the IPC buffer', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const echo = k.spawn(await example('echo'));
    k.bindReceiver(echo.domain, ep);
    const r = k.call(ep, 7, 42n, 1n);
    expect(r.mr0).toBe(42n);
    expect(r.label).toBe(0);
  });

  it('queues sends in priority order, FIFO within a priority', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const rec = await wat(`(module
      (memory 1)
      (global $n (mut i32) (i32.const 0))
      (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64)
        (i64.store (i32.shl (global.get $n) (i32.const 3)) (local.get 2))
        (global.set $n (i32.add (global.get $n) (i32.const 1)))
        (i64.const 0)))`);
    const d = k.spawn(rec);
    k.bindReceiver(d.domain, ep);
    const order: [number, bigint][] = [
      [1, 10n],
      [5, 50n],
      [1, 11n],
      [9, 90n],
      [5, 51n],
      [1, 12n],
    ];
    for (const [prio, v] of order) expect(k.send(ep, 1, v, 0n, prio)).toBe(Status.OK);
    k.run();
    const mem = new BigInt64Array((d.domain.ex.memory as { buffer: ArrayBuffer }).buffer, 0, 6);
    expect([...mem]).toEqual([90n, 50n, 51n, 10n, 11n, 12n]);
  });

  it('badged sends can be cancelled; revoke removes only descendants', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const a = k.mint(ep, Rights.WRITE, 0xan);
    const b = k.mint(ep, Rights.WRITE, 0xbn);
    k.send(a, 1);
    k.send(b, 1);
    k.send(a, 1);
    const endpoint = ep.obj as import('../../src/kernel/index.ts').Endpoint;
    expect(endpoint.queue.length).toBe(3);
    expect(endpoint.cancelBadged(0xan)).toBe(2);
    expect(endpoint.queue.map((m) => m.badge)).toEqual([0xbn]);
    const a2 = k.mint(a, Rights.WRITE);
    expect(k.revoke(a)).toBe(1);
    expect(a2.live).toBe(false);
    expect(a.live && b.live).toBe(true);
  });

  it('a call to a server with no receiver or a busy server returns an error reply', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const m = await wat(`(module
      (import "genesis" "call" (func $call (param i32 i32 i64 i64) (result i64)))
      (import "genesis" "msg_get" (func $msg (param i32) (result i64)))
      (global $info (export "info") (mut i64) (i64.const 0))
      (func (export "genesis_main")
        (drop (call $call (i32.const 4096) (i32.const 1) (i64.const 0) (i64.const 0)))
        (global.set $info (call $msg (i32.const 0)))))`);
    const c = k.spawn(m, { caps: [ep] });
    k.run();
    const info = Number((c.domain.instance.exports.info as { value: bigint }).value);
    expect(Info.label(info)).toBe(LABEL_ERROR_BASE - Status.E_NO_RECEIVER);
  });

  it('notifications wake a bound domain; a driver serves IRQs from a device', async () => {
    const k = new Kernel();
    const dev = new TestDevice();
    const devCap = k.createDevice(dev);
    const irq = k.createIrq(3);
    const ntf = k.createNotification();
    dev.onDoorbell = () => k.raiseIrq(3);
    dev.registers[2] = 77n;
    const d = k.spawn(await example('driver'), { caps: [devCap, irq, ntf] });
    k.run();
    expect(d.domain.state).toBe('live');
    expect((d.domain.instance.exports.irqs as { value: number }).value).toBe(1);
    expect(dev.output).toEqual([77n]);
    // The IRQ was acked, so a second raise is delivered again.
    dev.registers[2] = 78n;
    k.raiseIrq(3);
    k.run();
    expect(dev.output).toEqual([77n, 78n]);
  });

  it('faults go to the fault endpoint and a supervisor domain restarts the child', async () => {
    const k = new Kernel();
    const faultEp = k.createEndpoint();
    const crasher = await wat(`(module
      (global $runs (export "runs") (mut i32) (i32.const 0))
      (func (export "genesis_main") unreachable))`);
    const child = k.spawn(crasher, { faultEndpoint: k.mint(faultEp, Rights.WRITE, 7n) });
    const sup = k.spawn(await example('supervisor'), { caps: [child.cap] });
    k.bindReceiver(sup.domain, faultEp);
    k.run();
    expect(child.domain.stats.faults).toBe(4);
    expect(child.domain.stats.restarts).toBe(3);
    expect(child.domain.state).toBe('faulted');
    expect((sup.domain.instance.exports.last_kind as { value: bigint }).value).toBe(
      BigInt(FaultKind.TRAP),
    );
    expect(sup.domain.state).toBe('live');
  });
});
