// CPU-bound kernel (AssemblyScript): dense f64 matrix multiply C = A × B of N×N matrices,
// i-k-j order (the cache-friendly loop nest a compiler or a person would write). The matrices
// are allocated once at start, so `run` can be called any number of times without growing
// memory. Used by bench/kernel/fuel.bench.ts as a realistic fuel-metering workload.
import { log } from '../../../sdk/assemblyscript/index';

export const genesis_async_buffer: usize = memory.data(8192);
export const genesis_async_buffer_bytes: i32 = 8192;
const N: i32 = 96;
const a = new StaticArray<f64>(N * N);
const b = new StaticArray<f64>(N * N);
const c = new StaticArray<f64>(N * N);
let checksum: f64 = 0;

function fill(seed: i32): void {
  let x: u32 = <u32>seed | 1;
  for (let i = 0; i < N * N; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    a[i] = <f64>(x & 0xff) / 16.0;
    b[i] = <f64>((x >> 8) & 0xff) / 16.0;
  }
}

function multiply(): f64 {
  for (let i = 0; i < N * N; i++) c[i] = 0;
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < N; k++) {
      const aik = unchecked(a[i * N + k]);
      for (let j = 0; j < N; j++) {
        c[i * N + j] += aik * b[k * N + j];
      }
    }
  }
  let sum: f64 = 0;
  for (let i = 0; i < N * N; i++) sum += unchecked(c[i]);
  return sum;
}

/** Multiplies `times` times (refilling the inputs from `seed` each time); returns the checksum. */
export function run(times: i32, seed: i32): f64 {
  let total: f64 = 0;
  for (let t = 0; t < times; t++) {
    fill(seed + t);
    total += multiply();
  }
  checksum = total;
  return total;
}

export function genesis_main(): void {
  log('matmul ' + run(1, 1).toString());
}

export function result(): f64 {
  return checksum;
}
