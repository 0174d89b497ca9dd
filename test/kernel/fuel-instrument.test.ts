/**
 * Property tests of the fuel instrumenter (src/kernel/wasm-binary.ts). Random small programs —
 * nested counted loops, direct and indirect calls, host calls that read and charge fuel, early
 * exits (return, br/br_table to the function's label), exceptions thrown across calls, memory
 * traffic — run uninstrumented, instrumented with fuel cached in locals (the default), and
 * instrumented with the global-only counter (`cacheFuel: false`, the obviously-correct
 * reference). They must agree on results, and the two instrumented builds on every fuel value
 * the host sees at a call boundary and on the fuel left at exit. Plus: fuel is deterministic,
 * affine (so monotone) in the work done, any budget short of the need ends in OUT_OF_BUDGET,
 * infinite loops and recursion always stop, and yield mode reloads refilled fuel.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FaultKind, instrument } from '../../src/kernel/index.ts';
import { watToWasm } from '../../src/toolchain/index.ts';

type Exports = Record<string, unknown>;
type Fn = (...a: unknown[]) => unknown;
const WA = (globalThis as unknown as { WebAssembly: unknown }).WebAssembly as {
  Module: new (b: Uint8Array) => object;
  Instance: new (m: object, i: object) => { exports: Exports };
  Exception: new (...a: unknown[]) => object;
};

type Stmt =
  | { readonly t: 'mix'; readonly k: number }
  | { readonly t: 'loop'; readonly trips: number; readonly body: readonly Stmt[] }
  | { readonly t: 'call'; readonly f: number; readonly indirect: boolean }
  | { readonly t: 'probe' }
  | { readonly t: 'ret' | 'brexit' | 'brtable' | 'throw'; readonly m: number }
  | { readonly t: 'trycall'; readonly f: number }
  | { readonly t: 'mem' };

const leaf = fc.oneof(
  fc.record({ t: fc.constant('mix' as const), k: fc.integer({ min: 1, max: 1000 }) }),
  fc.record({ t: fc.constant('call' as const), f: fc.nat(7), indirect: fc.boolean() }),
  fc.record({ t: fc.constant('probe' as const) }),
  fc.record({
    t: fc.constantFrom('ret' as const, 'brexit' as const, 'brtable' as const, 'throw' as const),
    m: fc.nat(15),
  }),
  fc.record({ t: fc.constant('trycall' as const), f: fc.nat(7) }),
  fc.record({ t: fc.constant('mem' as const) }),
);
const stmts: fc.Arbitrary<Stmt[]> = fc.letrec<{ list: Stmt[]; stmt: Stmt }>((tie) => ({
  list: fc.array(tie('stmt'), { minLength: 1, maxLength: 5 }),
  stmt: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ t: fc.constant('loop' as const), trips: fc.nat(4), body: tie('list') }),
  ),
})).list;
const program = fc.array(stmts, { minLength: 1, maxLength: 4 });

const acc = '(local.get $acc)';
const setAcc = (e: string): string => `(local.set $acc ${e})`;

/** WAT of one statement; `depth` = enclosing labels inside the function body, `loops` = open loops. */
function emit(s: Stmt, fnIndex: number, depth: number, loops: number): string {
  const cond = (m: number): string => `(i32.eq (i32.and ${acc} (i32.const 15)) (i32.const ${m}))`;
  const arg = `(i32.and (i32.add ${acc} (local.get $n)) (i32.const 3))`;
  switch (s.t) {
    case 'mix':
      return `${setAcc(`(i32.add (i32.mul ${acc} (i32.const 1103515245)) (i32.const ${s.k}))`)}
        ${setAcc(`(i32.xor ${acc} (i32.shr_u ${acc} (i32.const 13)))`)}`;
    case 'loop': {
      if (loops >= 3) return '';
      const c = `$c${loops}`;
      const body = s.body.map((b) => emit(b, fnIndex, depth + 2, loops + 1)).join('\n');
      return `(local.set ${c} (i32.add (i32.rem_u (local.get $n) (i32.const 3)) (i32.const ${s.trips})))
        (block (loop
          (br_if 1 (i32.eqz (local.get ${c})))
          (local.set ${c} (i32.sub (local.get ${c}) (i32.const 1)))
          ${body}
          (br 0)))`;
    }
    case 'call': {
      // Only lower-numbered functions: no recursion, so every program terminates.
      if (fnIndex === 0) return '';
      const f = s.f % fnIndex;
      const call = s.indirect
        ? `(call_indirect (type $t) ${arg} (i32.const ${f}))`
        : `(call $f${f} ${arg})`;
      return setAcc(`(i32.add (i32.mul ${acc} (i32.const 31)) ${call})`);
    }
    case 'probe':
      return setAcc(`(i32.xor ${acc} (call $log ${acc} (i32.const ${fnIndex})))`);
    case 'ret':
      return `(if ${cond(s.m)} (then (return ${acc})))`;
    case 'brexit':
      return `(drop (br_if ${depth} ${acc} ${cond(s.m)}))`;
    case 'brtable':
      return `(drop (block (result i32) (br_table 0 ${depth + 1} ${acc} ${cond(s.m)})))`;
    case 'throw':
      return `(if ${cond(s.m)} (then (throw $e ${acc})))`;
    case 'trycall': {
      if (fnIndex === 0) return '';
      return `(try (do ${setAcc(`(i32.add ${acc} (call $f${s.f % fnIndex} ${arg}))`)})
        (catch $e local.get $acc i32.xor i32.const 7 i32.add local.set $acc))`;
    }
    case 'mem':
      return `(i32.store (i32.and (i32.shl ${acc} (i32.const 2)) (i32.const 1020)) ${acc})
        ${setAcc(`(i32.add ${acc} (i32.load (i32.and (i32.shl (local.get $n) (i32.const 2)) (i32.const 1020))))`)}`;
  }
}

