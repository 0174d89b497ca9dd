/**
 * A seeded generator of non-IID predictive-maintenance data, one dataset per tile.
 *
 * Each tile is a pump station with its own operating regime (ambient temperature, load, nominal
 * pump flow, vibration floor) and its own failure rate. Each example is a window of three sensor
 * signals — thermal (°C), vibration (g) and pump flow (L/min) — sampled `windowSamples` times;
 * the label says whether the pump fails within the prediction horizon. Degrading pumps run hotter
 * and heat up, vibrate harder with impulsive bearing spikes, and lose flow; severity varies so
 * classes overlap, and healthy windows carry sensor bursts so no single feature separates them.
 * Tiles differ in regime (covariate shift) and failure rate (label shift): the non-IID setting
 * federated learning has to cope with.
 *
 * Windows are reduced to {@link PDM_FEATURES} summary features standardised with fixed constants
 * (not per tile, which would leak tile statistics and break comparability across tiles).
 */
import { SeededRng } from '../../core/index.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';
import type { Dataset } from '../model/kernels.ts';

/** Feature names, in column order. */
export const PDM_FEATURES = [
  'temp_mean',
  'temp_max',
  'temp_slope',
  'vib_rms',
  'vib_peak',
  'vib_kurtosis',
  'vib_crest',
  'flow_mean_rel',
  'flow_std_rel',
  'flow_min_rel',
  'load',
  'temp_over_ambient',
] as const;

/** Largest number of windows generated for one tile. */
export const PDM_WINDOWS_MAX = 1_000_000;
/** Largest number of samples per window. */
export const PDM_WINDOW_SAMPLES_MAX = 4096;

/** Operating regime of one tile. */
export interface TileRegime {
  readonly ambientC: number;
  readonly load: number;
  readonly nominalFlowLpm: number;
  readonly vibrationFloorG: number;
  /** Fraction of windows labelled as failing. */
  readonly failureRate: number;
}

/** Options of {@link generateTileData}. */
export interface PdmOptions {
  /** Seed of the whole fleet; the tile's regime and data derive from (seed, tile). */
  readonly seed: number;
  /** Tile name or index. */
  readonly tile: string | number;
  readonly windows: number;
  /** Samples per signal per window (default 32). */
  readonly windowSamples?: number;
  /** Overrides the tile's derived failure rate (e.g. for a balanced test set). */
  readonly failureRate?: number;
}

