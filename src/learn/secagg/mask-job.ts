/**
 * Mask jobs: a batch of PRG masks to add into one accumulator, expanded on several threads.
 *
 * Why: regenerating masks is the dominant cost of secure aggregation. A client adds about k + 1
 * keystreams of the vector's length; a server whose clients dropped rebuilds one keystream per
 * (dropped, surviving neighbour) pair — 52,500 keystreams of 400 KB for 500 clients at 30%
 * dropout. Each mask is independent and addition mod 2^32 commutes, so the masks are split over
 * the calling thread and the worker pool (pool.ts), each thread summing its share into its own
 * accumulator; the partial sums are then added. The result is bit-identical whatever the split
 * (tests compare it with the single-threaded path).
 */
import { assert } from '../../core/index.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { x25519SharedRaw } from './keys.ts';
import { SECAGG_KEY_BYTES, SECAGG_MASK_THREADS_MAX, SECAGG_PARALLEL_WORDS_MIN } from './limits.ts';
import { type PoolJobOptions, type PoolJobStats, poolThreadsFor, runPoolJob } from './pool.ts';
import { type MaskAccumulator, pairwiseSeed } from './prg.ts';

/** Int32 fields per pair task: private-key index, public-key index, own id, peer id, sign. */
const PAIR_FIELDS = 5;

/**
 * A batch of masks to add to (sign +1) or subtract from (sign −1) one accumulator:
 * - whole seeds: PRG(seed) (self masks b_u);
 * - pairs: PRG(pairwiseSeed(X25519(private, public), session, own, peer)) (pairwise masks).
 */
export interface MaskJob {
  readonly sessionId: Uint8Array;
  /** PRG seeds, {@link SECAGG_KEY_BYTES} bytes each. */
  readonly seeds: Uint8Array;
  /** One sign (+1 / −1) per seed. */
  readonly seedSigns: Int8Array;
  /** X25519 private keys (raw d), 32 bytes each. */
  readonly privates: Uint8Array;
  /** X25519 public keys, 32 bytes each. */
  readonly publics: Uint8Array;
  /** Pair tasks, 5 int32 each: private index, public index, own id, peer id, sign. */
  readonly pairs: Int32Array;
}

/** Builds a {@link MaskJob} task by task. */
export class MaskJobBuilder {
  private readonly seeds: Uint8Array[] = [];
  private readonly seedSigns: number[] = [];
  private readonly privates: Uint8Array[] = [];
  private readonly publics: Uint8Array[] = [];
  private readonly publicIndex = new Map<number, number>();
  private readonly pairs: number[] = [];

  constructor(private readonly sessionId: Uint8Array) {}

  /** Adds PRG(seed) with `sign` (the seed is copied). */
  addSeed(seed: Uint8Array, sign: 1 | -1): void {
    assert(seed.length === SECAGG_KEY_BYTES, 'PRG seed is 32 bytes');
    this.seeds.push(Uint8Array.from(seed));
    this.seedSigns.push(sign);
  }

  /** Registers a raw X25519 private key; returns its index for {@link addPair}. */
  addPrivate(d: Uint8Array): number {
    assert(d.length === SECAGG_KEY_BYTES, 'X25519 key');
    this.privates.push(Uint8Array.from(d));
    return this.privates.length - 1;
  }

  /**
   * Registers client `id`'s public key once; returns its index for {@link addPair}.
   * @throws {SecAggError} SECAGG_MALFORMED when it is not 32 bytes.
   */
  addPublic(id: number, publicRaw: Uint8Array): number {
    let i = this.publicIndex.get(id);
    if (i === undefined) {
      // Peers' keys come off the wire: a bad one is bad input, as in x25519Shared.
      if (!(publicRaw instanceof Uint8Array) || publicRaw.length !== SECAGG_KEY_BYTES)
        throw new SecAggError(SecAggErrorCode.Malformed, `public key of client ${id} is invalid`, {
          details: { id },
        });
      this.publics.push(publicRaw);
      i = this.publics.length - 1;
      this.publicIndex.set(id, i);
    }
    return i;
  }

  /** Adds the pairwise mask between `own` (private key `priv`) and `peer` (public key `pub`). */
  addPair(priv: number, pub: number, own: number, peer: number, sign: 1 | -1): void {
    this.pairs.push(priv, pub, own, peer, sign);
  }

  /** Number of masks so far. */
  get size(): number {
    return this.seeds.length + this.pairs.length / PAIR_FIELDS;
  }

