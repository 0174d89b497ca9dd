/**
 * The process-wide pool of secure-aggregation worker threads, and the one way work reaches it:
 * a job of independent tasks claimed one at a time by the calling thread and the workers.
 *
 * Why: a client's round costs about a thousand X25519 agreements, a few hundred Ed25519
 * verifications and ~k keystreams of the vector's length; a server whose clients dropped
 * rebuilds tens of thousands of keystreams. All of it is independent per neighbour, so every
 * such batch is split over the caller and up to {@link SECAGG_MASK_THREADS_MAX} − 1 workers.
 *
 * Scheduling is dynamic: every thread claims the next task with an atomic counter on a
 * SharedArrayBuffer, so a thread slowed by other load simply claims fewer tasks. The caller
 * blocks with Atomics.wait, which keeps the protocol's round methods synchronous (their
 * signatures do not change). Workers that have not started when the caller runs out of tasks are
 * closed out of the job with a compare-and-swap; a worker that fails or stalls has its tasks
 * recomputed by the caller, so a broken worker costs time, never correctness.
 *
 * Task kinds (each has a main-thread twin, and the tests check that both give the same bytes):
 * - `mask`: add PRG masks (self seeds, or pairwise seeds from an X25519 agreement) into the
 *   worker's own WebAssembly accumulator; its sum is copied to a result slot at the end (mask-job.ts).
 * - `agree`: X25519 with one peer and the hashed-DH channel key (keys.ts `channelKey`), written to
 *   a shared output (key-jobs.ts).
 * - `verify`: one Ed25519 verification, its verdict written to a shared status array (key-jobs.ts).
 *
 * The worker is a small self-contained CommonJS script (no TypeScript loader needed, so it boots
 * in tens of milliseconds in any runner) that loads libsodium itself (sodium.ts). It repeats the
 * few definitions it needs from prg.ts and keys.ts (the ChaCha20 keystream words, the hashed-DH
 * seeds and keys); the tests compare its output with theirs byte for byte.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { assert } from '../../core/index.ts';
import { CHANNEL_KEY_LABEL } from './keys.ts';
import {
  SECAGG_MASK_THREADS_MAX,
  SECAGG_MASK_WORKER_STALL_MS,
  SECAGG_PRG_CHUNK_BYTES,
} from './limits.ts';
import { maskAddWasmModule, PAIR_SEED_LABEL, SECAGG_WASM_PAGE_BYTES } from './prg.ts';
import { SODIUM_MODULE_PATH } from './sodium.ts';

/** Control block: [next task, unused × 3, then per worker: state, tasks done]. */
const CTL_HEADER = 4;
const STATE_IDLE = 0;
const STATE_RUNNING = 1;
const STATE_DONE = 2;
const STATE_ERROR = 3;
const STATE_CLOSED = 4;
/** Owner tag of tasks run by the calling thread (workers are 2 + slot; 0 = unclaimed). */
const OWNER_CALLER = 1;
/** Per-task verdicts of `agree` and `verify` jobs (0: not run). */
export const TASK_OK = 1;
export const TASK_REJECTED = 2;

/** What a worker may be asked to do (see the module comment). */
export type PoolTaskKind = 'mask' | 'agree' | 'verify';

