/**
 * Loader fuzzing: mutated and truncated module binaries (from every example and a module that
 * uses most opcode families) always end in a KernelError with a LOADER_* code, or load and run
 * under the fuel bound — never a crash, an untyped exception or a hang.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { instrument, isKernelError, Kernel, loadModule } from '../../src/kernel/index.ts';
import { watToWasm } from '../../src/toolchain/index.ts';
import { exampleWasm } from './helpers.ts';

const RICH = `(module
  (import "genesis" "debug_log" (func $log (param i32 i32) (result i32)))
  (type $t (func (param i32) (result i32)))
  (table 2 funcref) (elem (i32.const 0) $f $g)
  (memory 1 4) (data (i32.const 0) "hello")
  (global $g1 (mut i64) (i64.const 1)) (global $g2 f64 (f64.const 2.5))
  (func $f (type $t) (i32.mul (local.get 0) (i32.const 3)))
  (func $g (type $t) (local.get 0))
  (func (export "genesis_main") (local $i i32) (local $v v128)
    (local.set $v (v128.const i32x4 1 2 3 4))
    (local.set $v (i32x4.add (local.get $v) (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))))
    (drop (i32x4.extract_lane 2 (local.get $v)))
    (block $b (loop $l
      (br_table $b $l (i32.and (local.get $i) (i32.const 1)))))
    (drop (call_indirect (type $t) (i32.const 4) (i32.const 1)))
    (memory.fill (i32.const 10) (i32.const 0) (i32.const 4))
    (memory.copy (i32.const 20) (i32.const 0) (i32.const 5))
    (drop (i32.trunc_sat_f64_s (global.get $g2)))
    (drop (i64.extend8_s (global.get $g1)))
    (drop (select (result i32) (i32.const 1) (i32.const 2) (i32.const 0)))
    (drop (memory.grow (i32.const 1)))
    (drop (call $log (i32.const 0) (i32.const 5)))))`;

function mutate(bytes: Uint8Array, edits: readonly [number, number][], cut: number): Uint8Array {
  const out = bytes.slice(0, Math.max(0, bytes.length - cut));
  for (const [pos, val] of edits) if (out.length > 0) out[pos % out.length] = val;
  return out;
}

describe('loader fuzzing', () => {
  it('the rich module loads, runs and every opcode family is instrumented', async () => {
    const bytes = await watToWasm(RICH);
    const ins = instrument(bytes);
    expect(ins.checks).toBeGreaterThanOrEqual(4);
    const k = new Kernel();
    const d = k.spawn(loadModule(bytes));
    k.run();
    expect(d.domain.state).toBe('live');
  });

  it('mutated and truncated binaries end in a typed error or a contained run', async () => {
    const seeds = [
      await watToWasm(RICH),
      ...(await Promise.all(
        ['echo', 'counter', 'client', 'worker', 'driver', 'supervisor'].map(exampleWasm),
      )),
    ];
    const k = new Kernel({ domainsMax: 100_000 });
    let typed = 0;
    let loaded = 0;
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }),
        fc.oneof(fc.constant(0), fc.nat(64)),
        (seed, edits, cut) => {
          const bytes = mutate(seeds[seed] as Uint8Array, edits, cut);
          try {
            const m = loadModule(bytes);
            loaded++;
            try {
              const d = k.spawn(m, { budgetUnits: 200_000 });
              k.run(10);
              k.kill(d.domain);
            } catch (e) {
              if (!isKernelError(e)) throw e;
            }
          } catch (e) {
            if (!isKernelError(e)) throw e;
            expect(e.code).toMatch(/^KERNEL_(LOADER_|SPAWN_|QUOTA_)/);
            typed++;
          }
        },
      ),
      { numRuns: 800 },
    );
    expect(typed).toBeGreaterThan(100);
    expect(loaded).toBeGreaterThan(10);
  });

  it('the instrumenter itself rejects garbage with typed errors (no validation first)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...junk]);
        try {
          instrument(bytes);
        } catch (e) {
          if (!isKernelError(e)) throw e;
        }
      }),
      { numRuns: 1500 },
    );
  });
});
