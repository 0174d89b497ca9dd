import { describe, expect, it } from 'vitest';
import { FaultKind, Kernel, loadModule } from '../../src/kernel/index.ts';
import { makePreemptible } from '../../src/toolchain/index.ts';
import { exampleWasm, wat } from './helpers.ts';

describe('fuel, preemption and resume', () => {
  it('a preemptible CPU-bound worker is preempted many times and finishes with the right answer', async () => {
    const mod = loadModule(await makePreemptible(await exampleWasm('worker')), 'worker');
    expect(mod.preemptible).toBe(true);
    const logs: string[] = [];
    const k2 = new Kernel({ timesliceUnits: 200_000, log: (_d, t) => logs.push(t) });
    const w = k2.spawn(mod, { budgetUnits: 50_000_000, periodUnits: 50_000_000 });
    (w.domain.instance.exports.n as { value: number }).value = 400_000;
    let activations = 0;
    for (let i = 0; i < 10_000 && w.domain.pendingMain !== false; i++) activations += k2.run(1);
    activations += k2.run();
    expect(w.domain.state).toBe('live');
    expect(w.domain.stats.preemptions).toBeGreaterThan(2);
    const n = 400_000n;
    expect((w.domain.instance.exports.result as () => bigint)()).toBe((n * (n - 1n)) / 2n);
    expect(logs).toEqual(['worker done']);
    expect(k2.stats.faults).toBe(0);
    expect(activations).toBeGreaterThan(5);
  });

  it('a higher-priority domain runs between slices of a runaway preemptible loop', async () => {
    const spin = `(module
      (memory 1)
      (global (export "genesis_async_buffer") i32 (i32.const 1024))
      (global (export "genesis_async_buffer_bytes") i32 (i32.const 4096))
      (func (export "genesis_main") (loop $l (br $l))))`;
    const { watToWasm } = await import('../../src/toolchain/index.ts');
    const mod = loadModule(await makePreemptible(await watToWasm(spin)), 'spin');
    const k = new Kernel({ timesliceUnits: 100_000 });
    const runaway = k.spawn(mod, {
      priority: 10,
      budgetUnits: 1_000_000_000,
      periodUnits: 1_000_000_000,
    });
    k.run(3);
    expect(runaway.domain.stats.preemptions).toBeGreaterThanOrEqual(3);
    const hi = k.spawn(
      await wat(`(module (global $ran (export "ran") (mut i32) (i32.const 0))
      (func (export "genesis_main") (global.set $ran (i32.const 1))))`),
      { priority: 200 },
    );
    k.run(1);
    expect((hi.domain.instance.exports.ran as { value: number }).value).toBe(1);
    expect(runaway.domain.state).toBe('live');
  });

  it('a non-preemptible infinite loop faults with OUT_OF_BUDGET and the kernel keeps running', async () => {
    const k = new Kernel();
    const d = k.spawn(await wat(`(module (func (export "genesis_main") (loop $l (br $l))))`), {
      budgetUnits: 1_000_000,
    });
    const ok = k.spawn(
      await wat(
        `(module (global $x (export "x") (mut i32) (i32.const 0)) (func (export "genesis_main") (global.set $x (i32.const 5))))`,
      ),
    );
    k.run();
    expect(d.domain.state).toBe('faulted');
    expect(d.domain.faultLog[0]?.kind).toBe(FaultKind.OUT_OF_BUDGET);
    expect((ok.domain.instance.exports.x as { value: number }).value).toBe(5);
  });

  it('budget/period: an over-budget domain waits for its refill while kernel time advances', async () => {
    const k = new Kernel({ timesliceUnits: 10_000 });
    const spin = `(module
      (memory 1)
      (global (export "genesis_async_buffer") i32 (i32.const 1024))
      (global (export "genesis_async_buffer_bytes") i32 (i32.const 4096))
      (func (export "genesis_main") (local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 300000))))))`;
    const { watToWasm } = await import('../../src/toolchain/index.ts');
    const mod = loadModule(await makePreemptible(await watToWasm(spin)), 'spin');
    const d = k.spawn(mod, { budgetUnits: 100_000, periodUnits: 1_000_000 });
    k.run();
    expect(d.domain.state).toBe('live');
    expect(d.domain.suspended).toBeUndefined();
    // ~300k iterations × several units each needs several periods of 1M units of kernel time.
    expect(k.stats.nowUnits).toBeGreaterThan(1_000_000);
    expect(d.domain.stats.preemptions).toBeGreaterThan(3);
  });
});
