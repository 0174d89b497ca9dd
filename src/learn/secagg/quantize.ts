/**
 * Fixed-point quantization as Flower's SecAgg+ does it (flwr.common.secure_aggregation.quantization):
 * clip to [−c, c], map linearly onto [0, L−1] with stochastic rounding (unbiased), add modulo
 * 2^32. Each client uploads [w, w·x] with w = weight / maxWeight, so the unmasked sum holds Σw
 * and Σw·x and their ratio is the weighted mean. The sum of n quantized values cannot wrap as
 * long as n·(L−1) < 2^32, which {@link checkQuantization} enforces.
 */
import type { Rng } from '../../core/index.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { SECAGG_MODULUS, SECAGG_QUANTIZATION_LEVELS_DEFAULT } from './limits.ts';

/** Default levels for n clients: Flower's 2^22, reduced so that n·(L−1) < 2^32. */
export function quantizationLevelsFor(n: number): number {
  return Math.min(
    SECAGG_QUANTIZATION_LEVELS_DEFAULT,
    Math.floor((SECAGG_MODULUS - 1) / Math.max(1, n)) + 1,
  );
}

/**
 * Checks that a sum of n values quantized to `levels` levels fits in 32 bits.
 * @throws {SecAggError} SECAGG_QUANTIZATION_OVERFLOW or SECAGG_BAD_CONFIG.
 */
export function checkQuantization(n: number, levels: number, clipRange: number): void {
  if (!Number.isInteger(levels) || levels < 2) {
    throw new SecAggError(
      SecAggErrorCode.BadConfig,
      `quantization levels ${levels} must be an integer ≥ 2`,
      { details: { field: 'quantizationLevels' } },
    );
  }
  if (!(clipRange > 0) || !Number.isFinite(clipRange)) {
    throw new SecAggError(
      SecAggErrorCode.BadConfig,
      `clip range ${clipRange} must be finite and > 0`,
      { details: { field: 'clipRange' } },
    );
  }
  if (n * (levels - 1) >= SECAGG_MODULUS) {
    throw new SecAggError(
      SecAggErrorCode.QuantizationOverflow,
      `${n} clients × ${levels - 1} levels overflow 2^32; use ≤ ${quantizationLevelsFor(n)} levels`,
      {
        details: { n, levels },
      },
    );
  }
}

/**
 * Quantizes `values` (clipped to [−c, c]) into `out[offset…]` with stochastic rounding.
 * @throws {SecAggError} SECAGG_MALFORMED on NaN or ±Infinity.
 */
export function quantizeInto(
  values: Float32Array,
  out: Uint32Array,
  offset: number,
  clipRange: number,
  levels: number,
  rng: Rng,
): void {
  const scale = (levels - 1) / (2 * clipRange);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v)) {
      throw new SecAggError(SecAggErrorCode.Malformed, `non-finite value at index ${i}`, {
        details: { index: i },
      });
    }
    const c = Math.min(clipRange, Math.max(-clipRange, v));
    const pre = (c + clipRange) * scale;
    const floor = Math.floor(pre);
    // Round up with probability equal to the fractional part: E[q] = pre (unbiased).
    const q = rng.nextFloat() < pre - floor ? floor + 1 : floor;
    out[offset + i] = Math.min(levels - 1, q);
  }
}

/** Reverses {@link quantizeInto} for a sum of `count` quantized vectors: Σx = Q/scale − count·c. */
export function dequantizeSum(
  sum: Uint32Array,
  count: number,
  clipRange: number,
  levels: number,
): Float64Array {
  const scale = (levels - 1) / (2 * clipRange);
  const out = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) out[i] = (sum[i] as number) / scale - count * clipRange;
  return out;
}

/** Options of {@link encodeWeightedUpdate}. */
export interface WeightedUpdateOptions {
  readonly weight: number;
  readonly maxWeight: number;
  readonly clipRange: number;
  readonly levels: number;
  readonly rng: Rng;
  /** Distributed-DP hook applied to the clipped w·x before quantization. */
  readonly noise?: (scaled: Float32Array) => Float32Array;
}

/**
 * Builds the vector a client masks: [w, w·x] quantized, w = weight/maxWeight ∈ (0, 1] (Flower
 * multiplies by the same ratio so every coordinate stays inside the clip range).
 * @throws {SecAggError} SECAGG_BAD_CONFIG for a weight outside (0, maxWeight]; SECAGG_MALFORMED on non-finite values.
 */
export function encodeWeightedUpdate(
  update: Float32Array,
  options: WeightedUpdateOptions,
): Uint32Array {
  const { weight, maxWeight, clipRange, levels, rng } = options;
  if (!(weight > 0) || !(weight <= maxWeight) || !Number.isFinite(maxWeight)) {
    throw new SecAggError(SecAggErrorCode.BadConfig, `weight ${weight} not in (0, ${maxWeight}]`, {
      details: { field: 'weights' },
    });
  }
  const ratio = weight / maxWeight;
  let scaled: Float32Array = new Float32Array(update.length);
  for (let i = 0; i < update.length; i++) {
    const v = (update[i] as number) * ratio;
    if (!Number.isFinite(v))
      throw new SecAggError(SecAggErrorCode.Malformed, `non-finite update value at index ${i}`, {
        details: { index: i },
      });
    scaled[i] = Math.min(clipRange, Math.max(-clipRange, v));
  }
  if (options.noise !== undefined) {
    scaled = options.noise(scaled);
    if (scaled.length !== update.length) {
      throw new SecAggError(SecAggErrorCode.BadConfig, 'noise hook changed the vector length', {
        details: { field: 'noise' },
      });
    }
  }
  const out = new Uint32Array(update.length + 1);
  quantizeInto(Float32Array.of(ratio), out, 0, clipRange, levels, rng);
  quantizeInto(scaled, out, 1, clipRange, levels, rng);
  return out;
}
