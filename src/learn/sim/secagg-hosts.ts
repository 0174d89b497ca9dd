/**
 * {@link WorkerClientHost}: the simulated clients of a secure-aggregation session, sharded over
 * worker threads (client i lives on worker i mod W), so that key agreement, share encryption,
 * masking and signature checks of many simulated clients use every core while the server runs
 * on the main thread. Each worker keeps its clients' protocol state between rounds; only
 * protocol messages cross threads (structured clone; masked vectors are transferred), exactly
 * what would cross the network between real clients and the server.
 */
import type { Worker } from 'node:worker_threads';
import type { Rng } from '../../core/index.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';
import { readiness, tsWorker } from '../model/ts-worker.ts';
import {
  type SecAggClientHost,
  type SecAggClientStep,
  type SecAggClientStepResult,
  SecAggError,
  type SecAggErrorCodeValue,
  type SecAggInputEncoding,
  type SecAggSessionConfig,
} from '../secagg/index.ts';

/** Largest number of client-host worker threads. */
export const SECAGG_HOST_WORKERS_MAX = 16;

interface Reply {
  readonly id?: number;
  readonly ready?: true;
  readonly fatal?: string;
  readonly results?: {
    index: number;
    message?: SecAggClientStepResult['message'];
    error?: { code: SecAggErrorCodeValue; message: string };
    ms: number;
  }[];
}

interface Slot {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  readonly pending: Map<number, { resolve: (r: Reply) => void; reject: (e: unknown) => void }>;
}

function isShared(b: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
}

/** Simulated SecAgg clients on `size` worker threads. Call {@link close} when done. */
export class WorkerClientHost implements SecAggClientHost {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1 || size > SECAGG_HOST_WORKERS_MAX)
      throw new LearnError(
        LearnErrorCode.BadConfig,
        `secagg host workers must be in [1, ${SECAGG_HOST_WORKERS_MAX}]`,
      );
    this.size = size;
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = tsWorker(new URL('./secagg-host-worker.ts', import.meta.url));
    const pending: Slot['pending'] = new Map();
    const { ready, onReady, onFail } = readiness();
    const failAll = (msg: string): void => {
      const e = new LearnError(LearnErrorCode.Worker, msg);
      onFail(e);
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    };
    worker.on('message', (m: Reply) => {
      if (m.ready) return onReady();
      if (m.fatal !== undefined && m.id === undefined)
        return failAll(`secagg host worker failed to load: ${m.fatal}`);
      const p = m.id === undefined ? undefined : pending.get(m.id);
      if (p === undefined || m.id === undefined) return;
      pending.delete(m.id);
      if (m.fatal !== undefined) p.reject(new LearnError(LearnErrorCode.Worker, m.fatal));
      else p.resolve(m);
    });
    worker.on('error', (e) => failAll(`secagg host worker crashed: ${e.message}`));
    worker.on('exit', (code) => {
      if (pending.size > 0) failAll(`secagg host worker exited with code ${code}`);
    });
    return { worker, ready, pending };
  }

  private async call(slot: Slot, msg: object, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.closed) throw new LearnError(LearnErrorCode.Worker, 'secagg host is closed');
    await slot.ready;
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  async open(config: SecAggSessionConfig, rng: Rng, encoding?: SecAggInputEncoding): Promise<void> {
    const indices: number[][] = this.slots.map(() => []);
    const seeds: number[][] = this.slots.map(() => []);
    for (let i = 0; i < config.n; i++) {
      (indices[i % this.size] as number[]).push(i);
      // Seeded runs stay reproducible: one seed per client, drawn in client order.
      if (!rng.cryptographic) (seeds[i % this.size] as number[]).push(rng.nextU32());
    }
    await Promise.all(
      this.slots.map((slot, w) =>
        this.call(slot, {
          op: 'open',
          config,
          indices: indices[w],
          ...(rng.cryptographic ? {} : { seeds: seeds[w] }),
          ...(encoding === undefined ? {} : { encoding }),
        }),
      ),
    );
  }

  async step(round: number, steps: readonly SecAggClientStep[]): Promise<SecAggClientStepResult[]> {
    const shards: SecAggClientStep[][] = this.slots.map(() => []);
    const transfers: ArrayBuffer[][] = this.slots.map(() => []);
    for (const s of steps) {
      const w = s.index % this.size;
      (shards[w] as SecAggClientStep[]).push(s);
      // Inputs move to the worker (they are dropped here anyway).
      const x = s.input ?? s.raw?.update;
      if (x !== undefined && x.byteLength === x.buffer.byteLength && !isShared(x.buffer))
        (transfers[w] as ArrayBuffer[]).push(x.buffer as ArrayBuffer);
    }
    const replies = await Promise.all(
      this.slots.map((slot, w) =>
        (shards[w] as SecAggClientStep[]).length === 0
          ? Promise.resolve<Reply>({ results: [] })
          : this.call(slot, { op: 'step', round, steps: shards[w] }, transfers[w]),
      ),
    );
    const byIndex = new Map<number, SecAggClientStepResult>();
    for (const r of replies)
      for (const x of r.results ?? [])
        byIndex.set(
          x.index,
          x.error === undefined
            ? {
                index: x.index,
                ...(x.message === undefined ? {} : { message: x.message }),
                ms: x.ms,
              }
            : { index: x.index, error: new SecAggError(x.error.code, x.error.message), ms: x.ms },
        );
    return steps.map((s) => {
      const r = byIndex.get(s.index);
      if (r === undefined)
        throw new LearnError(LearnErrorCode.Worker, `no result for client ${s.index}`);
      return r;
    });
  }

  async release(): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.call(slot, { op: 'release' })));
  }

  /** Terminates the workers. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}
