/**
 * Child process for erasure-relaxed.int.test.ts: run under a flag that enables relaxed SIMD, it
 * checks that the relaxed kernel is the one in use and that it agrees with the portable kernel
 * on random codes, shard sizes and erasure patterns. Prints one JSON line.
 */
import { ReedSolomon, wasmKernelVariant } from '../../../src/store/erasure/index.ts';

let x = 0x9e3779b9;
const rand = (n: number): number => {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) % n;
};
let cases = 0;
let mismatches = 0;
for (let t = 0; t < 200; t++) {
  const k = 1 + rand(16);
  const m = 1 + rand(8);
  const size = 1 + rand(t % 10 === 0 ? 70_000 : 3000);
  const data = Array.from({ length: k }, () => Uint8Array.from({ length: size }, () => rand(256)));
  const fast = new ReedSolomon(k, m);
  const slow = new ReedSolomon(k, m, { kernel: 'portable' });
  const a = fast.encode(data);
  const b = slow.encode(data);
  const all = [...data, ...b];
  const holes: (Uint8Array | undefined)[] = all.slice();
  for (let i = 0; i < m; i++) holes[rand(k + m)] = undefined;
  const back = fast.reconstruct(holes);
  cases++;
  const same = (p: readonly Uint8Array[], q: readonly Uint8Array[]): boolean =>
    p.every((s, i) => Buffer.from(s).equals(q[i]!));
  if (!same(a, b) || !same(back, all)) mismatches++;
}
process.stdout.write(`${JSON.stringify({ variant: wasmKernelVariant(), cases, mismatches })}\n`);
