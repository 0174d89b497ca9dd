/**
 * Spawn pool (wasmtime-style instance recycling): a recycled instance must be indistinguishable
 * from a fresh one — memory, globals, table — and the new domain gets a fresh identity and
 * CSpace. Also: CNodes grow lazily and keep generation semantics.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CNode,
  type Domain,
  Endpoint,
  Kernel,
  type KernelModule,
  originalCap,
  Rights,
  SPAWN_POOL_INSTANCES_MAX,
} from '../../src/kernel/index.ts';
import { wat } from './helpers.ts';

/**
 * A module with state everywhere a domain could leave a trace: memory (with a data segment),
 * mutable globals of every number type (exported and not), a funcref table read through
 * call_indirect, and a start function that changes state at instantiation.
 */
const STATEFUL = `(module
  (memory (export "mem") 1 4)
  (data (i32.const 16) "pristine")
  (table 2 funcref)
  (elem (i32.const 0) $one $two)
  (type $t (func (result i32)))
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (global $a (export "a") (mut i32) (i32.const 7))
  (global $b (export "b") (mut i64) (i64.const -3))
  (global $c (export "c") (mut f64) (f64.const 1.5))
  (global $hidden (mut i32) (i32.const 100))
  (global $starts (export "starts") (mut i32) (i32.const 0))
  (func $start (global.set $starts (i32.add (global.get $starts) (i32.const 1))))
  (start $start)
  (func (export "hidden") (result i32) (global.get $hidden))
  (func (export "dispatch") (param i32) (result i32) (call_indirect (type $t) (local.get 0)))
  (func (export "scribble") (param $seed i32)
    (local $i i32)
    (loop $l
      (i32.store (local.get $i) (i32.xor (local.get $seed) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 65536))))
    (global.set $a (local.get $seed))
    (global.set $b (i64.extend_i32_s (local.get $seed)))
    (global.set $c (f64.convert_i32_s (local.get $seed)))
    (global.set $hidden (local.get $seed)))
  (func (export "grow") (drop (memory.grow (i32.const 1))))
  (func (export "genesis_handle") (param i64 i32 i64 i64) (result i64) (local.get 2)))`;

type Fn = (...a: unknown[]) => unknown;

/** Everything observable about a domain's instance state. */
function observe(k: Kernel, d: Domain): unknown {
  const e = d.instance.exports;
  const run = (name: string, ...args: unknown[]): unknown => {
    const r = k.runHook(d, e[name] as Fn, args, 1_000_000);
    if (!r.ok) throw new Error(`${name} faulted: ${r.message}`);
    return r.value;
  };
  const mem = new Uint8Array((e.mem as { buffer: ArrayBuffer }).buffer);
  return {
    memPages: mem.length / 65536,
    memHash: mem.reduce((h, b, i) => (h * 31 + b * (i + 1)) >>> 0, 7),
    data: Buffer.from(mem.subarray(16, 24)).toString(),
    a: (e.a as { value: number }).value,
    b: (e.b as { value: bigint }).value,
    c: (e.c as { value: number }).value,
    starts: (e.starts as { value: number }).value,
    hidden: run('hidden'),
    table: [run('dispatch', 0), run('dispatch', 1)],
    caps: d.cspace.count,
    stats: { ...d.snapshot(), id: 0, name: '' },
  };
}

async function stateful(): Promise<KernelModule> {
  return wat(STATEFUL, 'stateful');
}

