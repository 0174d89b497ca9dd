/**
 * The public types of secure aggregation: options and result of `secureAggregate`, modes,
 * stages, threat model. Re-exported by the door `index.ts`.
 */
import type { Rng } from '../../core/index.ts';
import type { SecAggError } from './errors.ts';

/** `'full'`: Bonawitz et al. 2017 (every client shares with every other). `'plus'`: SecAgg+ (a random k-regular neighbourhood). */
export type SecAggMode = 'full' | 'plus';

/** Share-channel key agreement: X25519 (default) or the trust layer's X25519+ML-KEM-768 hybrid KEM. */
export type SecAggChannel = 'x25519' | 'hybrid-kem';

/**
 * Protocol stages, in order (Bonawitz et al. 2017, Fig. 4, rounds 0–4). A client that drops "at"
 * a stage never sends its message of that stage, nor anything later.
 */
export type SecAggStage = 'advertise' | 'share' | 'masked-input' | 'consistency' | 'unmask';

/** The stages in protocol order; index = Bonawitz round number. */
export const SECAGG_STAGES: readonly SecAggStage[] = [
  'advertise',
  'share',
  'masked-input',
  'consistency',
  'unmask',
];

/**
 * Security/correctness targets from which the threshold `t` and (in SecAgg+) the neighbourhood
 * degree `k` are chosen; see {@link chooseSecAggParams} and docs/learn-secagg.md.
 */
export interface SecAggThreatModel {
  /** Expected fraction of clients that drop out during the round (0 ≤ δ < 1). Default 0.1. */
  readonly dropoutRate?: number;
  /** Fraction of clients that may collude with the server (0 ≤ γ < 1). Default 0.05. */
  readonly corruptFraction?: number;
  /** The adversary learns something about an honest input with probability ≤ 2^-securityBits. Default 40. */
  readonly securityBits?: number;
  /** The round fails (aborts) for lack of shares with probability ≤ 2^-correctnessBits. Default 20. */
  readonly correctnessBits?: number;
}

/**
 * Distributed differential-privacy hook: called once per client on the vector that will be
 * quantized (the client's `w·params`, already clipped, without the leading weight coordinate),
 * before masking. Return the noised vector (same length; may be the same array mutated). The
 * noise of each client is hidden by the masks and only the sum's noise remains.
 */
export type SecAggNoiseHook = (scaled: Float32Array, clientIndex: number, rng: Rng) => Float32Array;

/** Options of {@link secureAggregate}. */
export interface SecureAggregateOptions {
  /** One update per client, all of the same length (the model's parameter vector or delta). */
  readonly updates: readonly Float32Array[];
  /** One positive weight per client (its example count); the result is the weighted mean. */
  readonly weights: readonly number[];
  /** Optional client ids, reported in `survivors`/`dropped`; default `"c0"`, `"c1"`, .... */
  readonly clientIds?: readonly string[];
  /** Protocol: Bonawitz 2017 (`'full'`) or SecAgg+ (`'plus'`). */
  readonly mode: SecAggMode;
  /**
   * Which clients vanish, and at which stage (client index → stage). Clients not listed survive.
   * Used by the simulator to exercise every recovery path.
   */
  readonly dropouts?: ReadonlyMap<number, SecAggStage>;
  /** Randomness for keys, seeds, shares and stochastic rounding (a CryptoRng outside tests). */
  readonly rng: Rng;
  /** Values are clipped to [-clipRange, clipRange] before quantization (Flower: 8). Default 8. */
  readonly clipRange?: number;
  /**
   * Quantization levels (Flower: 2^22). Must satisfy n·(levels−1) < 2^32 so the sum cannot wrap;
   * when omitted, min(2^22, ⌊2^32/n⌋) is used.
   */
  readonly quantizationLevels?: number;
  /** Largest weight any client may have (Flower's MAX_WEIGHT); default max(weights). */
  readonly maxWeight?: number;
  /** Shamir threshold t; default chosen from `threat` (see {@link chooseSecAggParams}). */
  readonly threshold?: number;
  /** SecAgg+ neighbourhood degree k (even); default chosen from `threat`. Ignored in `'full'`. */
  readonly neighbours?: number;
  /** Targets for the default `threshold`/`neighbours`. */
  readonly threat?: SecAggThreatModel;
  /** Distributed DP noise, added by each client before masking. */
  readonly noise?: SecAggNoiseHook;
  /** Share-encryption channel; default `'x25519'` (see docs/learn-secagg.md for the cost of `'hybrid-kem'`). */
  readonly channel?: SecAggChannel;
  /** Session id (binds keys, masks and signatures to this round); default random. */
  readonly sessionId?: Uint8Array;
}

/** Timings and counters of one {@link secureAggregate} call. */
export interface SecAggStats {
  /** Clients at the start. */
  readonly n: number;
  /** Shamir threshold used. */
  readonly threshold: number;
  /** Neighbourhood size (n−1 in `'full'`). */
  readonly neighbours: number;
  /** Vector length sent by each client (params + 1 for the weight coordinate). */
  readonly vectorLength: number;
  /** Quantization levels used. */
  readonly quantizationLevels: number;
  /** Total server CPU time over all rounds, ms. */
  readonly serverMs: number;
  /** Server time spent in the unmasking round (mask regeneration for dropouts), ms. */
  readonly serverUnmaskMs: number;
  /** Mean per-client CPU time over all rounds, ms. */
  readonly clientMsMean: number;
  /** Largest per-client CPU time, ms. */
  readonly clientMsMax: number;
  /** Pairwise masks the server regenerated for dropped clients. */
  readonly pairMasksRecovered: number;
  /** Self masks the server removed. */
  readonly selfMasksRemoved: number;
  /** Dropped clients by the stage at which they vanished. */
  readonly droppedByStage: Readonly<Record<SecAggStage, number>>;
  /** Messages the server rejected (malformed, replayed, duplicate, unknown sender), by error code. */
  readonly rejected: Readonly<Record<string, number>>;
}

/** Result of {@link secureAggregate}. */
export interface SecureAggregateResult {
  /** Σ w_i·x_i / Σ w_i over the survivors (after dequantization); empty when `aborted`. */
  readonly weightedMean: Float32Array;
  /** Σ w_i over the survivors, as recovered from the weight coordinate (quantized; ≈ exact). */
  readonly totalWeight: number;
  /** Ids of clients whose input is in the sum. */
  readonly survivors: readonly string[];
  /** Ids of clients whose input is not in the sum. */
  readonly dropped: readonly string[];
  /** Set when the round could not complete (too many dropouts, consistency failure). */
  readonly aborted?: SecAggError;
  /** Timings and counters. */
  readonly stats: SecAggStats;
}
