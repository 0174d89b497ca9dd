/**
 * Reed-Solomon benchmarks (issue 5, "Benchmarks" table, RS rows). Every case measures its
 * baselines in the same run: the portable JS kernel and the native addon @ronomon/reed-solomon
 * (C, one call at a time so it runs on one thread-pool thread, i.e. one core).
 *
 * Throughput is data bytes (k x shard size) per second, best of several rounds by wall clock
 * (the machine is shared; the best round is the least disturbed). Between rounds the event loop
 * turns, which is also what lets V8 swap the WebAssembly kernel from Liftoff to TurboFan code.
 */
import { createRequire } from 'node:module';
import { ReedSolomon, wasmKernelVariant } from '../../src/store/index.ts';
import { type BenchCase, bestOf, row } from '../harness.ts';

const K = 10;
const M = 4;
const SHARD_BYTES = 1 << 20;
/** Stripes cycled through in the cold-cache case: 12 x 14 MiB = 168 MiB, 5x a 32 MiB L3. */
const COLD_STRIPES = 12;
const ROUNDS = 40;
/**
 * Kernel binary in this process: `simd` on Node 20 by default, `relaxed-simd` on Node 22+ or
 * under `node --experimental-wasm-relaxed-simd` (see docs/store-erasure.md).
 */
const VARIANT = `wasm-${wasmKernelVariant() ?? 'unavailable'}`;

interface Ronomon {
  create(k: number, m: number): unknown;
  encode(
    ctx: unknown,
    sources: number,
    targets: number,
    data: Buffer,
    dataOffset: number,
    dataSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    cb: (err: Error | undefined) => void,
  ): void;
}
const ronomon = createRequire(import.meta.url)('@ronomon/reed-solomon') as Ronomon;

/** A k+m stripe both codecs can use: shards are views into one data and one parity buffer. */
interface Stripe {
  readonly dataBuf: Buffer;
  readonly parityBuf: Buffer;
  readonly data: Uint8Array[];
  readonly parity: Uint8Array[];
}

function makeStripe(seed: number): Stripe {
  const dataBuf = Buffer.allocUnsafe(K * SHARD_BYTES);
  let x = seed | 1;
  for (let i = 0; i < dataBuf.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    dataBuf.writeInt32LE(x | 0, i);
  }
  const parityBuf = Buffer.alloc(M * SHARD_BYTES);
  const view = (b: Buffer, i: number): Uint8Array =>
    new Uint8Array(b.buffer, b.byteOffset + i * SHARD_BYTES, SHARD_BYTES);
  return {
    dataBuf,
    parityBuf,
    data: Array.from({ length: K }, (_, i) => view(dataBuf, i)),
    parity: Array.from({ length: M }, (_, i) => view(parityBuf, i)),
  };
}

const mask = (from: number, to: number): number => {
  let b = 0;
  for (let i = from; i < to; i++) b |= 1 << i;
  return b;
};

function ronomonRun(ctx: unknown, s: Stripe, sources: number, targets: number): Promise<void> {
  return new Promise((resolve, reject) => {
    ronomon.encode(
      ctx,
      sources,
      targets,
      s.dataBuf,
      0,
      s.dataBuf.length,
      s.parityBuf,
      0,
      s.parityBuf.length,
      (e) => (e ? reject(e) : resolve()),
    );
  });
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Best-of-rounds MB/s of `fn` over `bytes` data bytes per call, `reps` calls per round. */
async function mbps(
  bytes: number,
  reps: number,
  rounds: number,
  fn: () => unknown,
): Promise<number> {
  const ms = await bestOf(rounds, async () => {
    for (let i = 0; i < reps; i++) await fn();
    await tick();
  });
  return (bytes * reps) / 1e6 / (ms / 1e3);
}

async function warmUp(fn: () => unknown, ms = 400): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await fn();
    await tick();
  }
}

