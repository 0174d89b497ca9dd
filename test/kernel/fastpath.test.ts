/**
 * The IPC fast path (kernel.ts fastCall) must be indistinguishable from the general path except
 * in speed. A caller holding Write|GrantReply takes the fast path; a caller holding Write|Grant
 * (also allowed to call) takes the general path, so the same scenario is run both ways and every
 * observable — reply registers, faults, fault messages, stats, fuel charged — is compared.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FaultKind,
  Info,
  Kernel,
  type KernelModule,
  LABEL_ERROR_BASE,
  LABEL_FAULT,
  Rights,
  Status,
} from '../../src/kernel/index.ts';
import { wat } from './helpers.ts';

const FAST = Rights.WRITE | Rights.GRANT_REPLY;
const GENERAL = Rights.WRITE | Rights.GRANT;

/** A client that calls slot 0 with (label, mr0, mr1) and records the reply registers. */
const CLIENT = `(module
  (import "genesis" "call" (func $call (param i32 i32 i64 i64) (result i64)))
  (import "genesis" "msg_get" (func $msg (param i32) (result i64)))
  (global $r (export "r") (mut i64) (i64.const 0))
  (global $info (export "info") (mut i64) (i64.const 0))
  (global $mr1 (export "mr1") (mut i64) (i64.const 0))
  (global $badge (export "badge") (mut i64) (i64.const 0))
  (func (export "go") (param $label i32) (param $a i64) (param $b i64)
    (global.set $r (call $call (i32.const 4096) (local.get $label) (local.get $a) (local.get $b)))
    (global.set $info (call $msg (i32.const 0)))
    (global.set $badge (call $msg (i32.const 1)))
    (global.set $mr1 (call $msg (i32.const 3)))))`;

/** Server behaviours selected by the label. */
function serverWat(): string {
  return `(module
  (import "genesis" "reply" (func $reply (param i32 i64 i64) (result i32)))
  (import "genesis" "reply_save" (func $save (result i32)))
  (import "genesis" "msg_get" (func $msg (param i32) (result i64)))
  (import "genesis" "notify_poll" (func $poll (param i32) (result i64)))
  (global $seen (export "seen") (mut i64) (i64.const 0))
  (func (export "genesis_handle") (param $badge i64) (param $info i32) (param $a i64) (param $b i64) (result i64)
    (local $l i32)
    (global.set $seen (i64.xor (call $msg (i32.const 1)) (i64.xor (call $msg (i32.const 2)) (call $msg (i32.const 3)))))
    (local.set $l (i32.and (local.get $info) (i32.const 0xffff)))
    ;; 1: trap
    (if (i32.eq (local.get $l) (i32.const 1)) (then unreachable))
    ;; 2: spin until the donated fuel runs out
    (if (i32.eq (local.get $l) (i32.const 2)) (then (loop $spin (br $spin))))
    ;; 3: explicit reply with label 7, then return something else (ignored)
    (if (i32.eq (local.get $l) (i32.const 3))
      (then (drop (call $reply (i32.const 7) (i64.add (local.get $a) (i64.const 1)) (local.get $b)))
            (return (i64.const 999))))
    ;; 4: save the reply and never answer: the caller gets E_NO_REPLY
    (if (i32.eq (local.get $l) (i32.const 4)) (then (drop (call $save)) (return (i64.const 5))))
    ;; 5: reply twice: the first reply wins; the second returns E_NO_REPLY
    (if (i32.eq (local.get $l) (i32.const 5))
      (then (drop (call $reply (i32.const 0) (local.get $a) (i64.const 0)))
            (return (i64.extend_i32_s (call $reply (i32.const 0) (i64.const 1) (i64.const 1))))))
    ;; 6: invalid capability: INVALID_CAP fault
    (if (i32.eq (local.get $l) (i32.const 6)) (then (drop (call $poll (i32.const 12345)))))
    (i64.add (local.get $badge) (i64.add (local.get $a) (i64.mul (local.get $b) (i64.const 3))))))`;
}