describe('spawn pool', () => {
  it('a recycled instance shows no trace of the previous domain', async () => {
    const m = await stateful();
    expect(m.poolBlocker).toBeUndefined();
    const fresh = new Kernel();
    const reference = observe(fresh, fresh.spawn(m).domain);

    const k = new Kernel();
    const ep = k.createEndpoint();
    const a = k.spawn(m, { caps: [ep, ep, ep] });
    k.bindReceiver(a.domain, ep);
    const r = k.runHook(a.domain, a.domain.instance.exports.scribble as Fn, [0x5eed], 10_000_000);
    expect(r.ok).toBe(true);
    expect(observe(k, a.domain)).not.toEqual(reference);
    const instance = a.domain.instance;
    k.kill(a.domain);
    expect(k.pooled(m)).toBe(1);
    const b = k.spawn(m);
    expect(k.stats.spawnPoolHits).toBe(1);
    expect(b.domain.instance).toBe(instance); // really the recycled instance
    expect(observe(k, b.domain)).toEqual(reference);
    // Fresh identity and CSpace: none of the old cptrs resolves, the old endpoint binding is gone.
    expect(b.domain.id).not.toBe(a.domain.id);
    for (const cptr of a.cptrs) expect(b.domain.cspace.lookup(cptr)).toBeUndefined();
    expect((ep.obj as Endpoint).receiver).toBeUndefined();
    // The dead domain cannot drive the instance any more.
    expect(() => k.runHook(a.domain, instance.exports.hidden as Fn, [], 1000)).toThrow(/dead/);
  });

  it('holds for any scribbled state (property)', async () => {
    const m = await stateful();
    const fresh = new Kernel();
    const reference = observe(fresh, fresh.spawn(m).domain);
    const k = new Kernel();
    fc.assert(
      fc.property(fc.integer(), fc.boolean(), (seed, viaRestart) => {
        const a = k.spawn(m);
        k.runHook(a.domain, a.domain.instance.exports.scribble as Fn, [seed | 0], 10_000_000);
        if (viaRestart) {
          // A restart recycles the old instance too: the domain must come back pristine.
          k.fault(a.domain, 1, 0, 'test');
          k.restart(a.domain);
          expect(observe(k, a.domain)).toEqual({
            ...(reference as object),
            stats: (observe(k, a.domain) as { stats: unknown }).stats,
          });
          k.kill(a.domain);
          return;
        }
        k.kill(a.domain);
        const b = k.spawn(m);
        expect(observe(k, b.domain)).toEqual(reference);
        k.kill(b.domain);
      }),
      { numRuns: 25 },
    );
    expect(k.stats.spawnPoolHits).toBeGreaterThan(20);
  });

  it('an instance whose memory grew is dropped, not recycled', async () => {
    const m = await stateful();
    const k = new Kernel();
    const a = k.spawn(m);
    k.runHook(a.domain, a.domain.instance.exports.grow as Fn, [], 100_000);
    expect(a.domain.memoryBytes).toBe(2 * 65536);
    k.kill(a.domain);
    expect(k.pooled(m)).toBe(0);
    const b = k.spawn(m);
    expect(b.domain.instance).not.toBe(a.domain.instance);
    expect(b.domain.memoryBytes).toBe(65536);
  });

  it('modules that can change a table or use passive data are never pooled', async () => {
    const tableSet = await wat(`(module (table 1 funcref)
      (func $f) (elem declare func $f)
      (func (export "genesis_main") (table.set (i32.const 0) (ref.func $f))))`);
    expect(tableSet.poolBlocker).toMatch(/table/);
    const passive = await wat(`(module (memory 1) (data $d "x")
      (func (export "genesis_main") (memory.init $d (i32.const 0) (i32.const 0) (i32.const 1))))`);
    expect(passive.poolBlocker).toMatch(/passive/);
    const k = new Kernel();
    expect(k.prewarm(tableSet, 4)).toBe(0);
    const d = k.spawn(tableSet);
    k.run();
    k.kill(d.domain);
    expect(k.pooled()).toBe(0);
  });

  it('prewarm fills the pool within its bounds and the live-domain bound', async () => {
    const m = await stateful();
    const k = new Kernel({ domainsMax: 6 });
    expect(k.prewarm(m, 100)).toBe(6);
    const made = [k.spawn(m), k.spawn(m)];
    expect(k.stats.spawnPoolHits).toBe(2);
    expect(k.pooled(m)).toBe(4);
    // Pooled instances never push live domains + memories past the bound.
    for (let i = 0; i < 4; i++) made.push(k.spawn(m));
    expect(() => k.spawn(m)).toThrow(/bound/);
    for (const x of made) k.kill(x.domain);
    expect(k.pooled(m)).toBeLessThanOrEqual(6);
    // A cold spawn of another module evicts a pooled instance rather than exceed the bound.
    const other = await wat(`(module (memory 1) (func (export "genesis_main")))`);
    expect(k.pooled()).toBe(6);
    k.spawn(other);
    expect(k.pooled() + k.stats.domainsLive).toBeLessThanOrEqual(6);
    const big = new Kernel();
    expect(big.prewarm(m, SPAWN_POOL_INSTANCES_MAX + 10)).toBeLessThanOrEqual(
      SPAWN_POOL_INSTANCES_MAX,
    );
  });

  it('a pooled server keeps answering calls after recycling', async () => {
    const m = await stateful();
    const k = new Kernel();
    k.prewarm(m, 2);
    const ep = k.createEndpoint();
    for (let i = 0; i < 5; i++) {
      const d = k.spawn(m);
      k.bindReceiver(d.domain, ep);
      expect(k.call(ep, 1, BigInt(i)).mr0).toBe(BigInt(i));
      k.kill(d.domain);
    }
    expect(k.stats.spawnPoolHits).toBe(5);
  });
});

describe('lazily sized CNodes', () => {
  it('grow on demand up to their size and keep stale cptrs stale', () => {
    const cn = new CNode(40);
    expect(cn.slots.length).toBeLessThan(40);
    const caps = Array.from({ length: 40 }, () => originalCap(new Endpoint(), Rights.ALL));
    const cptrs = caps.map((c) => cn.insert(c));
    expect(cptrs.every((c) => c >= 0)).toBe(true);
    expect(new Set(cptrs).size).toBe(40);
    expect(cn.insert(originalCap(new Endpoint(), Rights.ALL))).toBe(-1);
    for (let i = 0; i < 40; i++) expect(cn.lookup(cptrs[i] as number)).toBe(caps[i]);
    cn.vacate(caps[3] as ReturnType<typeof originalCap>);
    expect(cn.lookup(cptrs[3] as number)).toBeUndefined();
    const again = cn.insert(originalCap(new Endpoint(), Rights.ALL));
    expect(again & 0xfff).toBe(3);
    expect(again).not.toBe(cptrs[3]);
    // A cptr naming a slot beyond the allocated part of a fresh CNode resolves to nothing.
    expect(new CNode(4096).lookup((1 << 12) | 4000)).toBeUndefined();
    expect(new CNode(4096).cptrOf(4000)).toBe((1 << 12) | 4000);
  });
});
