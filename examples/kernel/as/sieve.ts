// CPU-bound kernel (AssemblyScript): the sieve of Eratosthenes of worker.ts over a buffer
// allocated once at start (worker.ts allocates a fresh array per call, which the stub runtime
// never frees), so `run` can be called any number of times without growing memory. Used by
// bench/kernel/fuel.bench.ts as a realistic fuel-metering workload.
import { log } from '../../../sdk/assemblyscript/index';

export const genesis_async_buffer: usize = memory.data(8192);
export const genesis_async_buffer_bytes: i32 = 8192;
const LIMIT: i32 = 1_000_000;
const sieve = new StaticArray<u8>(LIMIT);
let primes: i32 = 0;

/** Counts the primes below `n` (at most LIMIT). */
export function run(n: i32): i32 {
  if (n > LIMIT) n = LIMIT;
  for (let i = 0; i < n; i++) sieve[i] = 0;
  let count = 0;
  for (let i = 2; i < n; i++) {
    if (unchecked(sieve[i]) === 0) {
      count++;
      for (let j = i * 2; j < n; j += i) sieve[j] = 1;
    }
  }
  primes = count;
  return count;
}

export function genesis_main(): void {
  log('primes ' + run(200_000).toString());
}

export function result(): i32 {
  return primes;
}
