/**
 * Adversarial modules in WebAssembly text. Each attack must be contained (the attacker faults
 * with the right kind, or its syscall fails) and reported, while a bystander domain keeps
 * running and the kernel stays consistent.
 */
import { describe, expect, it } from 'vitest';
import { FaultKind, Kernel, Rights } from '../../src/kernel/index.ts';
import { wat } from './helpers.ts';

const SYSCALL_IMPORTS = `
  (import "genesis" "send" (func $send (param i32 i32 i64 i64) (result i32)))
  (import "genesis" "call" (func $call (param i32 i32 i64 i64) (result i64)))
  (import "genesis" "msg_get" (func $msg (param i32) (result i64)))
  (import "genesis" "debug_log" (func $log (param i32 i32) (result i32)))
  (import "genesis" "cap_mint" (func $mint (param i32 i32 i64) (result i32)))
  (import "genesis" "cap_info" (func $info (param i32) (result i64)))
  (import "genesis" "device_write" (func $dw (param i32 i32 i64) (result i32)))`;

async function attacker(body: string, extra = ''): Promise<Awaited<ReturnType<typeof wat>>> {
  return wat(`(module ${SYSCALL_IMPORTS} (memory 1) ${extra}
    (global $r (export "r") (mut i64) (i64.const 0))
    (func (export "genesis_main") ${body}))`);
}

async function setup(): Promise<{
  k: Kernel;
  bystander: () => number;
  ep: ReturnType<Kernel['createEndpoint']>;
}> {
  const k = new Kernel();
  const ep = k.createEndpoint();
  const counter = k.spawn(
    await wat(`(module (global $n (export "n") (mut i32) (i32.const 0))
      (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64)
        (global.set $n (i32.add (global.get $n) (i32.const 1))) (i64.const 0)))`),
    { name: 'bystander' },
  );
  k.bindReceiver(counter.domain, ep);
  return { k, ep, bystander: () => (counter.domain.instance.exports.n as { value: number }).value };
}

async function expectFault(body: string, kind: number, extra = ''): Promise<void> {
  const { k, ep, bystander } = await setup();
  const d = k.spawn(await attacker(body, extra), { caps: [k.mint(ep, Rights.WRITE)] });
  k.run();
  expect(d.domain.state).toBe('faulted');
  expect(d.domain.faultLog[0]?.kind).toBe(kind);
  // The rest of the system keeps running.
  k.send(ep, 1);
  k.run();
  expect(bystander()).toBe(1);
}

