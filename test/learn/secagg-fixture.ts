/** Shared helpers of the secure-aggregation tests: session configs, inputs, the plain sum. */
import { SeededRng } from '../../src/core/index.ts';
import type { SecAggSessionConfig } from '../../src/learn/secagg/index.ts';

/** A session config; in full mode k is n − 1 whatever is passed. */
export function config(
  mode: 'full' | 'plus',
  n: number,
  t: number,
  k: number,
  vectorLength: number,
  seed = 1,
): SecAggSessionConfig {
  return {
    sessionId: new SeededRng(seed).fill(new Uint8Array(16)),
    mode,
    n,
    t,
    k: mode === 'full' ? n - 1 : k,
    vectorLength,
  };
}

/** n uniformly random input vectors of d words. */
export function randomInputs(rng: SeededRng, n: number, d: number): Uint32Array[] {
  return Array.from({ length: n }, () => Uint32Array.from({ length: d }, () => rng.nextU32()));
}

/** Σ inputs[i] mod 2^32 over `who`: what the unmasked sum must equal. */
export function plainSum(
  inputs: readonly Uint32Array[],
  who: readonly number[],
  d: number,
): Uint32Array {
  const s = new Uint32Array(d);
  for (const i of who)
    for (let j = 0; j < d; j++)
      s[j] = ((s[j] as number) + ((inputs[i] as Uint32Array)[j] as number)) >>> 0;
  return s;
}
