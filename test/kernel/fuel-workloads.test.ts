/**
 * The fuel benchmark's workloads (bench/kernel/fuel.bench.ts) compute the right answers when
 * instrumented, against independent JS references: CRC-32 against zlib, the sieve against the
 * known prime count below 10⁶ (78,498), the f64 matrix product against a JS product of the same
 * inputs, fib against its recurrence. So the overhead rows time real work, not a broken module.
 */
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { instrument } from '../../src/kernel/index.ts';

type Fn = (...a: number[]) => number;
const WA = (globalThis as unknown as { WebAssembly: unknown }).WebAssembly as {
  Module: new (b: Uint8Array) => object;
  Instance: new (m: object, i: object) => { exports: Record<string, unknown> };
};
const FUEL_UNITS = 0x7fff_ffff;

function load(rel: string): Record<string, unknown> {
  const bytes = new Uint8Array(
    readFileSync(new URL(`../../examples/kernel/${rel}`, import.meta.url)),
  );
  const e = new WA.Instance(new WA.Module(instrument(bytes).bytes), {
    genesis: { debug_log: () => 0 },
  }).exports;
  (e.__genesis_quota_pages as { value: number }).value = 64;
  (e.__genesis_fuel_set as Fn)(FUEL_UNITS);
  (e.__genesis_start as Fn | undefined)?.();
  (e.__genesis_fuel_set as Fn)(FUEL_UNITS);
  return e;
}

/** The xorshift32 stream the AssemblyScript examples use. */
function* xorshift(seed: number): Generator<number> {
  let x = seed >>> 0;
  for (;;) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    yield x;
  }
}

describe('fuel benchmark workloads, instrumented', () => {
  it('CRC-32 matches zlib on the same 16 KiB', () => {
    const e = load('as/crc32.wasm');
    const data = new Uint8Array(16384);
    const g = xorshift(0x9e3779b9);
    for (let i = 0; i < data.length; i++) data[i] = (g.next().value as number) & 0xff;
    for (const len of [0, 1, 100, 16383, 16384])
      expect((e.crc32 as Fn)(len) >>> 0).toBe(crc32(data.subarray(0, len)));
  });

  it('the sieve counts 78,498 primes below 10⁶ and 17,984 below 200,000', () => {
    const e = load('as/sieve.wasm');
    expect((e.run as Fn)(1_000_000)).toBe(78_498);
    expect((e.run as Fn)(200_000)).toBe(17_984);
  });

  it('the matrix product matches a JS product of the same inputs', () => {
    const e = load('as/matmul.wasm');
    const N = 96;
    const seed = 7;
    const g = xorshift(seed | 1);
    const a = new Float64Array(N * N);
    const b = new Float64Array(N * N);
    for (let i = 0; i < N * N; i++) {
      const x = g.next().value as number;
      a[i] = (x & 0xff) / 16;
      b[i] = ((x >>> 8) & 0xff) / 16;
    }
    let sum = 0;
    const c = new Float64Array(N * N);
    for (let i = 0; i < N; i++)
      for (let k = 0; k < N; k++) {
        const aik = a[i * N + k] as number;
        for (let j = 0; j < N; j++)
          c[i * N + j] = (c[i * N + j] as number) + aik * (b[k * N + j] as number);
      }
    for (const v of c) sum += v;
    expect((e.run as Fn)(1, seed)).toBe(sum);
  });

  it('fib follows its recurrence', () => {
    const e = load('fib.wasm');
    const fib = [0, 1];
    for (let i = 2; i <= 27; i++) fib.push((fib[i - 1] as number) + (fib[i - 2] as number));
    for (const n of [0, 1, 2, 10, 27]) expect((e.fib as Fn)(n)).toBe(fib[n]);
  });
});
