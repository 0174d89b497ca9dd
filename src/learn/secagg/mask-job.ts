/**
 * Mask jobs: a batch of PRG masks to add into one accumulator, expanded on several threads.
 *
 * Why: regenerating masks is the dominant cost of secure aggregation. A client adds about k + 1
 * keystreams of the vector's length; a server whose clients dropped rebuilds one keystream per
 * (dropped, surviving neighbour) pair — 52,500 keystreams of 400 KB for 500 clients at 30%
 * dropout. Each mask is independent and addition mod 2^32 commutes, so the masks are split over
 * the calling thread and a small pool of worker threads, each summing its share into its own
 * accumulator; the partial sums are then added. The result is bit-identical whatever the split
 * (tests compare it with the single-threaded path).
 *
 * Scheduling is dynamic: every thread claims the next task with an atomic counter on a
 * SharedArrayBuffer, so a thread slowed by other load simply claims fewer tasks. The caller
 * blocks with Atomics.wait, which keeps `SecAggServer.closeUnmask()` and
 * `SecAggClient.maskInput()` synchronous (their signatures do not change). Workers that have not
 * started when the caller runs out of tasks are closed out of the job with a compare-and-swap; a
 * worker that fails or stalls has its tasks recomputed by the caller, so a broken worker costs
 * time, never correctness.
 *
 * The worker is a small self-contained CommonJS script (no TypeScript loader needed, so it
 * boots in tens of milliseconds in any runner). It repeats two definitions of prg.ts — AES-128-
 * CTR keystream words and the hashed-DH pair seed — and the tests check that its sums equal the
 * main-thread path bit for bit.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { assert } from '../../core/index.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { x25519PrivateFromRaw, x25519PublicKeyObject, x25519Shared } from './keys.ts';
import {
  SECAGG_KEY_BYTES,
  SECAGG_MASK_THREADS_MAX,
  SECAGG_MASK_WORKER_STALL_MS,
  SECAGG_PARALLEL_WORDS_MIN,
  SECAGG_PRG_CHUNK_BYTES,
} from './limits.ts';
import {
  type MaskAccumulator,
  maskAddWasmModule,
  PAIR_SEED_LABEL,
  pairwiseSeed,
  SECAGG_WASM_PAGE_BYTES,
} from './prg.ts';

/** Int32 fields per pair task: private-key index, public-key index, own id, peer id, sign. */
const PAIR_FIELDS = 5;
/** Control block: [next task, unused × 3, then per worker: state, tasks done]. */
const CTL_HEADER = 4;
const STATE_IDLE = 0;
const STATE_RUNNING = 1;
const STATE_DONE = 2;
const STATE_ERROR = 3;
const STATE_CLOSED = 4;
/** Owner tag of tasks run by the calling thread (workers are 2 + slot; 0 = unclaimed). */
const OWNER_CALLER = 1;

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
  /** X25519 private keys, 64 bytes each: raw d ‖ raw public key (the JWK import needs both). */
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

  /** Registers a private key (raw d and its public key); returns its index for {@link addPair}. */
  addPrivate(d: Uint8Array, publicRaw: Uint8Array): number {
    assert(d.length === SECAGG_KEY_BYTES && publicRaw.length === SECAGG_KEY_BYTES, 'X25519 key');
    const k = new Uint8Array(2 * SECAGG_KEY_BYTES);
    k.set(d, 0);
    k.set(publicRaw, SECAGG_KEY_BYTES);
    this.privates.push(k);
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
      privates: cat(this.privates, 2 * SECAGG_KEY_BYTES),
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
  if (requested !== undefined) {
    assert(Number.isInteger(requested) && requested >= 1, 'mask threads is a positive integer');
    return Math.min(requested, SECAGG_MASK_THREADS_MAX);
  }
  if (tasks * words < SECAGG_PARALLEL_WORDS_MIN) return 1;
  return Math.max(1, Math.min(availableParallelism(), SECAGG_MASK_THREADS_MAX));
}