function programWat(fns: readonly (readonly Stmt[])[]): string {
  const funcs = fns.map(
    (body, i) => `(func $f${i} (type $t) (param $n i32) (result i32)
      (local $acc i32) (local $c0 i32) (local $c1 i32) (local $c2 i32)
      ${setAcc(`(i32.add (local.get $n) (i32.const ${i + 1}))`)}
      ${body.map((s) => emit(s, i, 0, 0)).join('\n')}
      ${acc})`,
  );
  const names = fns.map((_, i) => `$f${i}`).join(' ');
  return `(module
    (type $t (func (param i32) (result i32)))
    (import "genesis" "debug_log" (func $log (param i32 i32) (result i32)))
    (tag $e (param i32))
    (memory 1)
    (table ${fns.length} funcref)
    (elem (i32.const 0) func ${names})
    ${funcs.join('\n')}
    (func (export "main") (param $n i32) (result i32) (call $f${fns.length - 1} (local.get $n))))`;
}

interface Run {
  readonly result: number | string;
  /** Fuel seen by the host at every host call (instrumented builds). */
  readonly probes: readonly number[];
  readonly fuelLeft: number | undefined;
  readonly fault: number | undefined;
}

/** Host charge per host call: the kernel charges syscalls by writing the caller's fuel. */
const HOST_CHARGE_UNITS = 3;

function execute(bytes: Uint8Array, n: number, fuel: number): Run {
  const probes: number[] = [];
  let ex: Exports = {};
  const imports = {
    genesis: {
      debug_log: (a: number, b: number) => {
        const get = ex.__genesis_fuel_get as (() => number) | undefined;
        if (get !== undefined) {
          const f = get();
          probes.push(f);
          (ex.__genesis_fuel_set as Fn)(f - HOST_CHARGE_UNITS);
        }
        return (Math.imul(a, 7) + b) & 0xff;
      },
    },
  };
  ex = new WA.Instance(new WA.Module(bytes), imports).exports;
  (ex.__genesis_fuel_set as Fn | undefined)?.(fuel);
  let result: number | string;
  try {
    result = (ex.main as Fn)(n) as number;
  } catch (e) {
    result = e instanceof WA.Exception ? 'exception' : `trap: ${(e as Error).message}`;
  }
  return {
    result,
    probes,
    fuelLeft: (ex.__genesis_fuel_get as (() => number) | undefined)?.(),
    fault: (ex.__genesis_fault as { value: number } | undefined)?.value,
  };
}

const BIG_FUEL_UNITS = 1 << 30;
/** wabt parses every generated program: generous on a loaded 2-core machine. */
const PROPERTY_TIMEOUT_MS = 120_000;