const encodeHot: BenchCase = {
  name: 'rs-encode-10+4-1MiB',
  async run() {
    const s = makeStripe(1);
    const rs = new ReedSolomon(K, M);
    const portable = new ReedSolomon(K, M, { kernel: 'portable' });
    const ctx = ronomon.create(K, M);
    const bytes = K * SHARD_BYTES;
    await warmUp(() => rs.encodeInto(s.data, s.parity));
    const simd = await mbps(bytes, 4, ROUNDS, () => rs.encodeInto(s.data, s.parity));
    const alloc = await mbps(bytes, 4, ROUNDS, () => rs.encode(s.data));
    const js = await mbps(bytes, 1, 3, () => portable.encodeInto(s.data, s.parity));
    const stripe = rs.createStripe(SHARD_BYTES);
    stripe.data.forEach((d, i) => {
      d.set(s.data[i]!);
    });
    await warmUp(() => stripe.encode(), 200);
    const inPlace = await mbps(bytes, 4, ROUNDS, () => stripe.encode());
    stripe.parity.forEach((p, i) => {
      if (!Buffer.from(p).equals(s.parity[i]!)) throw new Error('stripe parity differs');
    });
    await warmUp(() => ronomonRun(ctx, s, mask(0, K), mask(K, K + M)), 200);
    const native = await mbps(bytes, 4, ROUNDS, () =>
      ronomonRun(ctx, s, mask(0, K), mask(K, K + M)),
    );
    const t = '≥ 3000 MB/s, ahead of native';
    return [
      row(
        `RS encode ${K}+${M} 1MiB shards, ${VARIANT} encodeInto`,
        simd,
        'MB/s',
        'portable JS',
        js,
        t,
      ),
      row(
        `RS encode ${K}+${M} 1MiB shards, ${VARIANT} encodeInto`,
        simd,
        'MB/s',
        '@ronomon/reed-solomon (native)',
        native,
        t,
      ),
      row(
        `RS encode ${K}+${M} 1MiB shards, ${VARIANT} stripe in wasm memory (no copy)`,
        inPlace,
        'MB/s',
        'portable JS',
        js,
        t,
      ),
      row(
        `RS encode ${K}+${M} 1MiB shards, ${VARIANT} stripe in wasm memory (no copy)`,
        inPlace,
        'MB/s',
        '@ronomon/reed-solomon (native)',
        native,
        t,
      ),
      row(
        `RS encode ${K}+${M} 1MiB shards, ${VARIANT} encode (allocates parity)`,
        alloc,
        'MB/s',
        '@ronomon/reed-solomon (native)',
        native,
      ),
    ];
  },
};

const encodeCold: BenchCase = {
  name: 'rs-encode-10+4-1MiB-cold',
  async run() {
    const stripes = Array.from({ length: COLD_STRIPES }, (_, i) => makeStripe(i + 7));
    const rs = new ReedSolomon(K, M);
    const portable = new ReedSolomon(K, M, { kernel: 'portable' });
    const ctx = ronomon.create(K, M);
    const bytes = COLD_STRIPES * K * SHARD_BYTES;
    const all = (f: (s: Stripe) => unknown) => async () => {
      for (const s of stripes) await f(s);
    };
    await warmUp(all((s) => rs.encodeInto(s.data, s.parity)));
    const simd = await mbps(
      bytes,
      1,
      8,
      all((s) => rs.encodeInto(s.data, s.parity)),
    );
    const native = await mbps(
      bytes,
      1,
      8,
      all((s) => ronomonRun(ctx, s, mask(0, K), mask(K, K + M))),
    );
    const js = await mbps(bytes / 4, 1, 1, async () => {
      for (const s of stripes.slice(0, COLD_STRIPES / 4)) portable.encodeInto(s.data, s.parity);
    });
    const name = `RS encode ${K}+${M} 1MiB shards, ${COLD_STRIPES * (K + M)} MiB working set (> L3), ${VARIANT}`;
    return [
      row(name, simd, 'MB/s', 'portable JS', js, 'report'),
      row(name, simd, 'MB/s', '@ronomon/reed-solomon (native)', native, 'report'),
    ];
  },
};

/**
 * Best-of-rounds MB/s by process CPU time (user + system, all threads, so the native addon's
 * thread-pool work counts too). On a shared, overloaded machine wall clock mostly measures the
 * scheduler; CPU time measures the code. Reported beside, not instead of, the wall-clock rows.
 */
async function cpuMbps(
  bytes: number,
  reps: number,
  rounds: number,
  fn: () => unknown,
): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const u0 = process.cpuUsage();
    for (let i = 0; i < reps; i++) await fn();
    const u = process.cpuUsage(u0);
    best = Math.min(best, (u.user + u.system) / 1000);
    await tick();
  }
  return (bytes * reps) / 1e6 / (best / 1e3);
}

const encodeCpu: BenchCase = {
  name: 'rs-encode-10+4-1MiB-cputime',
  async run() {
    const s = makeStripe(5);
    const rs = new ReedSolomon(K, M);
    const portable = new ReedSolomon(K, M, { kernel: 'portable' });
    const ctx = ronomon.create(K, M);
    const stripe = rs.createStripe(SHARD_BYTES);
    stripe.data.forEach((d, i) => {
      d.set(s.data[i]!);
    });
    const bytes = K * SHARD_BYTES;
    await warmUp(() => rs.encodeInto(s.data, s.parity));
    await warmUp(() => stripe.encode(), 200);
    // 8 calls per round: long enough (> 20 ms) that tick-based CPU accounting is accurate.
    const simd = await cpuMbps(bytes, 8, ROUNDS, () => rs.encodeInto(s.data, s.parity));
    const inPlace = await cpuMbps(bytes, 8, ROUNDS, () => stripe.encode());
    const js = await cpuMbps(bytes, 1, 2, () => portable.encodeInto(s.data, s.parity));
    const native = await cpuMbps(bytes, 8, ROUNDS, () =>
      ronomonRun(ctx, s, mask(0, K), mask(K, K + M)),
    );
    const t = '≥ 3000 MB/s, ahead of native';
    return [
      row(
        `RS encode ${K}+${M} 1MiB, ${VARIANT} encodeInto, by CPU time`,
        simd,
        'MB/s',
        'portable JS',
        js,
        t,
      ),
      row(
        `RS encode ${K}+${M} 1MiB, ${VARIANT} encodeInto, by CPU time`,
        simd,
        'MB/s',
        '@ronomon/reed-solomon (native)',
        native,
        t,
      ),
      row(
        `RS encode ${K}+${M} 1MiB, ${VARIANT} stripe (no copy), by CPU time`,
        inPlace,
        'MB/s',
        '@ronomon/reed-solomon (native)',
        native,
        t,
      ),
    ];
  },
};

