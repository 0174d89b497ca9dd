/**
 * Compute kernels of the models: forward pass, loss and backpropagation over flat Float32Array
 * parameters. This file imports nothing at run time, so training workers load it in
 * milliseconds (the core door pulls in the logger and metrics stacks).
 */

/** Hidden-layer activation. */
export type Activation = 'relu' | 'tanh';

/** The shape of a model. `logreg` is an MLP without hidden layers. */
export interface ModelSpec {
  readonly kind: 'logreg' | 'mlp';
  readonly inputs: number;
  /** Widths of the hidden layers (empty for `logreg`). */
  readonly hidden: readonly number[];
  readonly activation: Activation;
}

/** A model: spec plus flat parameters. */
export interface Model {
  readonly spec: ModelSpec;
  readonly params: Float32Array;
}

/** A labelled dataset: `n` rows of `d` features, row-major, labels in {0, 1}. */
export interface Dataset {
  readonly n: number;
  readonly d: number;
  readonly x: Float32Array;
  readonly y: Float32Array;
}

/** Layer sizes from input to output, e.g. [12, 32, 32, 1]. */
export function layerSizes(spec: ModelSpec): number[] {
  return [spec.inputs, ...spec.hidden, 1];
}

/** Number of parameters of a model of this shape. */
export function paramCount(spec: ModelSpec): number {
  const s = layerSizes(spec);
  let n = 0;
  for (let l = 0; l + 1 < s.length; l++)
    n += (s[l] as number) * (s[l + 1] as number) + (s[l + 1] as number);
  return n;
}

/** The logistic function, stable for large |z|. */
export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Binary cross-entropy of logit z against label y, computed stably from the logit. */
export function bceFromLogit(z: number, y: number): number {
  return Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
}

/** Reusable activation buffers for one shape, so training allocates nothing per sample. */
export class Workspace {
  readonly sizes: number[];
  readonly acts: Float32Array[];
  readonly deltas: Float32Array[];

  constructor(readonly spec: ModelSpec) {
    this.sizes = layerSizes(spec);
    this.acts = this.sizes.map((n) => new Float32Array(n));
    this.deltas = this.sizes.map((n) => new Float32Array(n));
  }
}

/** Forward pass of one row; leaves activations in `ws` and returns the output logit. */
export function forwardRow(
  spec: ModelSpec,
  p: Float32Array,
  x: Float32Array,
  row: number,
  ws: Workspace,
): number {
  const s = ws.sizes;
  const a0 = ws.acts[0] as Float32Array;
  const d = s[0] as number;
  for (let i = 0; i < d; i++) a0[i] = x[row * d + i] as number;
  let off = 0;
  const last = s.length - 2;
  for (let l = 0; l <= last; l++) {
    const nIn = s[l] as number;
    const nOut = s[l + 1] as number;
    const inp = ws.acts[l] as Float32Array;
    const out = ws.acts[l + 1] as Float32Array;
    const bOff = off + nIn * nOut;
    for (let o = 0; o < nOut; o++) {
      let z = p[bOff + o] as number;
      const wRow = off + o * nIn;
      for (let i = 0; i < nIn; i++) z += (p[wRow + i] as number) * (inp[i] as number);
      if (l < last) out[o] = spec.activation === 'relu' ? Math.max(z, 0) : Math.tanh(z);
      else out[o] = z;
    }
    off = bOff + nOut;
  }
  return (ws.acts[s.length - 1] as Float32Array)[0] as number;
}

/**
 * Loss and gradient of the mean binary cross-entropy over rows `[start, end)`; the gradient is
 * written into `grad` (overwritten).
 * @returns the mean loss over the rows.
 */
export function lossAndGradient(
  spec: ModelSpec,
  p: Float32Array,
  data: Dataset,
  start: number,
  end: number,
  grad: Float32Array,
  ws: Workspace = new Workspace(spec),
): number {
  grad.fill(0);
  const s = ws.sizes;
  const count = end - start;
  let loss = 0;
  const last = s.length - 2;
  const offsets: number[] = [];
  let off = 0;
  for (let l = 0; l <= last; l++) {
    offsets.push(off);
    off += (s[l] as number) * (s[l + 1] as number) + (s[l + 1] as number);
  }
  for (let r = start; r < end; r++) {
    const z = forwardRow(spec, p, data.x, r, ws);
    const y = data.y[r] as number;
    loss += bceFromLogit(z, y);
    (ws.deltas[last + 1] as Float32Array)[0] = (sigmoid(z) - y) / count;
    for (let l = last; l >= 0; l--) {
      const nIn = s[l] as number;
      const nOut = s[l + 1] as number;
      const o0 = offsets[l] as number;
      const bOff = o0 + nIn * nOut;
      const inp = ws.acts[l] as Float32Array;
      const dOut = ws.deltas[l + 1] as Float32Array;
      const dIn = ws.deltas[l] as Float32Array;
      if (l > 0) dIn.fill(0);
      for (let o = 0; o < nOut; o++) {
        const g = dOut[o] as number;
        if (g === 0) continue;
        grad[bOff + o] = (grad[bOff + o] as number) + g;
        const wRow = o0 + o * nIn;
        for (let i = 0; i < nIn; i++) {
          grad[wRow + i] = (grad[wRow + i] as number) + g * (inp[i] as number);
          if (l > 0) dIn[i] = (dIn[i] as number) + g * (p[wRow + i] as number);
        }
      }
      if (l > 0) {
        // Derivative of the hidden activation, from its output value.
        for (let i = 0; i < nIn; i++) {
          const a = inp[i] as number;
          dIn[i] = (dIn[i] as number) * (spec.activation === 'relu' ? (a > 0 ? 1 : 0) : 1 - a * a);
        }
      }
    }
  }
  return loss / Math.max(1, count);
}

/** Failure probabilities for every row. */
export function predict(spec: ModelSpec, p: Float32Array, data: Dataset): Float32Array {
  const ws = new Workspace(spec);
  const out = new Float32Array(data.n);
  for (let r = 0; r < data.n; r++) out[r] = sigmoid(forwardRow(spec, p, data.x, r, ws));
  return out;
}

/** Mean loss and accuracy (threshold 0.5) on a dataset. */
export function evaluate(
  spec: ModelSpec,
  p: Float32Array,
  data: Dataset,
): { loss: number; accuracy: number } {
  const ws = new Workspace(spec);
  let loss = 0;
  let correct = 0;
  for (let r = 0; r < data.n; r++) {
    const z = forwardRow(spec, p, data.x, r, ws);
    const y = data.y[r] as number;
    loss += bceFromLogit(z, y);
    if (z >= 0 === y >= 0.5) correct++;
  }
  return { loss: data.n === 0 ? 0 : loss / data.n, accuracy: data.n === 0 ? 0 : correct / data.n };
}