  build(): MaskJob {
    const cat = (parts: Uint8Array[], each: number): Uint8Array => {
      const out = new Uint8Array(parts.length * each);
      for (let i = 0; i < parts.length; i++) out.set(parts[i] as Uint8Array, i * each);
      return out;
    };
    const job: MaskJob = {
      // A copy: posting a view to a worker would clone its whole underlying buffer.
      sessionId: Uint8Array.from(this.sessionId),
      seeds: cat(this.seeds, SECAGG_KEY_BYTES),
      seedSigns: Int8Array.from(this.seedSigns),
      privates: cat(this.privates, SECAGG_KEY_BYTES),
      publics: cat(this.publics, SECAGG_KEY_BYTES),
      pairs: Int32Array.from(this.pairs),
    };
    for (const s of this.seeds) s.fill(0);
    for (const k of this.privates) k.fill(0);
    return job;
  }
}

/** Zeroes the secrets of a job (seeds and private keys) once it has run. */
export function wipeMaskJob(job: MaskJob): void {
  job.seeds.fill(0);
  job.privates.fill(0);
}

function taskCount(job: MaskJob): number {
  return job.seedSigns.length + job.pairs.length / PAIR_FIELDS;
}

/**
 * The threads a mask job of `tasks` keystreams of `words` words gets: `requested` if given
 * (clamped to [1, {@link SECAGG_MASK_THREADS_MAX}]), else one per core when the job is large
 * enough ({@link SECAGG_PARALLEL_WORDS_MIN}) to repay the hand-off.
 */
export function maskThreadsFor(tasks: number, words: number, requested?: number): number {
  return poolThreadsFor(tasks * words >= SECAGG_PARALLEL_WORDS_MIN, requested);
}

/** Runs tasks on the calling thread (the same bytes as a pool worker's `mask` handler). */
class InlineRunner {
  constructor(
    private readonly acc: MaskAccumulator,
    private readonly job: MaskJob,
  ) {}

  run(i: number): void {
    const { job } = this;
    const nSeeds = job.seedSigns.length;
    if (i < nSeeds) {
      const seed = job.seeds.subarray(i * SECAGG_KEY_BYTES, (i + 1) * SECAGG_KEY_BYTES);
      this.acc.applyPrg(seed, job.seedSigns[i] === -1 ? -1 : 1);
      return;
    }
    const p = (i - nSeeds) * PAIR_FIELDS;
    const pr = job.pairs[p] as number;
    const pu = job.pairs[p + 1] as number;
    const shared = x25519SharedRaw(
      job.privates.subarray(pr * SECAGG_KEY_BYTES, (pr + 1) * SECAGG_KEY_BYTES),
      job.publics.subarray(pu * SECAGG_KEY_BYTES, (pu + 1) * SECAGG_KEY_BYTES),
    );
    const seed = pairwiseSeed(
      shared,
      job.sessionId,
      job.pairs[p + 2] as number,
      job.pairs[p + 3] as number,
    );
    shared.fill(0);
    this.acc.applyPrg(seed, job.pairs[p + 4] === -1 ? -1 : 1);
    seed.fill(0);
  }
}

/** What {@link runMaskJob} did: masks summed by pool workers, and masks the caller redid for failed workers. */
export type MaskJobStats = PoolJobStats;

/** Options of {@link runMaskJob} (see {@link PoolJobOptions}). */
export type MaskJobOptions = PoolJobOptions;

/**
 * Adds every mask of `job` into `acc`, on `threads` threads (the caller plus `threads − 1` pool
 * workers). The result does not depend on `threads`.
 * @throws {SecAggError} SECAGG_MALFORMED when a public key is invalid (as the single-threaded path).
 */
export function runMaskJob(
  acc: MaskAccumulator,
  job: MaskJob,
  threads = 1,
  options: MaskJobOptions = {},
): MaskJobStats {
  const words = acc.words;
  const inline = new InlineRunner(acc, job);
  // Sized only when workers take part: each leaves its partial sum in its own slot.
  const workers = Math.max(0, Math.min(threads, SECAGG_MASK_THREADS_MAX) - 1);
  const results = workers > 0 ? new SharedArrayBuffer(4 * words * workers) : undefined;
  return runPoolJob(
    {
      kind: 'mask',
      tasks: taskCount(job),
      payload: {
        words,
        results,
        sessionId: job.sessionId,
        seeds: job.seeds,
        seedSigns: job.seedSigns,
        privates: job.privates,
        publics: job.publics,
        pairs: job.pairs,
      },
      runInline: (i) => inline.run(i),
      collect: (slot) => {
        acc.addVector(new Uint32Array(results as SharedArrayBuffer, slot * words * 4, words));
      },
    },
    threads,
    options,
  );
}
