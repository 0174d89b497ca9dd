/**
 * The benchmark harness. Each benchmark file `bench/<layer>/*.bench.ts` default-exports an array
 * of {@link BenchCase}s; each case measures its own baseline in the same run and reports
 * `{ bench, value, unit, baseline, baselineValue, ratio }` rows. The machine is shared and
 * noisy, so targets are judged on ratios, not absolute times.
 */
import { Bench } from 'tinybench';

/** One reported measurement. `ratio` = value / baselineValue. */
export interface BenchRow {
  readonly bench: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline: string;
  readonly baselineValue: number;
  readonly ratio: number;
  /** Target the issue sets, shown beside the figure (informational). */
  readonly target?: string;
}

/** A benchmark case. */
export interface BenchCase {
  readonly name: string;
  run(): Promise<BenchRow[]> | BenchRow[];
}

/** Builds a row, computing the ratio. */
export function row(
  bench: string,
  value: number,
  unit: string,
  baseline: string,
  baselineValue: number,
  target?: string,
): BenchRow {
  const ratio = baselineValue === 0 ? Number.NaN : value / baselineValue;
  return {
    bench,
    value: round(value),
    unit,
    baseline,
    baselineValue: round(baselineValue),
    ratio: round(ratio),
    ...(target === undefined ? {} : { target }),
  };
}

function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const mag = Math.abs(x);
  const digits = mag >= 100 ? 1 : mag >= 1 ? 3 : 6;
  return Number(x.toFixed(digits));
}

/** Timing of one function. */
export interface Timing {
  readonly medianNs: number;
  readonly meanNs: number;
  readonly p99Ns: number;
  readonly opsPerSec: number;
  readonly samples: number;
}

/** Options of {@link measure}. */
export interface MeasureOptions {
  readonly timeMs?: number;
  readonly warmupMs?: number;
  readonly iterations?: number;
}

/** Measures `fn` with tinybench and returns its latency distribution. */
export async function measure(
  name: string,
  fn: () => unknown | Promise<unknown>,
  options: MeasureOptions = {},
): Promise<Timing> {
  const bench = new Bench({
    time: options.timeMs ?? 500,
    warmupTime: options.warmupMs ?? 100,
    ...(options.iterations === undefined ? {} : { iterations: options.iterations }),
  });
  bench.add(name, fn);
  await bench.run();
  const task = bench.tasks[0];
  const r = task?.result;
  if (r === undefined || !('latency' in r))
    throw new Error(`benchmark ${name} failed: ${JSON.stringify(r)}`);
  const lat = r.latency;
  return {
    medianNs: (lat.p50 ?? lat.mean) * 1e6,
    meanNs: lat.mean * 1e6,
    p99Ns: (lat.p99 ?? lat.max) * 1e6,
    opsPerSec: r.throughput.mean,
    samples: lat.samplesCount,
  };
}

/**
 * Times a batch operation by wall clock: runs `fn` `rounds` times and returns the best
 * (least-disturbed) duration in ms. For throughput figures over large inputs.
 */
export async function bestOf(
  rounds: number,
  fn: () => unknown | Promise<unknown>,
): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}
