/**
 * A pool of worker threads for local training, so many simulated clients use both cores.
 * Tasks are dispatched to the least-loaded worker; a worker that crashes fails its pending tasks
 * with `LEARN_WORKER` and is replaced. Workers load TypeScript through tsx's ESM hooks, which
 * Node does not share across threads, so each worker registers them itself before importing the
 * entry.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { LearnError, LearnErrorCode } from '../errors.ts';
import {
  checkTask,
  createOptimizer,
  type TrainResult,
  type TrainTask,
  trainLocal,
} from './train.ts';
import { readiness, tsWorker } from './ts-worker.ts';

/** Largest number of worker threads. */
export const TRAIN_POOL_WORKERS_MAX = 64;
/** Largest number of tasks queued or running across the pool. */
export const TRAIN_POOL_PENDING_TASKS_MAX = 1_000_000;

interface Pending {
  readonly resolve: (r: TrainResult) => void;
  readonly reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  readonly pending: Map<number, Pending>;
}

/** Runs {@link trainLocal} on worker threads (or inline when `size` is 0). */
export class TrainPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private inFlight = 0;
  private closed = false;
  readonly size: number;

  /** @param size worker threads; default one per core (at most 2 on this machine's budget). */
  constructor(size: number = Math.min(2, availableParallelism())) {
    if (!Number.isInteger(size) || size < 0 || size > TRAIN_POOL_WORKERS_MAX) {
      throw new LearnError(
        LearnErrorCode.BadConfig,
        `pool size must be in [0, ${TRAIN_POOL_WORKERS_MAX}]`,
      );
    }
    this.size = size;
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = tsWorker(new URL('./train-worker.ts', import.meta.url));
    const pending = new Map<number, Pending>();
    const { ready, onReady, onFail } = readiness();
    const slot: Slot = { worker, ready, pending };
    const failAll = (msg: string): void => {
      onFail(new LearnError(LearnErrorCode.Worker, msg));
      for (const p of pending.values()) p.reject(new LearnError(LearnErrorCode.Worker, msg));
      this.inFlight -= pending.size;
      pending.clear();
    };
    worker.on(
      'message',
      (m: { ready?: true; fatal?: string; id?: number; result?: TrainResult; error?: string }) => {
        if (m.ready) return onReady();
        if (m.fatal !== undefined) return failAll(`training worker failed to load: ${m.fatal}`);
        const p = m.id === undefined ? undefined : pending.get(m.id);
        if (p === undefined || m.id === undefined) return;
        pending.delete(m.id);
        this.inFlight--;
        if (m.error !== undefined) p.reject(new LearnError(LearnErrorCode.Worker, m.error));
        else if (m.result !== undefined) p.resolve(m.result);
      },
    );
    worker.on('error', (e) => failAll(`training worker crashed: ${e.message}`));
    worker.on('exit', (code) => {
      if (pending.size > 0) failAll(`training worker exited with code ${code}`);
      if (!this.closed) {
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots[i] = this.spawn();
      }
    });
    return slot;
  }

  /** Trains one client. @throws {LearnError} `LEARN_WORKER` if the worker fails. */
  async run(task: TrainTask): Promise<TrainResult> {
    if (this.closed) throw new LearnError(LearnErrorCode.Worker, 'pool is closed');
    if (this.slots.length === 0) return trainLocal(task);
    checkTask(task);
    createOptimizer(task.optimizer, 0);
    if (this.inFlight >= TRAIN_POOL_PENDING_TASKS_MAX)
      throw new LearnError(LearnErrorCode.Worker, 'training queue full');
    let slot = this.slots[0] as Slot;
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s;
    await slot.ready;
    const id = this.nextId++;
    this.inFlight++;
    return new Promise<TrainResult>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, task });
    });
  }

  /** Trains many clients, at most `size × 4` in flight so memory stays bounded. */
  async runAll(
    tasks: Iterable<TrainTask>,
    onResult: (r: TrainResult, index: number) => void,
  ): Promise<void> {
    const window = Math.max(1, this.slots.length * 4);
    const running = new Set<Promise<void>>();
    let index = 0;
    for (const task of tasks) {
      const i = index++;
      const p: Promise<void> = this.run(task).then((r) => {
        running.delete(p);
        onResult(r, i);
      });
      running.add(p);
      if (running.size >= window) await Promise.race(running);
    }
    await Promise.all(running);
  }

  /** Terminates every worker; pending tasks reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}