function hash32(text: string): number {
  // FNV-1a: a stable tile → seed mapping.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

function gaussian(rng: SeededRng): number {
  // Box–Muller; 1 − u avoids log(0).
  const u = 1 - rng.nextFloat();
  const v = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** The regime of a tile, derived from (seed, tile). */
export function tileRegime(seed: number, tile: string | number): TileRegime {
  const rng = new SeededRng((hash32(String(tile)) ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0);
  return {
    ambientC: 10 + 35 * rng.nextFloat(),
    load: 0.3 + 0.7 * rng.nextFloat(),
    nominalFlowLpm: 80 + 170 * rng.nextFloat(),
    vibrationFloorG: 0.05 + 0.25 * rng.nextFloat(),
    // Skewed: most tiles rarely fail, a few fail often.
    failureRate: 0.03 + 0.4 * rng.nextFloat() ** 2,
  };
}

/** Scale constants that map each feature to roughly unit range. */
const CENTER = [45, 55, 0, 0.6, 1.6, 4, 3, 0.9, 0.06, 0.8, 0.65, 20];
const SCALE = [20, 22, 0.3, 0.5, 1.2, 4, 1.5, 0.15, 0.05, 0.2, 0.2, 12];

function windowFeatures(
  rng: SeededRng,
  r: TileRegime,
  failing: boolean,
  m: number,
  out: Float32Array,
  off: number,
): void {
  const severity = failing ? 0.05 + 0.95 * rng.nextFloat() ** 1.5 : 0;
  const burst = rng.nextFloat() < 0.15 ? 1 + 1.5 * rng.nextFloat() : 1;
  const load = Math.min(1, Math.max(0.1, r.load + 0.1 * gaussian(rng)));
  const base = r.ambientC + 20 * load + 3 * severity + 2 * gaussian(rng);
  const drift = severity * (0.02 + 0.08 * rng.nextFloat());
  let tSum = 0;
  let tMax = Number.NEGATIVE_INFINITY;
  let sxy = 0;
  let vSq = 0;
  let vPeak = 0;
  let v4 = 0;
  let fSum = 0;
  let fSq = 0;
  let fMin = Number.POSITIVE_INFINITY;
  const flowLoss = severity * (0.02 + 0.08 * rng.nextFloat());
  for (let s = 0; s < m; s++) {
    const temp = base + drift * s + 1.2 * gaussian(rng);
    tSum += temp;
    tMax = Math.max(tMax, temp);
    sxy += (s - (m - 1) / 2) * temp;
    const spike =
      failing && rng.nextFloat() < 0.02 + 0.08 * severity
        ? (1.5 + 2 * severity) * gaussian(rng)
        : 0;
    const vib =
      r.vibrationFloorG * (1 + 1.5 * load) * (1 + 0.5 * severity) * burst * gaussian(rng) +
      spike * r.vibrationFloorG * 3;
    vSq += vib * vib;
    v4 += vib ** 4;
    vPeak = Math.max(vPeak, Math.abs(vib));
    const flow =
      r.nominalFlowLpm * (1 - flowLoss) * (0.9 + 0.1 * load) * (1 + 0.03 * gaussian(rng) * burst);
    fSum += flow;
    fSq += flow * flow;
    fMin = Math.min(fMin, flow);
  }
  const tMean = tSum / m;
  const sxx = (m * (m * m - 1)) / 12;
  const vRms = Math.sqrt(vSq / m);
  const fMean = fSum / m;
  const raw = [
    tMean,
    tMax,
    sxx > 0 ? sxy / sxx : 0,
    vRms,
    vPeak,
    vRms > 0 ? v4 / m / vRms ** 4 : 0,
    vRms > 0 ? vPeak / vRms : 0,
    fMean / r.nominalFlowLpm,
    Math.sqrt(Math.max(0, fSq / m - fMean * fMean)) / r.nominalFlowLpm,
    fMin / r.nominalFlowLpm,
    load,
    tMean - r.ambientC,
  ];
  for (let i = 0; i < raw.length; i++)
    out[off + i] = ((raw[i] as number) - (CENTER[i] as number)) / (SCALE[i] as number);
}

/**
 * Generates one tile's dataset: `windows` rows of {@link PDM_FEATURES}, label 1 = failure within
 * the horizon. Deterministic in (seed, tile, windows, windowSamples).
 * @throws {LearnError} `LEARN_BAD_CONFIG` for out-of-range sizes.
 */
export function generateTileData(options: PdmOptions): Dataset & { readonly regime: TileRegime } {
  const m = options.windowSamples ?? 32;
  if (
    !Number.isInteger(options.windows) ||
    options.windows < 0 ||
    options.windows > PDM_WINDOWS_MAX
  ) {
    throw new LearnError(LearnErrorCode.BadConfig, `windows must be in [0, ${PDM_WINDOWS_MAX}]`, {
      details: { field: 'windows' },
    });
  }
  if (!Number.isInteger(m) || m < 4 || m > PDM_WINDOW_SAMPLES_MAX) {
    throw new LearnError(
      LearnErrorCode.BadConfig,
      `windowSamples must be in [4, ${PDM_WINDOW_SAMPLES_MAX}]`,
      { details: { field: 'windowSamples' } },
    );
  }
  const derived = tileRegime(options.seed, options.tile);
  const regime =
    options.failureRate === undefined ? derived : { ...derived, failureRate: options.failureRate };
  const rng = new SeededRng((hash32(`data:${options.tile}`) ^ (options.seed >>> 0)) >>> 0);
  const d = PDM_FEATURES.length;
  const x = new Float32Array(options.windows * d);
  const y = new Float32Array(options.windows);
  for (let w = 0; w < options.windows; w++) {
    const failing = rng.nextFloat() < regime.failureRate;
    y[w] = failing ? 1 : 0;
    windowFeatures(rng, regime, failing, m, x, w * d);
  }
  return { n: options.windows, d, x, y, regime };
}

/** Concatenates datasets with the same feature count. */
export function concatDatasets(parts: readonly Dataset[]): Dataset {
  const d = parts[0]?.d ?? PDM_FEATURES.length;
  let n = 0;
  for (const p of parts) {
    if (p.d !== d)
      throw new LearnError(
        LearnErrorCode.BadConfig,
        `cannot concatenate datasets with ${p.d} and ${d} features`,
      );
    n += p.n;
  }
  const x = new Float32Array(n * d);
  const y = new Float32Array(n);
  let off = 0;
  for (const p of parts) {
    x.set(p.x.subarray(0, p.n * d), off * d);
    y.set(p.y.subarray(0, p.n), off);
    off += p.n;
  }
  return { n, d, x, y };
}