interface Outcome {
  r: bigint;
  info: bigint;
  badge: bigint;
  mr1: bigint;
  seen: bigint;
  clientState: string;
  serverState: string;
  serverFaults: number[];
  faultMsgs: string[];
  clientFuel: number;
  stats: unknown;
  serverStats: unknown;
  clientStats: unknown;
}

async function setup(): Promise<{ client: KernelModule; server: KernelModule }> {
  return { client: await wat(CLIENT, 'client'), server: await wat(serverWat(), 'server') };
}

function scenario(
  mods: { client: KernelModule; server: KernelModule },
  rights: number,
  label: number,
  a: bigint,
  b: bigint,
  badge: bigint,
  fuel: number,
): Outcome {
  const k = new Kernel();
  const ep = k.createEndpoint();
  const faultEp = k.createEndpoint();
  const faultMsgs: string[] = [];
  const server = k.spawn(mods.server, { faultEndpoint: k.mint(faultEp, Rights.WRITE, 3n) });
  k.bindReceiver(server.domain, ep);
  const epCap = badge === 0n ? k.mint(ep, rights) : k.mint(ep, rights, badge);
  const client = k.spawn(mods.client, { caps: [epCap] });
  k.run();
  const go = client.domain.instance.exports.go as (...a: unknown[]) => unknown;
  const res = k.runHook(client.domain, go, [label, a, b], fuel);
  for (const m of (faultEp.obj as import('../../src/kernel/index.ts').Endpoint).queue)
    faultMsgs.push(`${Info.label(m.info)}:${m.mr0}:${m.mr1 === BigInt(server.domain.id)}`);
  const g = (n: string): bigint => (client.domain.instance.exports[n] as { value: bigint }).value;
  const { nowUnits: _n, ipcFastpath: _f, ...stats } = k.snapshot();
  return {
    r: g('r'),
    info: g('info'),
    badge: g('badge'),
    mr1: g('mr1'),
    seen: (server.domain.instance.exports.seen as { value: bigint }).value,
    clientState: res.ok ? 'ok' : `fault:${res.kind}`,
    serverState: server.domain.state,
    serverFaults: server.domain.faultLog.map((f) => f.kind),
    faultMsgs,
    clientFuel: res.used,
    stats,
    serverStats: server.domain.snapshot(),
    clientStats: { ...client.domain.snapshot(), id: 0 },
  };
}

