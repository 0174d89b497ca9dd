// CPU-bound worker (AssemblyScript): a sieve of Eratosthenes. Reserves an Asyncify stack so the
// toolchain can make it preemptible.
import { log } from '../../../sdk/assemblyscript/index';

export const genesis_async_buffer: usize = memory.data(8192);
export const genesis_async_buffer_bytes: i32 = 8192;
let primes: i32 = 0;

export function genesis_main(): void {
  const n = 200000;
  const sieve = new StaticArray<u8>(n);
  let count = 0;
  for (let i = 2; i < n; i++) {
    if (sieve[i] === 0) {
      count++;
      for (let j = i * 2; j < n; j += i) sieve[j] = 1;
    }
  }
  primes = count;
  log('primes ' + count.toString());
}

export function result(): i32 {
  return primes;
}
