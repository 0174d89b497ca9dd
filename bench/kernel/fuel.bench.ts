/**
 * Fuel-metering overhead (issue 3): CPU-bound modules instrumented by the kernel's loader vs the
 * same modules uninstrumented, measured in the same run.
 * Run: `npm run bench -- fuel` (`--json` for JSON lines).
 */
import { readFileSync } from 'node:fs';
import { instrument } from '../../src/kernel/index.ts';
import { makePreemptible, watToWasm } from '../../src/toolchain/index.ts';
import { type BenchCase, bestOf, row } from '../harness.ts';

const W = (globalThis as unknown as { WebAssembly: unknown }).WebAssembly as {
  Module: new (b: Uint8Array) => object;
  Instance: new (m: object, i: object) => { exports: Record<string, unknown> };
};
type Fn = (...a: unknown[]) => unknown;

async function fuelOverhead(): Promise<ReturnType<typeof row>[]> {
  const rows: ReturnType<typeof row>[] = [];
  const worker = await watToWasm(
    readFileSync(new URL('../../examples/kernel/worker.wat', import.meta.url), 'utf8'),
  );
  const sieve = new Uint8Array(
    readFileSync(new URL('../../examples/kernel/as/worker.wasm', import.meta.url)),
  );
  const imports = { genesis: { debug_log: () => 0, fuel_yield: () => undefined } };
  const time = (
    bytes: Uint8Array,
    setup: (e: Record<string, unknown>) => void,
  ): Promise<number> => {
    const inst = new W.Instance(new W.Module(bytes), imports);
    setup(inst.exports);
    const main = inst.exports.genesis_main as Fn;
    const start = inst.exports.__genesis_start as Fn | undefined;
    return bestOf(5, () => {
      const f = inst.exports.__genesis_fuel as { value: number } | undefined;
      if (f !== undefined) f.value = 1 << 30;
      start?.();
      main();
    });
  };
  const setN = (e: Record<string, unknown>): void => {
    (e.n as { value: number }).value = 3_000_000;
    const q = e.__genesis_quota_pages as { value: number } | undefined;
    if (q !== undefined) q.value = 64;
  };
  const setQuota = (e: Record<string, unknown>): void => {
    const q = e.__genesis_quota_pages as { value: number } | undefined;
    if (q !== undefined) q.value = 64;
  };
  const plainLoop = await time(worker, setN);
  const meteredLoop = await time(instrument(worker).bytes, setN);
  rows.push(
    row(
      'kernel: fuel metering, sum loop (WAT)',
      meteredLoop,
      'ms',
      'uninstrumented',
      plainLoop,
      '≤ 10% overhead (ratio ≤ 1.1)',
    ),
  );
  const plainSieve = await time(sieve, setQuota);
  const meteredSieve = await time(instrument(sieve).bytes, setQuota);
  rows.push(
    row(
      'kernel: fuel metering, sieve (AssemblyScript)',
      meteredSieve,
      'ms',
      'uninstrumented',
      plainSieve,
      '≤ 10% overhead (ratio ≤ 1.1)',
    ),
  );
  const pre = await makePreemptible(worker);
  const preLoop = await time(instrument(pre).bytes, (e) => {
    setN(e);
    (e.genesis_soft_fuel as { value: number }).value = 1 << 30;
  });
  rows.push(
    row(
      'kernel: preemptible build (Asyncify + 2 counters), sum loop',
      preLoop,
      'ms',
      'uninstrumented',
      plainLoop,
    ),
  );
  return rows;
}

const cases: BenchCase[] = [{ name: 'fuel-overhead', run: fuelOverhead }];

export default cases;