describe('adversarial modules', () => {
  it('forged capability pointers fault with INVALID_CAP', async () => {
    for (const cptr of [0, 1, 4097, 8192, 0x7fffffff, -1, 4095]) {
      await expectFault(
        `(drop (call $send (i32.const ${cptr}) (i32.const 1) (i64.const 0) (i64.const 0)))`,
        FaultKind.INVALID_CAP,
      );
    }
  });

  it('using a cap for the wrong object type or without the right faults', async () => {
    // Slot 4096 holds an endpoint with Write only: device_write on it, or call (needs GrantReply).
    await expectFault(
      '(drop (call $dw (i32.const 4096) (i32.const 0) (i64.const 1)))',
      FaultKind.INVALID_CAP,
    );
    await expectFault(
      '(drop (call $call (i32.const 4096) (i32.const 1) (i64.const 0) (i64.const 0)))',
      FaultKind.INVALID_CAP,
    );
  });

  it('minting more rights yields only the rights held', async () => {
    const { k, ep } = await setup();
    const d = k.spawn(
      await attacker(
        '(global.set $r (call $info (call $mint (i32.const 4096) (i32.const -1) (i64.const 5))))',
      ),
      {
        caps: [k.mint(ep, Rights.WRITE)],
      },
    );
    k.run();
    expect(d.domain.state).toBe('live');
    const v = (d.domain.instance.exports.r as { value: bigint }).value;
    expect(Number(v & 0xffn)).toBe(Rights.WRITE);
  });

  it('out-of-bounds buffers and wild arguments fault with BAD_SYSCALL_ARG', async () => {
    await expectFault(
      '(drop (call $log (i32.const 65530) (i32.const 100)))',
      FaultKind.BAD_SYSCALL_ARG,
    );
    await expectFault('(drop (call $log (i32.const -1) (i32.const 1)))', FaultKind.BAD_SYSCALL_ARG);
    await expectFault('(drop (call $msg (i32.const 99)))', FaultKind.BAD_SYSCALL_ARG);
    // Reserved kernel label, data length above the bound, and data without an IPC buffer.
    await expectFault(
      '(drop (call $send (i32.const 4096) (i32.const 0xfff0) (i64.const 0) (i64.const 0)))',
      FaultKind.BAD_SYSCALL_ARG,
    );
    await expectFault(
      '(drop (call $send (i32.const 4096) (i32.const 0x07ff0001) (i64.const 0) (i64.const 0)))',
      FaultKind.BAD_SYSCALL_ARG,
    );
    await expectFault(
      '(drop (call $send (i32.const 4096) (i32.const 0x00100001) (i64.const 0) (i64.const 0)))',
      FaultKind.BAD_SYSCALL_ARG,
    );
  });

  it('reading beyond its own memory traps; other domains memory is unreachable', async () => {
    const { k, ep, bystander } = await setup();
    const secret = k.spawn(await wat('(module (memory 1) (data (i32.const 0) "secret"))'));
    const d = k.spawn(await attacker('(global.set $r (i64.load (i32.const 70000)))'), {
      caps: [ep],
    });
    k.run();
    expect(d.domain.faultLog[0]?.kind).toBe(FaultKind.TRAP);
    expect(
      Buffer.from((secret.domain.ex.memory as { buffer: ArrayBuffer }).buffer, 0, 6).toString(),
    ).toBe('secret');
    k.send(ep, 1);
    k.run();
    expect(bystander()).toBe(1);
  });

  it('unbounded recursion is contained', async () => {
    const { k } = await setup();
    const d = k.spawn(
      await wat(`(module (func $f (param i32) (result i32) (call $f (i32.add (local.get 0) (i32.const 1))))
        (func (export "genesis_main") (drop (call $f (i32.const 0)))))`),
    );
    k.run();
    expect(d.domain.state).toBe('faulted');
    expect([FaultKind.TRAP, FaultKind.OUT_OF_BUDGET]).toContain(d.domain.faultLog[0]?.kind);
  });

  it('an infinite loop faults with OUT_OF_BUDGET', async () => {
    await expectFault('(loop $l (br $l))', FaultKind.OUT_OF_BUDGET);
  });

  it('memory.grow beyond the quota faults with QUOTA_EXCEEDED', async () => {
    await expectFault('(drop (memory.grow (i32.const 65535)))', FaultKind.QUOTA_EXCEEDED);
    await expectFault('(drop (memory.grow (i32.const -1)))', FaultKind.QUOTA_EXCEEDED);
    // Within quota is fine.
    const { k } = await setup();
    const d = k.spawn(
      await attacker('(global.set $r (i64.extend_i32_s (memory.grow (i32.const 3))))'),
      { memoryBytes: 4 * 65536 },
    );
    k.run();
    expect(d.domain.state).toBe('live');
    expect(d.domain.memoryBytes).toBe(4 * 65536);
  });

  it('catching the kernel fault with exception handling does not escape it', async () => {
    await expectFault(
      `(try (do (drop (call $send (i32.const 77) (i32.const 1) (i64.const 0) (i64.const 0)))) (catch_all))
       (drop (call $send (i32.const 4096) (i32.const 1) (i64.const 0) (i64.const 0)))`,
      FaultKind.INVALID_CAP,
    );
  });

  it('an IPC storm hits the queue bound and the system keeps running', async () => {
    const { k, ep, bystander } = await setup();
    const d = k.spawn(
      await attacker(`(local $i i32) (local $full i32)
        (loop $l
          (if (i32.ne (call $send (i32.const 4096) (i32.const 1) (i64.const 0) (i64.const 0)) (i32.const 0))
            (then (local.set $full (i32.add (local.get $full) (i32.const 1)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
        (global.set $r (i64.extend_i32_u (local.get $full)))`),
      { caps: [k.mint(ep, Rights.WRITE)] },
    );
    k.run();
    expect(d.domain.state).toBe('live');
    expect((d.domain.instance.exports.r as { value: bigint }).value).toBe(100_000n - 1024n);
    expect(bystander()).toBe(1024);
  });

  it('a stale cptr fails after its capability is deleted', async () => {
    const { k, ep } = await setup();
    const d = k.spawn(
      await wat(`(module
        (import "genesis" "cap_delete" (func $del (param i32) (result i32)))
        (import "genesis" "cap_copy" (func $copy (param i32 i32) (result i32)))
        (import "genesis" "send" (func $send (param i32 i32 i64 i64) (result i32)))
        (func (export "genesis_main") (local $c i32)
          (local.set $c (call $copy (i32.const 4096) (i32.const 2)))
          (drop (call $del (local.get $c)))
          ;; the slot is reused by a new copy, with a new generation
          (drop (call $copy (i32.const 4096) (i32.const 2)))
          (drop (call $send (local.get $c) (i32.const 1) (i64.const 0) (i64.const 0)))))`),
      { caps: [k.mint(ep, Rights.WRITE)] },
    );
    k.run();
    expect(d.domain.faultLog[0]?.kind).toBe(FaultKind.INVALID_CAP);
  });

  it('granting caps needs Grant; granted caps never carry more rights', async () => {
    const k = new Kernel();
    const ep = k.createEndpoint();
    const gift = k.createNotification();
    const rx = k.spawn(
      await wat(`(module
        (import "genesis" "cap_info" (func $info (param i32) (result i64)))
        (memory 1)
        (global (export "genesis_ipc_buffer") i32 (i32.const 0))
        (global $r (export "r") (mut i64) (i64.const 0))
        (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64)
          (global.set $r (call $info (i32.load (i32.const 32)))) (i64.const 0)))`),
    );
    k.bindReceiver(rx.domain, ep);
    const sender = `(module
      (import "genesis" "send" (func $send (param i32 i32 i64 i64) (result i32)))
      (memory 1)
      (global (export "genesis_ipc_buffer") i32 (i32.const 0))
      (func (export "genesis_main")
        (i32.store (i32.const 32) (i32.const 4097))
        (drop (call $send (i32.const 4096) (i32.const 0x08000001) (i64.const 0) (i64.const 0)))))`;
    const noGrant = k.spawn(await wat(sender), {
      caps: [k.mint(ep, Rights.WRITE), k.mint(gift, Rights.READ)],
    });
    k.run();
    expect(noGrant.domain.faultLog[0]?.kind).toBe(FaultKind.INVALID_CAP);
    const withGrant = k.spawn(await wat(sender), {
      caps: [k.mint(ep, Rights.WRITE | Rights.GRANT), k.mint(gift, Rights.READ)],
    });
    k.run();
    expect(withGrant.domain.state).toBe('live');
    const v = (rx.domain.instance.exports.r as { value: bigint }).value;
    expect(Number(v >> 8n)).toBe(2); // a notification
    expect(Number(v & 0xffn)).toBe(Rights.READ);
  });
});
