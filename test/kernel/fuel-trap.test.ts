/**
 * Fuel accounting of an activation that traps. Instrumented code keeps fuel in a register and
 * writes the global back only at calls, exits and the out-of-fuel trap, so after another trap
 * (here a division by zero after a long loop) the global lags; the kernel then charges the whole
 * grant, so no amount of work can go uncharged by ending it in a trap.
 */
import { describe, expect, it } from 'vitest';
import { FaultKind, Kernel, loadModule } from '../../src/kernel/index.ts';
import { watToWasm } from '../../src/toolchain/index.ts';

// An integer division by zero traps without the write-back an explicit `unreachable` gets.
const LOOP_THEN_TRAP = (n: number) => `(module
  (func (export "genesis_main") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const ${n}))))
    (drop (i32.div_u (local.get $i) (i32.sub (local.get $i) (local.get $i))))))`;

const LOOP_THEN_RETURN = (n: number) => `(module
  (func (export "genesis_main") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const ${n}))))))`;

describe('fuel of trapped activations', () => {
  it('a trap after a long loop is charged the whole slice; a clean exit only what it used', async () => {
    const slice = 10_000_000;
    const k = new Kernel({ timesliceUnits: slice });
    const trapped = k.spawn(loadModule(await watToWasm(LOOP_THEN_TRAP(200_000))), {
      budgetUnits: slice,
      periodUnits: slice,
    });
    const clean = k.spawn(loadModule(await watToWasm(LOOP_THEN_RETURN(200_000))), {
      budgetUnits: slice,
      periodUnits: slice,
    });
    k.run();
    expect(trapped.domain.state).toBe('faulted');
    expect(trapped.domain.faultLog.at(-1)?.kind).toBe(FaultKind.TRAP);
    // The loop ran 200,000 iterations: the clean twin is charged for them, the trapped one for
    // its whole slice (never less than the clean one).
    expect(clean.domain.stats.fuelUsed).toBeGreaterThan(200_000);
    expect(clean.domain.stats.fuelUsed).toBeLessThan(slice);
    expect(trapped.domain.stats.fuelUsed).toBeGreaterThanOrEqual(clean.domain.stats.fuelUsed);
  });
});