const reconstructLost: BenchCase = {
  name: 'rs-reconstruct-10+4-1MiB',
  async run() {
    const s = makeStripe(3);
    const rs = new ReedSolomon(K, M);
    rs.encodeInto(s.data, s.parity);
    const ctx = ronomon.create(K, M);
    // ronomon's code is not the Backblaze/klauspost one, so it decodes its own stripe.
    const theirs = makeStripe(3);
    await ronomonRun(ctx, theirs, mask(0, K), mask(K, K + M));
    const bytes = K * SHARD_BYTES;
    const all = [...s.data, ...s.parity];
    const buffers = Array.from({ length: M }, () => new Uint8Array(SHARD_BYTES));
    const patterns: [string, number[]][] = [
      ['4 data shards lost', [0, 3, 6, 9]],
      ['2 data + 2 parity lost', [1, 5, K, K + 2]],
    ];
    await warmUp(() => rs.encodeInto(s.data, s.parity));
    const enc = await mbps(bytes, 4, ROUNDS, () => rs.encodeInto(s.data, s.parity));
    const encCpu = await cpuMbps(bytes, 8, ROUNDS, () => rs.encodeInto(s.data, s.parity));
    const rows = [];
    for (const [label, lost] of patterns) {
      const holes: (Uint8Array | undefined)[] = all.slice();
      for (const i of lost) holes[i] = undefined;
      const rec = await mbps(bytes, 4, ROUNDS, () => rs.reconstructInto(holes, buffers));
      lost.forEach((idx, j) => {
        if (!Buffer.from(buffers[j]!).equals(all[idx]!))
          throw new Error(`shard ${idx} rebuilt wrong`);
      });
      const recAlloc = await mbps(bytes, 4, ROUNDS, () => rs.reconstruct(holes));
      const stripe = rs.createStripe(SHARD_BYTES);
      stripe.shards.forEach((d, i) => {
        d.set(all[i]!);
      });
      const inPlace = await mbps(bytes, 4, ROUNDS, () => stripe.reconstruct(lost));
      const inPlaceCpu = await cpuMbps(bytes, 8, ROUNDS, () => stripe.reconstruct(lost));
      const recCpu = await cpuMbps(bytes, 8, ROUNDS, () => rs.reconstructInto(holes, buffers));
      for (const i of lost)
        if (!Buffer.from(stripe.shards[i]!).equals(all[i]!))
          throw new Error(`stripe shard ${i} wrong`);
      const targets = lost.reduce((b, i) => b | (1 << i), 0);
      const sources = mask(0, K + M) & ~targets;
      const native = await mbps(bytes, 4, ROUNDS, () => ronomonRun(ctx, theirs, sources, targets));
      rows.push(
        row(
          `RS reconstruct ${K}+${M} 1MiB, ${label}, reconstructInto, by CPU time`,
          recCpu,
          'MB/s',
          `${VARIANT} encodeInto, by CPU time`,
          encCpu,
          '≥ 1500 MB/s',
        ),
        row(
          `RS reconstruct ${K}+${M} 1MiB, ${label}, stripe, by CPU time`,
          inPlaceCpu,
          'MB/s',
          `${VARIANT} encodeInto, by CPU time`,
          encCpu,
          '≥ 1500 MB/s',
        ),
        row(
          `RS reconstruct ${K}+${M} 1MiB, ${label}, reconstructInto`,
          rec,
          'MB/s',
          `${VARIANT} encodeInto`,
          enc,
          '≥ 1500 MB/s',
        ),
        row(
          `RS reconstruct ${K}+${M} 1MiB, ${label}, reconstructInto`,
          rec,
          'MB/s',
          '@ronomon/reed-solomon (native)',
          native,
        ),
        row(
          `RS reconstruct ${K}+${M} 1MiB, ${label}, stripe in wasm memory`,
          inPlace,
          'MB/s',
          `${VARIANT} encodeInto`,
          enc,
          '≥ 1500 MB/s',
        ),
        row(
          `RS reconstruct ${K}+${M} 1MiB, ${label}, reconstruct (allocates)`,
          recAlloc,
          'MB/s',
          `${VARIANT} encodeInto`,
          enc,
        ),
      );
    }
    if (!rs.verify([...s.data, ...s.parity])) throw new Error('stripe no longer verifies');
    return rows;
  },
};

export default [encodeHot, encodeCpu, encodeCold, reconstructLost] satisfies BenchCase[];
