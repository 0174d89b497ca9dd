/**
 * Models on Float32Array: logistic regression and a multilayer perceptron of configurable width
 * and depth, for binary classification (one sigmoid output, binary cross-entropy loss).
 *
 * A model is a flat parameter vector plus a {@link ModelSpec}; layer ℓ stores its weight matrix
 * row-major ([out][in]) followed by its bias, layers in order. Flat vectors are what
 * aggregation, clipping, noise and secure aggregation operate on, so nothing in the federated
 * path needs to know the shape.
 */
import type { Rng } from '../../core/index.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';
import { type Activation, layerSizes, type Model, type ModelSpec, paramCount } from './kernels.ts';

export {
  type Activation,
  type Dataset,
  evaluate,
  layerSizes,
  lossAndGradient,
  type Model,
  type ModelSpec,
  paramCount,
  predict,
  sigmoid,
  Workspace,
} from './kernels.ts';

/** Largest parameter count of one model (4 Mi floats = 16 MiB). */
export const MODEL_PARAMS_MAX = 4 * 1024 * 1024;
/** Largest number of hidden layers. */
export const MODEL_HIDDEN_LAYERS_MAX = 16;
/** Largest width of one layer. */
export const MODEL_LAYER_WIDTH_MAX = 65_536;

/** Logistic regression over `inputs` features. */
export function logisticRegression(inputs: number): ModelSpec {
  return validateSpec({ kind: 'logreg', inputs, hidden: [], activation: 'relu' });
}

/** An MLP with `depth` hidden layers of `width` units each. */
export function mlp(
  inputs: number,
  width: number,
  depth: number,
  activation: Activation = 'relu',
): ModelSpec {
  return validateSpec({
    kind: 'mlp',
    inputs,
    hidden: Array.from({ length: depth }, () => width),
    activation,
  });
}

/** Checks a spec's bounds. @throws {LearnError} `LEARN_BAD_CONFIG` */
export function validateSpec(spec: ModelSpec): ModelSpec {
  const fail = (msg: string): never => {
    throw new LearnError(LearnErrorCode.BadConfig, `model spec: ${msg}`, { details: { spec } });
  };
  if (spec.kind !== 'logreg' && spec.kind !== 'mlp') fail(`unknown kind "${String(spec.kind)}"`);
  if (spec.kind === 'logreg' && spec.hidden.length !== 0) fail('logreg has no hidden layers');
  if (spec.hidden.length > MODEL_HIDDEN_LAYERS_MAX)
    fail(`at most ${MODEL_HIDDEN_LAYERS_MAX} hidden layers`);
  if (spec.activation !== 'relu' && spec.activation !== 'tanh')
    fail(`unknown activation "${String(spec.activation)}"`);
  for (const w of [spec.inputs, ...spec.hidden]) {
    if (!Number.isInteger(w) || w < 1 || w > MODEL_LAYER_WIDTH_MAX)
      fail(`layer width ${w} outside [1, ${MODEL_LAYER_WIDTH_MAX}]`);
  }
  if (paramCount(spec) > MODEL_PARAMS_MAX)
    fail(`more than MODEL_PARAMS_MAX (${MODEL_PARAMS_MAX}) parameters`);
  return spec;
}

/**
 * Fresh parameters: He-uniform weights for ReLU layers, Glorot-uniform otherwise, zero biases.
 */
export function initParams(spec: ModelSpec, rng: Rng): Float32Array {
  const s = layerSizes(spec);
  const p = new Float32Array(paramCount(spec));
  let off = 0;
  for (let l = 0; l + 1 < s.length; l++) {
    const fanIn = s[l] as number;
    const fanOut = s[l + 1] as number;
    const hiddenOut = l + 2 < s.length;
    const limit =
      hiddenOut && spec.activation === 'relu'
        ? Math.sqrt(6 / fanIn)
        : Math.sqrt(6 / (fanIn + fanOut));
    for (let i = 0; i < fanIn * fanOut; i++) p[off + i] = (rng.nextFloat() * 2 - 1) * limit;
    off += fanIn * fanOut + fanOut;
  }
  return p;
}

const MAGIC = 0x474c4d31; // "GLM1"

/**
 * Serialises a model: u32 magic, u32 header length, JSON spec, padding to 4 bytes, then the
 * parameters as little-endian float32.
 */
export function serializeModel(model: Model): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify(model.spec));
  const pad = (4 - ((8 + header.length) % 4)) % 4;
  const out = new Uint8Array(8 + header.length + pad + model.params.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, header.length, true);
  out.set(header, 8);
  const body = new DataView(out.buffer, 8 + header.length + pad);
  for (let i = 0; i < model.params.length; i++)
    body.setFloat32(i * 4, model.params[i] as number, true);
  return out;
}

/** Parses {@link serializeModel}'s output. @throws {LearnError} `LEARN_MALFORMED` */
export function deserializeModel(bytes: Uint8Array): Model {
  const fail = (msg: string, cause?: unknown): never => {
    throw new LearnError(LearnErrorCode.Malformed, `model: ${msg}`, { cause });
  };
  if (bytes.length < 8) fail('too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) fail('bad magic');
  const hLen = view.getUint32(4, true);
  if (8 + hLen > bytes.length) fail('header overruns');
  let spec: ModelSpec = logisticRegression(1);
  try {
    spec = validateSpec(
      JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hLen))) as ModelSpec,
    );
  } catch (e) {
    fail('bad spec', e);
  }
  const pad = (4 - ((8 + hLen) % 4)) % 4;
  const n = paramCount(spec);
  const bodyOff = 8 + hLen + pad;
  if (bytes.length !== bodyOff + n * 4) fail(`expected ${n} parameters`);
  const params = new Float32Array(n);
  for (let i = 0; i < n; i++) params[i] = view.getFloat32(bodyOff + i * 4, true);
  return { spec, params };
}