/** Runs tasks on the calling thread, with key objects imported once per job. */
class InlineRunner {
  private readonly privates = new Map<number, ReturnType<typeof x25519PrivateFromRaw>>();
  private readonly publics = new Map<number, ReturnType<typeof x25519PublicKeyObject>>();
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
    let priv = this.privates.get(pr);
    if (priv === undefined) {
      const k = job.privates.subarray(pr * 2 * SECAGG_KEY_BYTES, (pr + 1) * 2 * SECAGG_KEY_BYTES);
      priv = x25519PrivateFromRaw(k.subarray(0, SECAGG_KEY_BYTES), k.subarray(SECAGG_KEY_BYTES));
      this.privates.set(pr, priv);
    }
    let pub = this.publics.get(pu);
    if (pub === undefined) {
      pub = x25519PublicKeyObject(
        job.publics.subarray(pu * SECAGG_KEY_BYTES, (pu + 1) * SECAGG_KEY_BYTES),
      );
      this.publics.set(pu, pub);
    }
    const shared = x25519Shared(priv, pub);
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

// The worker: claims tasks like the caller, sums them in its own wasm accumulator, copies the sum
// to its result slot, then flags DONE (or ERROR: the caller then redoes its tasks).
const WORKER_SOURCE = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createCipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman } = require('node:crypto');
const { wasmModule, chunkBytes, pageBytes, pairLabel } = workerData;
const ZERO = Buffer.alloc(chunkBytes);
const LABEL = Buffer.from(pairLabel, 'ascii');
let inst;
let bytes;
function prepare(words) {
  const scratch = Math.ceil((words * 4) / 16) * 16;
  const need = Math.ceil((scratch + chunkBytes) / pageBytes) * pageBytes;
  if (inst === undefined || inst.exports.memory.buffer.byteLength < need) {
    inst = new WebAssembly.Instance(wasmModule, {});
    const have = inst.exports.memory.buffer.byteLength;
    if (need > have) inst.exports.memory.grow((need - have) / pageBytes);
  }
  bytes = new Uint8Array(inst.exports.memory.buffer);
  bytes.fill(0, 0, scratch);
  return scratch;
}
function applyPrg(seed, sign, words, scratch) {
  const c = createCipheriv('aes-128-ctr', seed.subarray(0, 16), seed.subarray(16, 32));
  const op = sign === -1 ? inst.exports.sub : inst.exports.add;
  const chunkWords = chunkBytes / 4;
  for (let off = 0; off < words; off += chunkWords) {
    const n = Math.min(chunkWords, words - off);
    bytes.set(c.update(n === chunkWords ? ZERO : ZERO.subarray(0, n * 4)), scratch);
    op(off * 4, scratch, Math.ceil((n * 4) / 16) * 16);
  }
}
function b64(u8) { return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('base64url'); }
function run(job, ctl, slot) {
  const words = job.words;
  const scratch = prepare(words);
  const owner = new Int32Array(job.owner);
  const nSeeds = job.seedSigns.length;
  const n = nSeeds + job.pairs.length / 5;
  const privs = new Map();
  const pubs = new Map();
  const ids = Buffer.alloc(8);
  let done = 0;
  for (;;) {
    const i = Atomics.add(ctl, 0, 1);
    if (i >= n) break;
    Atomics.store(owner, i, 2 + slot);
    if (i < nSeeds) {
      applyPrg(job.seeds.subarray(32 * i, 32 * i + 32), job.seedSigns[i], words, scratch);
    } else {
      const p = 5 * (i - nSeeds);
      const pr = job.pairs[p];
      const pu = job.pairs[p + 1];
      let priv = privs.get(pr);
      if (priv === undefined) {
        const k = job.privates.subarray(64 * pr, 64 * pr + 64);
        priv = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(k.subarray(0, 32)), x: b64(k.subarray(32)) }, format: 'jwk' });
        privs.set(pr, priv);
      }
      let pub = pubs.get(pu);
      if (pub === undefined) {
        pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(job.publics.subarray(32 * pu, 32 * pu + 32)) }, format: 'jwk' });
        pubs.set(pu, pub);
      }
      const shared = diffieHellman({ privateKey: priv, publicKey: pub });
      const own = job.pairs[p + 2];
      const peer = job.pairs[p + 3];
      ids.writeUInt32BE(Math.min(own, peer), 0);
      ids.writeUInt32BE(Math.max(own, peer), 4);
      const seed = createHash('sha256').update(LABEL).update(job.sessionId).update(ids).update(shared).digest();
      shared.fill(0);
      applyPrg(seed, job.pairs[p + 4], words, scratch);
      seed.fill(0);
    }
    done++;
    Atomics.add(ctl, ${CTL_HEADER} + 2 * slot + 1, 1);
  }
  if (done > 0) new Uint8Array(job.results, slot * words * 4, words * 4).set(bytes.subarray(0, words * 4));
}
parentPort.on('message', (job) => {
  const ctl = new Int32Array(job.control);
  const state = ${CTL_HEADER} + 2 * job.slot;
  if (Atomics.compareExchange(ctl, state, ${STATE_IDLE}, ${STATE_RUNNING}) !== ${STATE_IDLE}) return;
  Atomics.notify(ctl, state);
  let outcome = ${STATE_DONE};
  try { run(job, ctl, job.slot); } catch { outcome = ${STATE_ERROR}; }
  job.seeds.fill(0);
  job.privates.fill(0);
  Atomics.store(ctl, state, outcome);
  Atomics.notify(ctl, state);
});
`;

/**
 * The process-wide mask worker pool. Like libuv's thread pool it is shared by every session in
 * the process and grows lazily up to {@link SECAGG_MASK_THREADS_MAX} − 1 workers; workers are
 * unref'd, so an idle pool never keeps the process alive.
 */
const pool: (Worker | undefined)[] = [];

function worker(slot: number): Worker {
  let w = pool[slot];
  if (w === undefined) {
    w = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        wasmModule: maskAddWasmModule,
        chunkBytes: SECAGG_PRG_CHUNK_BYTES,
        pageBytes: SECAGG_WASM_PAGE_BYTES,
        pairLabel: PAIR_SEED_LABEL,
      },
    });
    w.unref();
    const self = w;
    // A crashed worker is dropped from the pool; its tasks of a running job are recomputed by the
    // caller once it is seen to stall.
    w.on('error', () => {
      if (pool[slot] === self) pool[slot] = undefined;
    });
    w.on('exit', () => {
      if (pool[slot] === self) pool[slot] = undefined;
    });
    pool[slot] = w;
  }
  return w;
}

/** Terminates the pool's workers (tests; the pool is otherwise left to the process). */
export async function closeMaskWorkers(): Promise<void> {
  const ws = pool.splice(0).filter((w): w is Worker => w !== undefined);
  await Promise.all(ws.map((w) => w.terminate()));
}

/** Waits for a worker that started the job; false if it failed or stalled. */
function awaitWorker(ctl: Int32Array, slot: number): boolean {
  const state = CTL_HEADER + 2 * slot;
  const progress = state + 1;
  for (;;) {
    const s = Atomics.load(ctl, state);
    if (s === STATE_DONE) return true;
    if (s === STATE_ERROR) return false;
    const before = Atomics.load(ctl, progress);
    const woke = Atomics.wait(ctl, state, s, SECAGG_MASK_WORKER_STALL_MS);
    const now = Atomics.load(ctl, state);
    if (
      woke === 'timed-out' &&
      (now === STATE_RUNNING || now === STATE_IDLE) &&
      Atomics.load(ctl, progress) === before
    ) {
      // Stalled: make sure it can claim nothing more and drop it from the pool.
      const w = pool[slot];
      pool[slot] = undefined;
      void w?.terminate();
      return false;
    }
  }
}

/** What {@link runMaskJob} did: masks summed by pool workers, and masks the caller redid for failed workers. */
export interface MaskJobStats {
  readonly workerTasks: number;
  readonly recomputedTasks: number;
}

/** Options of {@link runMaskJob}. */
export interface MaskJobOptions {
  /**
   * Whether the calling thread claims tasks too (default true). With false it only waits for
   * the workers (tests use it to make sure the worker path runs).
   */
  readonly callerWorks?: boolean;
}

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
  const n = taskCount(job);
  const inline = new InlineRunner(acc, job);
  const callerWorks = options.callerWorks !== false;
  const workers = Math.min(threads, SECAGG_MASK_THREADS_MAX, n + (callerWorks ? 0 : 1)) - 1;
  if (workers <= 0) {
    for (let i = 0; i < n; i++) inline.run(i);
    return { workerTasks: 0, recomputedTasks: 0 };
  }
  const words = acc.words;
  const ctl = new Int32Array(new SharedArrayBuffer(4 * (CTL_HEADER + 2 * workers)));
  const owner = new Int32Array(new SharedArrayBuffer(4 * n));
  const results = new SharedArrayBuffer(4 * words * workers);
  for (let slot = 0; slot < workers; slot++) {
    worker(slot).postMessage({
      slot,
      control: ctl.buffer,
      owner: owner.buffer,
      results,
      words,
      sessionId: job.sessionId,
      seeds: job.seeds,
      seedSigns: job.seedSigns,
      privates: job.privates,
      publics: job.publics,
      pairs: job.pairs,
    });
  }
  try {
    while (callerWorks) {
      const i = Atomics.add(ctl, 0, 1);
      if (i >= n) break;
      Atomics.store(owner, i, OWNER_CALLER);
      inline.run(i);
    }
  } catch (e) {
    Atomics.store(ctl, 0, n); // workers stop claiming; their partial sums are dropped
    throw e;
  }
  const failed = new Set<number>();
  let workerTasks = 0;
  for (let slot = 0; slot < workers; slot++) {
    const state = CTL_HEADER + 2 * slot;
    // A worker that has not started yet is closed out of this job: it will find no work.
    if (callerWorks && Atomics.compareExchange(ctl, state, STATE_IDLE, STATE_CLOSED) === STATE_IDLE)
      continue;
    if (!awaitWorker(ctl, slot)) failed.add(2 + slot);
    else if (Atomics.load(ctl, state + 1) > 0) {
      acc.addVector(new Uint32Array(results, slot * words * 4, words));
      workerTasks += Atomics.load(ctl, state + 1);
    }
  }
  let recomputedTasks = 0;
  if (failed.size > 0) {
    Atomics.store(ctl, 0, n);
    for (let i = 0; i < n; i++) {
      const o = Atomics.load(owner, i);
      if (o === 0 || failed.has(o)) {
        inline.run(i);
        recomputedTasks++;
      }
    }
  }
  return { workerTasks, recomputedTasks };
}