// Shared by every kind: claim tasks like the caller, run them, count them, then `finish` (mask
// jobs copy their partial sum out). Fields named `seeds` and `privates` are secrets and are wiped
// once the job is over; `agree` writes channel keys to a shared buffer the caller wipes.
const WORKER_SOURCE = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { wasmModule, chunkBytes, pageBytes, pairLabel, channelLabel, sodiumPath } = workerData;
const sodium = require(sodiumPath);
const ZERO = new Uint8Array(chunkBytes);
const NONCE = new Uint8Array(12);
const PAIR_LABEL = Buffer.from(pairLabel, 'ascii');
const CHANNEL_LABEL = Buffer.from(channelLabel, 'ascii');
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
// prg.ts applyPrg: ChaCha20 (RFC 8439), zero nonce, written into the scratch and added in place.
function applyPrg(seed, sign, words, scratch) {
  const op = sign === -1 ? inst.exports.sub : inst.exports.add;
  const chunkWords = chunkBytes / 4;
  for (let off = 0, chunk = 0; off < words; off += chunkWords, chunk++) {
    const n = Math.min(chunkWords, words - off) * 4;
    sodium.crypto_stream_chacha20_ietf_xor_ic(bytes.subarray(scratch, scratch + n), ZERO.subarray(0, n), NONCE, chunk * (chunkBytes / 64), seed);
    op(off * 4, scratch, Math.ceil(n / 16) * 16);
  }
}
// SHA-256(label ‖ parts…), as prg.ts pairwiseSeed and keys.ts channelKey.
function hashedDh(label, parts, shared, out) {
  let len = label.length + shared.length;
  for (const p of parts) len += p.length;
  const input = new Uint8Array(len);
  input.set(label, 0);
  let at = label.length;
  for (const p of parts) { input.set(p, at); at += p.length; }
  input.set(shared, at);
  sodium.crypto_hash_sha256(out, input);
  input.fill(0);
}
const KINDS = {
  mask(job) {
    const words = job.words;
    const scratch = prepare(words);
    const nSeeds = job.seedSigns.length;
    const ids = new Uint8Array(8);
    const idView = new DataView(ids.buffer);
    const shared = new Uint8Array(32);
    const seed = new Uint8Array(32);
    return {
      run(i) {
        if (i < nSeeds) return applyPrg(job.seeds.subarray(32 * i, 32 * i + 32), job.seedSigns[i], words, scratch);
        const p = 5 * (i - nSeeds);
        const pr = job.pairs[p];
        const pu = job.pairs[p + 1];
        sodium.crypto_scalarmult(shared, job.privates.subarray(32 * pr, 32 * pr + 32), job.publics.subarray(32 * pu, 32 * pu + 32));
        const own = job.pairs[p + 2];
        const peer = job.pairs[p + 3];
        idView.setUint32(0, Math.min(own, peer));
        idView.setUint32(4, Math.max(own, peer));
        hashedDh(PAIR_LABEL, [job.sessionId, ids], shared, seed);
        shared.fill(0);
        applyPrg(seed, job.pairs[p + 4], words, scratch);
        seed.fill(0);
      },
      finish(slot) {
        new Uint8Array(job.results, slot * words * 4, words * 4).set(bytes.subarray(0, words * 4));
      },
    };
  },
  agree(job) {
    const priv = job.privates;
    const keys = new Uint8Array(job.keys);
    const status = new Int32Array(job.status);
    const shared = new Uint8Array(32);
    return {
      run(i) {
        try {
          sodium.crypto_scalarmult(shared, priv, job.publics.subarray(32 * i, 32 * i + 32));
        } catch {
          status[i] = ${TASK_REJECTED};
          return;
        }
        hashedDh(CHANNEL_LABEL, [job.sessionId], shared, keys.subarray(32 * i, 32 * i + 32));
        shared.fill(0);
        status[i] = ${TASK_OK};
      },
    };
  },
  verify(job) {
    const status = new Int32Array(job.status);
    return {
      run(i) {
        const ok = sodium.crypto_sign_verify_detached(job.signatures.subarray(64 * i, 64 * i + 64), job.message, job.publics.subarray(32 * i, 32 * i + 32));
        status[i] = ok ? ${TASK_OK} : ${TASK_REJECTED};
      },
    };
  },
};
function run(job, ctl, slot) {
  const handler = KINDS[job.kind](job);
  const owner = new Int32Array(job.owner);
  let done = 0;
  for (;;) {
    const i = Atomics.add(ctl, 0, 1);
    if (i >= job.tasks) break;
    Atomics.store(owner, i, 2 + slot);
    handler.run(i);
    done++;
    Atomics.add(ctl, ${CTL_HEADER} + 2 * slot + 1, 1);
  }
  if (done > 0 && handler.finish !== undefined) handler.finish(slot);
}
parentPort.on('message', (job) => {
  const ctl = new Int32Array(job.control);
  const state = ${CTL_HEADER} + 2 * job.slot;
  if (Atomics.compareExchange(ctl, state, ${STATE_IDLE}, ${STATE_RUNNING}) !== ${STATE_IDLE}) return;
  Atomics.notify(ctl, state);
  let outcome = ${STATE_DONE};
  try { run(job, ctl, job.slot); } catch { outcome = ${STATE_ERROR}; }
  if (job.seeds !== undefined) job.seeds.fill(0);
  if (job.privates !== undefined) job.privates.fill(0);
  Atomics.store(ctl, state, outcome);
  Atomics.notify(ctl, state);
});
`;

/**
 * The workers. Like libuv's thread pool it is shared by every session in the process and grows
 * lazily up to {@link SECAGG_MASK_THREADS_MAX} − 1 workers; workers are unref'd, so an idle
 * pool never keeps the process alive.
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
        channelLabel: CHANNEL_KEY_LABEL,
        sodiumPath: SODIUM_MODULE_PATH,
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

/**
 * Threads for a job: `requested` if given (clamped to [1, {@link SECAGG_MASK_THREADS_MAX}]), else
 * one per core when `large` (the job repays the hand-off to workers), else 1.
 */
export function poolThreadsFor(large: boolean, requested?: number): number {
  if (requested !== undefined) {
    assert(Number.isInteger(requested) && requested >= 1, 'thread count is a positive integer');
    return Math.min(requested, SECAGG_MASK_THREADS_MAX);
  }
  if (!large) return 1;
  return Math.max(1, Math.min(availableParallelism(), SECAGG_MASK_THREADS_MAX));
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

/** A batch of independent tasks for {@link runPoolJob}. */
export interface PoolJob {
  readonly kind: PoolTaskKind;
  readonly tasks: number;
  /**
   * What the worker's handler of `kind` reads (typed arrays are copied to each worker,
   * SharedArrayBuffers shared). Fields named `seeds` and `privates` are wiped by the workers.
   */
  readonly payload: Readonly<Record<string, unknown>>;
  /** Runs task `i` on the calling thread, with the same effect as a worker's handler. */
  runInline(i: number): void;
  /** Gathers what worker `slot` left after completing at least one task (mask jobs: its partial sum). */
  collect?(slot: number): void;
}

/** What {@link runPoolJob} did: tasks run by pool workers, and tasks the caller redid for failed workers. */
export interface PoolJobStats {
  readonly workerTasks: number;
  readonly recomputedTasks: number;
}

/** Options of {@link runPoolJob}. */
export interface PoolJobOptions {
  /**
   * Whether the calling thread claims tasks too (default true). With false it only waits for
   * the workers (tests use it to make sure the worker path runs).
   */
  readonly callerWorks?: boolean;
  /**
   * Work of the caller's own to overlap with the job's: runs after the workers are handed the
   * job and before the caller claims tasks. If it throws, the job is abandoned and the error
   * rethrown.
   */
  readonly meanwhile?: () => void;
}

/**
 * Runs every task of `job` on `threads` threads (the caller plus `threads − 1` pool workers).
 * A task that throws on the calling thread abandons the job and the error propagates; a worker
 * that throws or stalls has its tasks redone on the calling thread.
 */
export function runPoolJob(job: PoolJob, threads = 1, options: PoolJobOptions = {}): PoolJobStats {
  const n = job.tasks;
  const callerWorks = options.callerWorks !== false;
  const workers = Math.min(threads, SECAGG_MASK_THREADS_MAX, n + (callerWorks ? 0 : 1)) - 1;
  if (workers <= 0) {
    options.meanwhile?.();
    for (let i = 0; i < n; i++) job.runInline(i);
    return { workerTasks: 0, recomputedTasks: 0 };
  }
  const ctl = new Int32Array(new SharedArrayBuffer(4 * (CTL_HEADER + 2 * workers)));
  const owner = new Int32Array(new SharedArrayBuffer(4 * n));
  for (let slot = 0; slot < workers; slot++) {
    worker(slot).postMessage({
      ...job.payload,
      kind: job.kind,
      tasks: n,
      slot,
      control: ctl.buffer,
      owner: owner.buffer,
    });
  }
  try {
    options.meanwhile?.();
    while (callerWorks) {
      const i = Atomics.add(ctl, 0, 1);
      if (i >= n) break;
      Atomics.store(owner, i, OWNER_CALLER);
      job.runInline(i);
    }
  } catch (e) {
    Atomics.store(ctl, 0, n); // workers stop claiming; whatever they produced is dropped
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
      job.collect?.(slot);
      workerTasks += Atomics.load(ctl, state + 1);
    }
  }
  let recomputedTasks = 0;
  if (failed.size > 0) {
    Atomics.store(ctl, 0, n);
    for (let i = 0; i < n; i++) {
      const o = Atomics.load(owner, i);
      if (o === 0 || failed.has(o)) {
        job.runInline(i);
        recomputedTasks++;
      }
    }
  }
  return { workerTasks, recomputedTasks };
}
