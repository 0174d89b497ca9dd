/**
 * Optimisers (SGD with momentum, Adam) and the local training loop, importing nothing at run
 * time so that training workers start fast. Inputs are validated by `train.ts` before they get
 * here. Training is a pure function of its inputs (the seed shuffles batches), so a client
 * trains to the same bytes on the main thread or in a worker.
 */
import { type Dataset, lossAndGradient, type ModelSpec, Workspace } from './kernels.ts';

/** Optimiser configuration. */
export type OptimizerConfig =
  | { readonly kind: 'sgd'; readonly lr: number; readonly momentum?: number }
  | {
      readonly kind: 'adam';
      readonly lr: number;
      readonly beta1?: number;
      readonly beta2?: number;
      readonly eps?: number;
    };

/** A stateful optimiser over a flat parameter vector. */
export interface Optimizer {
  /** Applies one update in place. */
  step(params: Float32Array, grad: Float32Array): void;
}

/** SGD with (heavy-ball) momentum: v ← μv + g; w ← w − ηv. */
export class SgdMomentum implements Optimizer {
  private readonly v: Float32Array;
  constructor(
    size: number,
    private readonly lr: number,
    private readonly momentum = 0,
  ) {
    this.v = new Float32Array(size);
  }

  step(params: Float32Array, grad: Float32Array): void {
    const { v, lr, momentum } = this;
    for (let i = 0; i < params.length; i++) {
      const vi = momentum * (v[i] as number) + (grad[i] as number);
      v[i] = vi;
      params[i] = (params[i] as number) - lr * vi;
    }
  }
}

/** Adam (Kingma & Ba 2015, Algorithm 1) with bias correction. */
export class Adam implements Optimizer {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;
  constructor(
    size: number,
    private readonly lr: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  step(params: Float32Array, grad: Float32Array): void {
    this.t++;
    const { m, v, beta1, beta2, eps } = this;
    const a = (this.lr * Math.sqrt(1 - beta2 ** this.t)) / (1 - beta1 ** this.t);
    for (let i = 0; i < params.length; i++) {
      const g = grad[i] as number;
      const mi = beta1 * (m[i] as number) + (1 - beta1) * g;
      const vi = beta2 * (v[i] as number) + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = (params[i] as number) - (a * mi) / (Math.sqrt(vi) + eps);
    }
  }
}

/** Builds an optimiser from a validated configuration. */
export function makeOptimizer(config: OptimizerConfig, size: number): Optimizer {
  return config.kind === 'sgd'
    ? new SgdMomentum(size, config.lr, config.momentum ?? 0)
    : new Adam(size, config.lr, config.beta1, config.beta2, config.eps);
}

/** One client's training job. */
export interface TrainTask {
  readonly spec: ModelSpec;
  /** Starting (global) parameters; not modified. */
  readonly params: Float32Array;
  readonly data: Dataset;
  readonly optimizer: OptimizerConfig;
  /** Number of mini-batch steps (HierFAVG's κ at the tile level). */
  readonly localSteps: number;
  readonly batchSize: number;
  /** Seed of the batch shuffling. */
  readonly seed: number;
  /** FedProx proximal term μ/2·‖w − w_global‖² (0 = none). */
  readonly proximalMu?: number;
}

/** Result of local training. */
export interface TrainResult {
  readonly params: Float32Array;
  readonly numExamples: number;
  /** Mean training loss over the local steps. */
  readonly loss: number;
}

/**
 * Trains one client locally: `localSteps` mini-batch steps over a seeded shuffle of its data
 * (reshuffled each pass), optionally with FedProx's proximal term (Li et al. 2020, eq. 2).
 */
export function runTraining(task: TrainTask): TrainResult {
  const w = Float32Array.from(task.params);
  const n = task.data.n;
  if (n === 0 || task.localSteps === 0) return { params: w, numExamples: n, loss: 0 };
  const grad = new Float32Array(w.length);
  const opt = makeOptimizer(task.optimizer, w.length);
  const ws = new Workspace(task.spec);
  const rng = new Mulberry32(task.seed);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const batch = shuffledBatchData(task.data, Math.min(task.batchSize, n));
  const mu = task.proximalMu ?? 0;
  let cursor = n;
  let lossSum = 0;
  for (let s = 0; s < task.localSteps; s++) {
    if (cursor + batch.n > n) {
      shuffle(order, rng);
      cursor = 0;
    }
    fillBatch(task.data, order, cursor, batch);
    cursor += batch.n;
    lossSum += lossAndGradient(task.spec, w, batch, 0, batch.n, grad, ws);
    if (mu > 0)
      for (let i = 0; i < w.length; i++)
        grad[i] = (grad[i] as number) + mu * ((w[i] as number) - (task.params[i] as number));
    opt.step(w, grad);
  }
  return { params: w, numExamples: n, loss: lossSum / task.localSteps };
}

function shuffle(a: Uint32Array, rng: Mulberry32): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = a[i] as number;
    a[i] = a[j] as number;
    a[j] = t;
  }
}

interface MutableDataset {
  n: number;
  d: number;
  x: Float32Array;
  y: Float32Array;
}

function shuffledBatchData(data: Dataset, size: number): MutableDataset {
  return { n: size, d: data.d, x: new Float32Array(size * data.d), y: new Float32Array(size) };
}

function fillBatch(data: Dataset, order: Uint32Array, start: number, batch: MutableDataset): void {
  const d = data.d;
  for (let b = 0; b < batch.n; b++) {
    const r = order[start + b] as number;
    batch.x.set(data.x.subarray(r * d, r * d + d), b * d);
    batch.y[b] = data.y[r] as number;
  }
}

/** Mulberry32: a tiny seeded generator for batch shuffling (not for anything secret). */
class Mulberry32 {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  nextU32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  }
  /** Uniform integer in [0, n), n ≤ 2^32, without modulo bias. */
  below(n: number): number {
    const limit = Math.floor(0x1_0000_0000 / n) * n;
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }
}