describe('IPC fast path', () => {
  it('takes the fast path only for Write|GrantReply caps and matches the general path', async () => {
    const mods = await setup();
    const fastK = scenario(mods, FAST, 0, 5n, 7n, 0n, 1_000_000);
    expect(fastK.r).toBe(26n);
    expect(fastK.info).toBe(0n);
    await fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
        fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
        fc.constantFrom(0n, 9n, -1n),
        fc.constantFrom(1_000_000, 5_000, 60),
        (label, a, b, badge, fuel) => {
          const fast = scenario(mods, FAST, label, a, b, badge, fuel);
          const general = scenario(mods, GENERAL, label, a, b, badge, fuel);
          expect(fast).toEqual(general);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a server fault gives the caller E_SERVER_FAULT and reports the fault', async () => {
    const mods = await setup();
    const o = scenario(mods, FAST, 1, 1n, 2n, 0n, 1_000_000);
    expect(Info.label(Number(o.info))).toBe(LABEL_ERROR_BASE - Status.E_SERVER_FAULT);
    expect(o.serverState).toBe('faulted');
    expect(o.serverFaults).toEqual([FaultKind.TRAP]);
    expect(o.faultMsgs).toEqual([`${LABEL_FAULT}:${FaultKind.TRAP}:true`]);
    expect(o.clientState).toBe('ok');
  });

  it('a server out of donated fuel faults with TIMEOUT; the caller is charged for it', async () => {
    const mods = await setup();
    const o = scenario(mods, FAST, 2, 1n, 2n, 0n, 100_000);
    expect(o.serverFaults).toEqual([FaultKind.TIMEOUT]);
    expect(o.faultMsgs).toEqual([`${LABEL_FAULT}:${FaultKind.TIMEOUT}:true`]);
    // The caller's whole budget went to the server (charged to the caller's SchedContext).
    expect(o.clientFuel).toBeGreaterThanOrEqual(100_000);
    expect(Info.label(Number(o.info))).toBe(LABEL_ERROR_BASE - Status.E_SERVER_FAULT);
  });

  it('explicit reply, reply_save and double reply keep their semantics', async () => {
    const mods = await setup();
    const r3 = scenario(mods, FAST, 3, 10n, 4n, 0n, 1_000_000);
    expect([r3.r, Info.label(Number(r3.info)), r3.mr1]).toEqual([11n, 7, 4n]);
    const r4 = scenario(mods, FAST, 4, 10n, 4n, 0n, 1_000_000);
    expect(Info.label(Number(r4.info))).toBe(LABEL_ERROR_BASE - Status.E_NO_REPLY);
    const r5 = scenario(mods, FAST, 5, 10n, 4n, 0n, 1_000_000);
    expect(r5.r).toBe(10n);
    const r6 = scenario(mods, FAST, 6, 10n, 4n, 0n, 1_000_000);
    expect(r6.serverFaults).toEqual([FaultKind.INVALID_CAP]);
    expect(Info.label(Number(r6.info))).toBe(LABEL_ERROR_BASE - Status.E_SERVER_FAULT);
  });

  it('the server sees its message registers; counters follow every call', async () => {
    const mods = await setup();
    const o = scenario(mods, FAST, 0, 0x55n, 0x0fn, 0x100n, 1_000_000);
    expect(o.seen).toBe(0x100n ^ 0x55n ^ 0x0fn);
    expect(o.r).toBe(0x100n + 0x55n + 0x0fn * 3n);
    const s = o.serverStats as { ipcReceived: number; activations: number; fuelUsed: number };
    expect(s.ipcReceived).toBe(1);
    expect(s.activations).toBe(1);
    expect(s.fuelUsed).toBeGreaterThan(0);
    expect((o.clientStats as { ipcSent: number }).ipcSent).toBe(1);
  });

  it('nested calls stop at the depth bound with E_WOULD_BLOCK', async () => {
    // A chain of forwarders: each calls the next with mr0 + 1; the last answers mr0.
    const k = new Kernel();
    const fwd = await wat(`(module
      (import "genesis" "call" (func $call (param i32 i32 i64 i64) (result i64)))
      (import "genesis" "msg_get" (func $msg (param i32) (result i64)))
      (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64)
        (local $r i64)
        (local.set $r (call $call (i32.const 4096) (i32.const 0) (i64.add (local.get 2) (i64.const 1)) (i64.const 0)))
        (if (result i64) (i64.eq (call $msg (i32.const 0)) (i64.const 0))
          (then (local.get $r))
          (else (i64.sub (i64.const 0) (call $msg (i32.const 0)))))))`);
    const leaf = await wat(
      `(module (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) (local.get 2)))`,
    );
    let next = k.createEndpoint();
    const l = k.spawn(leaf);
    k.bindReceiver(l.domain, next);
    for (let i = 0; i < 20; i++) {
      const ep = k.createEndpoint();
      const d = k.spawn(fwd, { caps: [k.mint(next, FAST)] });
      k.bindReceiver(d.domain, ep);
      next = ep;
    }
    const r = k.call(next, 0, 0n);
    // Depth 16 is the bound: the forwarder at depth 16 gets E_WOULD_BLOCK and returns -label.
    expect(r.mr0).toBe(-BigInt(LABEL_ERROR_BASE - Status.E_WOULD_BLOCK));
    expect(k.faulted()).toEqual([]);
  });
});
