/**
 * Client-level DP-FedAvg (McMahan, Ramage, Talwar, Zhang 2018, "Learning Differentially Private
 * Recurrent Language Models", Algorithm 1): each client's model delta is clipped to L2 norm C,
 * the clipped deltas are averaged with uniform weights, and Gaussian noise N(0, (zC)²) is added
 * to their sum — at the aggregator (central) or as shares added by each client before secure
 * aggregation (distributed: the masks hide each share, only the sum's noise remains).
 *
 * Adaptive clipping follows Andrew, Thakkar, McMahan, Ramaswamy 2021 ("Differentially Private
 * Learning with Adaptive Clipping", Algorithm 1): clients report whether their delta fit under C,
 * the server estimates the fraction with noise σ_b, and updates C ← C·exp(−η_C(b̃ − γ)). The
 * noise of the delta sum is raised to z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) (their Theorem 1) so that
 * the two releases together cost the same as one Gaussian release at multiplier z.
 */
import type { Rng } from '../../core/index.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';

/** Largest clipping norm. */
export const CLIP_NORM_MAX = 1e6;

/** L2 norm of a vector, accumulated in float64. */
export function l2Norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] as number) * (v[i] as number);
  return Math.sqrt(s);
}

/** Scales `v` in place so that ‖v‖₂ ≤ clip; returns the norm before clipping. */
export function clipL2(v: Float32Array, clip: number): number {
  const norm = l2Norm(v);
  if (norm > clip && norm > 0) {
    const f = clip / norm;
    for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) * f;
  }
  return norm;
}

/** A standard normal sample (Box–Muller) from an injected rng. */
export function gaussian(rng: Rng): number {
  const u = 1 - rng.nextFloat();
  const v = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * Adds N(0, std²) to every coordinate of `v` in place. Box–Muller gives two independent normals
 * per (u, v) pair (r·cos θ and r·sin θ); both are used, which halves the logarithms, square
 * roots and random draws (a client's 10^4-coordinate noise share was ~5 ms with one per pair).
 */
export function addGaussianNoise(v: Float32Array, std: number, rng: Rng): Float32Array {
  if (std <= 0) return v;
  const n = v.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const r = std * Math.sqrt(-2 * Math.log(1 - rng.nextFloat()));
    const theta = 2 * Math.PI * rng.nextFloat();
    v[i] = (v[i] as number) + r * Math.cos(theta);
    v[i + 1] = (v[i + 1] as number) + r * Math.sin(theta);
  }
  if (i < n) v[i] = (v[i] as number) + std * gaussian(rng);
  return v;
}

/** Where the Gaussian noise is added. */
export type NoisePlacement = 'central' | 'distributed';

/** Configuration of {@link DpFedAvg}. */
export interface DpConfig {
  /** Noise multiplier z (σ of the sum = z·C). */
  readonly noiseMultiplier: number;
  /** Initial clipping norm C. */
  readonly clipNorm: number;
  /** Adaptive clipping (Andrew et al. 2021); fixed clipping when absent. */
  readonly adaptive?: {
    /** Target quantile γ of update norms (default 0.5). */
    readonly targetQuantile?: number;
    /** Learning rate η_C of the geometric update (default 0.2). */
    readonly lr?: number;
    /** Noise σ_b of the clipped-count estimate, in counts (default expected clients / 20). */
    readonly countStd?: number;
  };
  readonly placement: NoisePlacement;
}

/** Per-round DP bookkeeping: clipping norm, noise multipliers, clipped fraction. */
export class DpFedAvg {
  private clip: number;
  private lastUnclippedFraction = Number.NaN;

  constructor(readonly config: DpConfig) {
    if (!(config.noiseMultiplier >= 0 && Number.isFinite(config.noiseMultiplier))) {
      throw new LearnError(LearnErrorCode.BadConfig, 'noiseMultiplier must be ≥ 0', {
        details: { field: 'noiseMultiplier' },
      });
    }
    if (!(config.clipNorm > 0 && config.clipNorm <= CLIP_NORM_MAX)) {
      throw new LearnError(LearnErrorCode.BadConfig, `clipNorm must be in (0, ${CLIP_NORM_MAX}]`, {
        details: { field: 'clipNorm' },
      });
    }
    this.clip = config.clipNorm;
  }

  /** The clipping norm for the current round. */
  get clipNorm(): number {
    return this.clip;
  }

  /** Fraction of last round's deltas that were under the clip (before noise). */
  get unclippedFraction(): number {
    return this.lastUnclippedFraction;
  }

  /** σ_b for `expectedClients` clients per round. */
  countStd(expectedClients: number): number {
    return this.config.adaptive?.countStd ?? Math.max(1, expectedClients / 20);
  }

  /**
   * The noise multiplier applied to the delta sum: z itself for fixed clipping, z_Δ for
   * adaptive clipping (Andrew et al. 2021, Theorem 1).
   * @throws {LearnError} `LEARN_BAD_CONFIG` when σ_b is too small for z (z_Δ undefined).
   */
  deltaNoiseMultiplier(expectedClients: number): number {
    const z = this.config.noiseMultiplier;
    if (this.config.adaptive === undefined || z === 0) return z;
    const sb = this.countStd(expectedClients);
    const inner = z ** -2 - (2 * sb) ** -2;
    if (!(inner > 0)) {
      throw new LearnError(
        LearnErrorCode.BadConfig,
        `adaptive clipping: count noise σ_b=${sb} too small for z=${z} (need σ_b > z/2)`,
        { details: { z, sb } },
      );
    }
    return inner ** -0.5;
  }

  /** Clips a delta in place; returns whether it was already within the clip (b_i). */
  clipDelta(delta: Float32Array): boolean {
    return clipL2(delta, this.clip) <= this.clip;
  }

  /** Std of the Gaussian noise on the delta *sum*. */
  sumNoiseStd(expectedClients: number): number {
    return this.deltaNoiseMultiplier(expectedClients) * this.clip;
  }

  /**
   * Std of each client's share of distributed noise, so that the sum over `expectedSurvivors`
   * clients has the std of {@link sumNoiseStd} (independent Gaussians add in variance).
   */
  clientNoiseStd(expectedClients: number, expectedSurvivors: number): number {
    return this.sumNoiseStd(expectedClients) / Math.sqrt(Math.max(1, expectedSurvivors));
  }

  /**
   * Updates C from the clients' bits b_i (Andrew et al. 2021, Algorithm 1, lines 10–11).
   * @returns the noisy fraction b̃ used.
   */
  updateClip(unclipped: number, clients: number, expectedClients: number, rng: Rng): number {
    this.lastUnclippedFraction = clients === 0 ? Number.NaN : unclipped / clients;
    const a = this.config.adaptive;
    if (a === undefined || clients === 0) return this.lastUnclippedFraction;
    const noisy =
      (unclipped + this.countStd(expectedClients) * gaussian(rng)) / Math.max(1, expectedClients);
    const gamma = a.targetQuantile ?? 0.5;
    this.clip = Math.min(CLIP_NORM_MAX, this.clip * Math.exp(-(a.lr ?? 0.2) * (noisy - gamma)));
    return noisy;
  }
}