describe('fuel instrumentation (cached local vs global reference)', () => {
  it(
    'random programs: same results uninstrumented and instrumented, same fuel at every host call and at exit',
    async () => {
      await fc.assert(
        fc.asyncProperty(program, fc.nat(20), async (fns, n) => {
          const bytes = await watToWasm(programWat(fns), 'random.wat');
          const cachedBytes = instrument(bytes).bytes;
          const plain = execute(bytes, n, 0);
          const cached = execute(cachedBytes, n, BIG_FUEL_UNITS);
          const reference = execute(
            instrument(bytes, 'trap', { cacheFuel: false }).bytes,
            n,
            BIG_FUEL_UNITS,
          );
          expect(cached.result).toEqual(plain.result);
          expect(reference.result).toEqual(plain.result);
          expect(cached.probes).toEqual(reference.probes);
          expect(cached.fuelLeft).toBe(reference.fuelLeft);
          expect(cached.fault).toBe(0);
          // Deterministic: a fresh instance of the same module spends exactly the same fuel.
          expect(execute(cachedBytes, n, BIG_FUEL_UNITS)).toEqual(cached);
        }),
        { numRuns: 40 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'any budget short of what a program needs ends in OUT_OF_BUDGET; any sufficient one leaves the same remainder',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          program,
          fc.nat(20),
          fc.double({ min: 0, max: 1.5, noNaN: true }),
          async (fns, n, frac) => {
            const bytes = await watToWasm(programWat(fns), 'random.wat');
            const ins = instrument(bytes).bytes;
            const full = execute(ins, n, BIG_FUEL_UNITS);
            const need =
              BIG_FUEL_UNITS - (full.fuelLeft as number) - HOST_CHARGE_UNITS * full.probes.length;
            expect(need).toBeGreaterThan(0);
            const budget = Math.floor(need * frac);
            const r = execute(ins, n, budget);
            if (r.fault === FaultKind.OUT_OF_BUDGET) {
              expect(r.result).toMatch(/^trap/);
              // The out-of-fuel branch wrote the (negative) local back for the kernel to see.
              expect(r.fuelLeft).toBeLessThan(0);
              // Host charges are outside `need`; with them the run can stop earlier, never later.
              expect(budget).toBeLessThan(need + HOST_CHARGE_UNITS * full.probes.length);
              expect(r.probes).toEqual(
                full.probes.slice(0, r.probes.length).map((p) => p - BIG_FUEL_UNITS + budget),
              );
            } else {
              expect(r.fault).toBe(0);
              expect(budget).toBeGreaterThanOrEqual(need);
              expect(r.result).toEqual(full.result);
              expect(r.fuelLeft).toBe((full.fuelLeft as number) - BIG_FUEL_UNITS + budget);
            }
          },
        ),
        { numRuns: 40 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'fuel is affine, hence monotone, in the trip count of a random loop body',
    async () => {
      await fc.assert(
        fc.asyncProperty(stmts, fc.boolean(), async (body, cache) => {
          const loopOnly = body.filter((s) => s.t === 'mix' || s.t === 'mem');
          const wat = programWat([
            [{ t: 'loop', trips: 0, body: loopOnly.length > 0 ? loopOnly : [{ t: 'mix', k: 1 }] }],
          ])
            // The outer loop runs exactly n times (the generator's default is n % 3 + trips).
            .replace('(i32.rem_u (local.get $n) (i32.const 3))', '(local.get $n)');
          const ins = instrument(await watToWasm(wat, 'affine.wat'), 'trap', {
            cacheFuel: cache,
          }).bytes;
          const used = (n: number): number =>
            BIG_FUEL_UNITS - (execute(ins, n, BIG_FUEL_UNITS).fuelLeft as number);
          const u0 = used(0);
          const slope = used(1) - u0;
          expect(slope).toBeGreaterThan(0);
          for (const n of [2, 5, 17]) expect(used(n)).toBe(u0 + n * slope);
        }),
        { numRuns: 30 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});

describe('fixed shapes', () => {
  it('try/delegate and a callee throwing through a caller without a handler keep fuel exact', async () => {
    const bytes = await watToWasm(
      `(module
        (import "genesis" "debug_log" (func $log (param i32 i32) (result i32)))
        (tag $e (param i32))
        (func $thrower (param $n i32) (result i32) (local $i i32)
          (loop (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if 0 (i32.lt_u (local.get $i) (local.get $n))))
          (drop (call $log (local.get $i) (i32.const 1)))
          (if (i32.gt_u (local.get $n) (i32.const 5)) (then (throw $e (local.get $i))))
          (local.get $i))
        (func $middle (param $n i32) (result i32) (local $j i32)
          (loop (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if 0 (i32.lt_u (local.get $j) (i32.const 4))))
          (try (result i32) (do (call $thrower (local.get $n))) (delegate 0)))
        (func (export "main") (param $n i32) (result i32) (local $k i32)
          (loop (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if 0 (i32.lt_u (local.get $k) (i32.const 3))))
          (try (result i32) (do (call $middle (local.get $n)))
            (catch $e drop (i32.add (i32.const 1000) (call $log (i32.const 0) (i32.const 2)))))))`,
      'delegate.wat',
    );
    for (const n of [3, 9]) {
      const plain = execute(bytes, n, 0);
      const cached = execute(instrument(bytes).bytes, n, BIG_FUEL_UNITS);
      const reference = execute(
        instrument(bytes, 'trap', { cacheFuel: false }).bytes,
        n,
        BIG_FUEL_UNITS,
      );
      expect(cached.result).toBe(plain.result);
      expect(cached.probes).toEqual(reference.probes);
      expect(cached.fuelLeft).toBe(reference.fuelLeft);
      expect(cached.probes.length).toBe(n > 5 ? 2 : 1);
    }
  });
});

describe('runaway code always stops', () => {
  const runaways: Record<string, string> = {
    'empty loop': `(func (export "main") (param i32) (result i32) (loop (br 0)) (i32.const 0))`,
    'loop calling a leaf': `(func $leaf (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func (export "main") (param $n i32) (result i32) (loop (local.set $n (call $leaf (local.get $n))) (br 0)) (local.get $n))`,
    'loop calling the host': `(func (export "main") (param $n i32) (result i32)
      (loop (local.set $n (call $log (local.get $n) (i32.const 0))) (br 0)) (local.get $n))`,
    'self recursion': `(func $r (export "main") (param $n i32) (result i32) (call $r (i32.add (local.get $n) (i32.const 1))))`,
    'mutual recursion through a table': `(table 2 funcref) (elem (i32.const 0) func $a $b)
      (type $t (func (param i32) (result i32)))
      (func $a (param $n i32) (result i32) (call_indirect (type $t) (local.get $n) (i32.const 1)))
      (func $b (export "main") (param $n i32) (result i32) (call_indirect (type $t) (local.get $n) (i32.const 0)))`,
    'loop inside recursion': `(func $r (export "main") (param $n i32) (result i32)
      (local $i i32)
      (block (loop (br_if 1 (i32.ge_u (local.get $i) (i32.const 3))) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br 0)))
      (call $r (local.get $n)))`,
  };
  for (const [name, body] of Object.entries(runaways)) {
    it(`${name}: OUT_OF_BUDGET for any budget`, async () => {
      const bytes = await watToWasm(
        `(module (import "genesis" "debug_log" (func $log (param i32 i32) (result i32))) (memory 1) ${body})`,
        'runaway.wat',
      );
      const ins = instrument(bytes).bytes;
      // Budgets stay below what V8's stack holds for the recursive cases (each frame costs a
      // few units); the kernel bounds nested calls separately.
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 40_000 }), (budget) => {
          const r = execute(ins, 1, budget);
          expect(r.fault).toBe(FaultKind.OUT_OF_BUDGET);
          expect(r.result).toMatch(/^trap/);
          expect(r.fuelLeft).toBeLessThan(0);
        }),
        { numRuns: 25 },
      );
    });
  }
});

describe('yield mode', () => {
  it(
    'random programs: fuel_yield sees exact fuel, refilled fuel is reloaded, yields are deterministic',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          program,
          fc.nat(20),
          fc.integer({ min: 20, max: 400 }),
          async (fns, n, slice) => {
            const text = programWat(fns).replace(
              '(tag $e',
              '(import "genesis" "fuel_yield" (func $yield)) (tag $e',
            );
            const bytes = await watToWasm(text, 'yield.wat');
            const run = (cacheFuel: boolean): { result: unknown; yields: number[] } => {
              const yields: number[] = [];
              let soft: { value: number } | undefined;
              const imports = {
                genesis: {
                  debug_log: (a: number, b: number) => (Math.imul(a, 7) + b) & 0xff,
                  fuel_yield: () => {
                    yields.push((soft as { value: number }).value);
                    if (yields.length > 100_000)
                      throw new Error('livelock: refilled fuel not seen');
                    (soft as { value: number }).value = slice;
                  },
                },
              };
              const ex = new WA.Instance(
                new WA.Module(instrument(bytes, 'yield', { cacheFuel }).bytes),
                imports,
              ).exports;
              soft = ex.genesis_soft_fuel as { value: number };
              soft.value = slice;
              let result: unknown;
              try {
                result = (ex.main as Fn)(n);
              } catch (e) {
                result = e instanceof WA.Exception ? 'exception' : String(e);
              }
              return { result, yields };
            };
            const cached = run(true);
            const reference = run(false);
            expect(cached).toEqual(reference);
            for (const y of cached.yields) expect(y).toBeLessThan(0);
          },
        ),
        { numRuns: 20 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
