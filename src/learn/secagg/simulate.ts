/**
 * {@link secureAggregate}: one secure-aggregation round run in process — every client's state
 * machine and the server's, messages handed over directly, a dropout plan applied stage by
 * stage, CPU time measured per party. The same state machines run between real nodes.
 */
import { randomBytes } from 'node:crypto';
import { assert, CryptoRng, type Rng, SeededRng } from '../../core/index.ts';
import { addGaussianNoise } from '../dp/dp-fedavg.ts';
import { SecAggClient } from './client.ts';
import { isSecAggError, SecAggError, SecAggErrorCode } from './errors.ts';
import {
  SECAGG_CLIENTS_MAX,
  SECAGG_CLIP_RANGE_DEFAULT,
  SECAGG_SESSION_ID_BYTES,
  SECAGG_VECTOR_WORDS_MAX,
} from './limits.ts';
import type { SecAggClientMessage, SecAggServerMessage, SecAggSessionConfig } from './messages.ts';
import { chooseSecAggParams } from './params.ts';
import {
  checkQuantization,
  dequantizeSum,
  encodeWeightedUpdate,
  quantizationLevelsFor,
} from './quantize.ts';
import { SecAggServer } from './server.ts';
import {
  SECAGG_STAGES,
  type SecAggChannel,
  type SecAggMode,
  type SecAggStage,
  type SecAggStats,
  type SecAggThreatModel,
  type SecureAggregateOptions,
  type SecureAggregateResult,
} from './types.ts';

function bad(field: string, why: string): never {
  throw new SecAggError(SecAggErrorCode.BadConfig, `${field} ${why}`, { details: { field } });
}

function validate(o: SecureAggregateOptions): { n: number; d: number } {
  const n = o.updates.length;
  if (n < 2 || n > SECAGG_CLIENTS_MAX)
    bad('updates', `must hold 2..${SECAGG_CLIENTS_MAX} clients, has ${n}`);
  if (o.weights.length !== n) bad('weights', `has ${o.weights.length} entries for ${n} updates`);
  if (o.clientIds !== undefined && (o.clientIds.length !== n || new Set(o.clientIds).size !== n))
    bad('clientIds', 'must be n distinct ids');
  const d = (o.updates[0] as Float32Array).length;
  if (d < 1 || d + 1 > SECAGG_VECTOR_WORDS_MAX)
    bad('updates', `length ${d} out of [1, ${SECAGG_VECTOR_WORDS_MAX - 1}]`);
  o.updates.forEach((u, i) => {
    if (u.length !== d) bad('updates', `client ${i} has length ${u.length}, expected ${d}`);
  });
  for (const [i, stage] of o.dropouts ?? []) {
    if (!Number.isInteger(i) || i < 0 || i >= n) bad('dropouts', `client index ${i} out of range`);
    if (!SECAGG_STAGES.includes(stage)) bad('dropouts', `unknown stage ${String(stage)}`);
  }
  return { n, d };
}

function sessionConfig(o: SecureAggregateOptions, n: number, d: number): SecAggSessionConfig {
  return secAggSessionConfig({
    n,
    paramLength: d,
    mode: o.mode,
    ...(o.threshold === undefined ? {} : { threshold: o.threshold }),
    ...(o.neighbours === undefined ? {} : { neighbours: o.neighbours }),
    ...(o.threat === undefined ? {} : { threat: o.threat }),
    ...(o.channel === undefined ? {} : { channel: o.channel }),
    ...(o.sessionId === undefined ? {} : { sessionId: o.sessionId }),
  });
}

/** Inputs of {@link secAggSessionConfig}. */
export interface SecAggSessionConfigOptions {
  /** Clients in the session. */
  readonly n: number;
  /** Parameters per update (the session's vectors have one more word: the weight). */
  readonly paramLength: number;
  readonly mode: SecAggMode;
  readonly threshold?: number;
  readonly neighbours?: number;
  readonly threat?: SecAggThreatModel;
  readonly channel?: SecAggChannel;
  readonly sessionId?: Uint8Array;
}

/**
 * The session configuration {@link secureAggregate} uses for n clients and `paramLength`
 * parameters: t and k from the threat model unless given, a random session id unless given.
 * @throws {SecAggError} SECAGG_BAD_CONFIG / SECAGG_PARAMS_INFEASIBLE.
 */
export function secAggSessionConfig(o: SecAggSessionConfigOptions): SecAggSessionConfig {
  const { n, paramLength: d } = o;
  if (!Number.isInteger(n) || n < 2 || n > SECAGG_CLIENTS_MAX)
    bad('n', `must be an integer in [2, ${SECAGG_CLIENTS_MAX}]`);
  if (!Number.isInteger(d) || d < 1 || d + 1 > SECAGG_VECTOR_WORDS_MAX)
    bad('paramLength', `${d} out of [1, ${SECAGG_VECTOR_WORDS_MAX - 1}]`);
  const sessionId = o.sessionId ?? new Uint8Array(randomBytes(SECAGG_SESSION_ID_BYTES));
  if (sessionId.length !== SECAGG_SESSION_ID_BYTES)
    bad('sessionId', `must be ${SECAGG_SESSION_ID_BYTES} bytes`);
  let t = o.threshold;
  let k = o.mode === 'full' ? n - 1 : o.neighbours;
  if (t === undefined || k === undefined) {
    const p = chooseSecAggParams(n, o.mode, o.threat);
    t ??= p.t;
    k ??= p.k;
  }
  if (!Number.isInteger(k) || k < 1 || k > n - 1) bad('neighbours', `${k} out of [1, ${n - 1}]`);
  if (!Number.isInteger(t) || t < 1 || t > k) bad('threshold', `${t} out of [1, ${k}]`);
  return {
    sessionId,
    mode: o.mode,
    n,
    t,
    k,
    vectorLength: d + 1,
    ...(o.channel === undefined ? {} : { channel: o.channel }),
  };
}

type Party = { readonly client: SecAggClient; readonly index: number; ms: number; alive: boolean };

function emptyStages(): Record<SecAggStage, number> {
  return { advertise: 0, share: 0, 'masked-input': 0, consistency: 0, unmask: 0 };
}

/** Options of {@link runSecAggSession}. */
export interface SecAggSessionOptions {
  readonly config: SecAggSessionConfig;
  /** One already-quantized vector per client (client index i has protocol id i + 1). */
  readonly inputs: readonly Uint32Array[];
  readonly rng: Rng;
  /** Client index → stage at which it vanishes. */
  readonly dropouts?: ReadonlyMap<number, SecAggStage>;
}

/** Result of {@link runSecAggSession}. */
export interface SecAggSessionResult {
  /** Σ inputs of the survivors mod 2^32; undefined when aborted. */
  readonly sum?: Uint32Array;
  /** Indices of the clients whose input is in the sum. */
  readonly survivors: readonly number[];
  readonly aborted?: SecAggError;
  /** CPU time of each client over all rounds, ms (key generation included). */
  readonly clientMs: readonly number[];
  readonly serverMs: number;
  readonly serverUnmaskMs: number;
  readonly pairMasksRecovered: number;
  readonly selfMasksRemoved: number;
  readonly droppedByStage: Readonly<Record<SecAggStage, number>>;
  readonly rejected: Readonly<Record<string, number>>;
}

function closeRound(
  server: SecAggServer,
  round: number,
): Map<number, SecAggServerMessage> | Uint32Array {
  if (round === 0) return server.closeAdvertise();
  if (round === 1) return server.closeShare();
  if (round === 2) return server.closeMaskedInput();
  if (round === 3) return server.closeConsistency();
  return server.closeUnmask();
}

/**
 * The server side of a simulated session, shared by both runners: the requests of the round in
 * progress, the sum or the abort, and the server's time (total and of the unmasking round).
 */
class ServerRun {
  requests = new Map<number, SecAggServerMessage>();
  sum: Uint32Array | undefined;
  aborted: SecAggError | undefined;
  ms = 0;
  unmaskMs = 0;

  constructor(readonly server: SecAggServer) {}

  /** Feeds one client message to the server, timed. */
  receive(msg: SecAggClientMessage): void {
    const t0 = performance.now();
    this.server.receive(msg);
    this.ms += performance.now() - t0;
  }

  /** Closes `round`, timed; a protocol abort is kept, anything else is thrown. */
  close(round: number): void {
    const t0 = performance.now();
    try {
      const r = closeRound(this.server, round);
      if (r instanceof Uint32Array) this.sum = r;
      else this.requests = r;
    } catch (e) {
      if (!isSecAggError(e)) throw e;
      this.aborted = e;
    }
    const dt = performance.now() - t0;
    this.ms += dt;
    if (round === SECAGG_STAGES.length - 1) this.unmaskMs = dt;
  }

  /** The fields both runners report. */
  outcome(survivors: number[]): Omit<SecAggSessionResult, 'clientMs' | 'droppedByStage'> {
    const { sum, aborted, server } = this;
    return {
      ...(sum === undefined || aborted !== undefined ? {} : { sum }),
      survivors,
      ...(aborted === undefined ? {} : { aborted }),
      serverMs: this.ms,
      serverUnmaskMs: this.unmaskMs,
      pairMasksRecovered: server.stats.pairMasksRecovered,
      selfMasksRemoved: server.stats.selfMasksRemoved,
      rejected: server.rejected,
    };
  }

  /** Ids the server counts as survivors (none after an abort). */
  survivorIds(): Set<number> {
    return new Set(this.aborted === undefined ? this.server.survivors : []);
  }
}

/**
 * Runs the five rounds over already-quantized inputs: the exact modular sum of the survivors'
 * vectors, or a typed abort. {@link secureAggregate} wraps it with quantization and weighting.
 */
export async function runSecAggSession(o: SecAggSessionOptions): Promise<SecAggSessionResult> {
  const { config, inputs, rng } = o;
  if (inputs.length !== config.n) bad('inputs', `has ${inputs.length} vectors for n = ${config.n}`);
  const stageOf = (i: number): number => {
    const s = o.dropouts?.get(i);
    return s === undefined ? SECAGG_STAGES.length : SECAGG_STAGES.indexOf(s);
  };
  const droppedByStage = emptyStages();
  const server = new SecAggServer({ config, rng });
  const parties: Party[] = [];
  for (let i = 0; i < config.n; i++) {
    const t0 = performance.now();
    parties.push({
      client: new SecAggClient({ id: i + 1, config, rng }),
      index: i,
      ms: 0,
      alive: true,
    });
    (parties[i] as Party).ms = performance.now() - t0;
  }
  const run = new ServerRun(server);
  for (let round = 0; round < SECAGG_STAGES.length && run.aborted === undefined; round++) {
    for (const p of parties) {
      if (!p.alive) continue;
      if (stageOf(p.index) <= round || (round > 0 && !run.requests.has(p.client.id))) {
        p.alive = false;
        droppedByStage[SECAGG_STAGES[round] as SecAggStage]++;
        continue;
      }
      const t0 = performance.now();
      let msg: SecAggClientMessage;
      try {
        msg = clientStep(
          p.client,
          round,
          run.requests.get(p.client.id),
          inputs[p.index] as Uint32Array,
        );
      } catch (e) {
        // A client that refuses (too few neighbours, inconsistent server) leaves the round.
        if (!isSecAggError(e)) throw e;
        p.alive = false;
        droppedByStage[SECAGG_STAGES[round] as SecAggStage]++;
        continue;
      } finally {
        p.ms += performance.now() - t0;
      }
      run.receive(msg);
    }
    run.close(round);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const survivorIds = run.survivorIds();
  return {
    ...run.outcome(parties.filter((p) => survivorIds.has(p.client.id)).map((p) => p.index)),
    clientMs: parties.map((p) => p.ms),
    droppedByStage,
  };
}

/**
 * Clients of a streaming session whose inputs are produced, masked and added to the server's
 * running sum together; at most two batches of input vectors are alive at once (one being
 * masked while the next is produced, e.g. trained on the worker pool).
 */
export const SECAGG_STREAM_BATCH_CLIENTS = 32;
/**
 * Batches handed to the host ahead of the one whose messages the server is taking; also bounds
 * the live input vectors of a streaming session to this many batches.
 */
export const SECAGG_STREAM_BATCHES_AHEAD = 2;
/** Largest batch a caller may ask for (bounds the live vectors: 2 × batch × vector). */
export const SECAGG_STREAM_BATCH_CLIENTS_MAX = 4096;

/**
 * How a client turns its raw update into the vector it masks: its distributed-DP noise share
 * and Flower-style quantization ({@link encodeWeightedUpdate}). A real client does this on its
 * own device; the simulator's hosts do it on their worker threads for the same reason (the
 * server's thread only sums).
 */
export interface SecAggInputEncoding {
  /** Largest weight a client may report (the encoding is relative to it). */
  readonly maxWeight: number;
  readonly clipRange: number;
  readonly levels: number;
  /** Std of each client's Gaussian noise share added to its clipped w·x (distributed DP); 0: none. */
  readonly noiseStd: number;
}

/** A client's update before encoding: the host adds its noise share and quantizes it. */
export interface SecAggRawInput {
  /** The (clipped) update; the host may take ownership of it and modify it. */
  readonly update: Float32Array;
  /** Its aggregation weight, in (0, maxWeight]. */
  readonly weight: number;
}

/**
 * The randomness a client encodes its input with: its own seeded stream in seeded runs (so the
 * result does not depend on which thread or in which order clients are encoded), OpenSSL's
 * generator otherwise.
 */
export function encodingRng(seed: number | undefined): Rng {
  return seed === undefined ? new CryptoRng() : new SeededRng(seed);
}

/**
 * Encodes one client's raw update as its host does: noise share (when `noiseStd` > 0), then
 * quantization of [w, w·x], all from `rng`. The main thread can call it to get the very input a
 * host would mask (tests compare both).
 * @throws {SecAggError} SECAGG_BAD_CONFIG / SECAGG_MALFORMED as {@link encodeWeightedUpdate}.
 */
export function encodeClientInput(
  raw: SecAggRawInput,
  encoding: SecAggInputEncoding,
  rng: Rng,
): Uint32Array {
  const { maxWeight, clipRange, levels, noiseStd } = encoding;
  return encodeWeightedUpdate(raw.update, {
    weight: raw.weight,
    maxWeight,
    clipRange,
    levels,
    rng,
    ...(noiseStd > 0 ? { noise: (v: Float32Array) => addGaussianNoise(v, noiseStd, rng) } : {}),
  });
}

/** One client step handed to a {@link SecAggClientHost}: the client, its request, its input. */
export interface SecAggClientStep {
  /** Client index (protocol id index + 1). */
  readonly index: number;
  /** The server's request of this round (none in round 0). */
  readonly request?: SecAggServerMessage;
  /** Round 2 only: the client's quantized input (the host may take ownership of it). */
  readonly input?: Uint32Array;
  /**
   * Round 2 only, instead of `input`: the raw update, which the host encodes with the session's
   * {@link SecAggInputEncoding} and `encodingSeed` (see {@link encodingRng}) before masking it.
   */
  readonly raw?: SecAggRawInput;
  readonly encodingSeed?: number;
}

/** What a client did with a {@link SecAggClientStep}. */
export interface SecAggClientStepResult {
  readonly index: number;
  /** The client's message, or undefined when it refused (see `error`) and left the round. */
  readonly message?: SecAggClientMessage;
  readonly error?: SecAggError;
  /** CPU time of the step, ms. */
  readonly ms: number;
}

/**
 * Where the clients of a simulated session live and run: this thread
 * ({@link InProcessClientHost}) or worker threads (the simulator's host), so that many
 * simulated clients use every core. Clients are created by {@link open} and keep their state
 * between steps; a host serves one session at a time.
 */
export interface SecAggClientHost {
  /**
   * Creates clients 0..n−1 of a session (keys from `rng`); `encoding` is how they encode raw
   * inputs ({@link SecAggClientStep.raw}), when the session hands them any.
   */
  open(config: SecAggSessionConfig, rng: Rng, encoding?: SecAggInputEncoding): Promise<void>;
  /** Runs one round's step of each listed client; results in the order of `steps`. */
  step(round: number, steps: readonly SecAggClientStep[]): Promise<SecAggClientStepResult[]>;
  /** Drops the session's clients. */
  release(): Promise<void>;
}

/** Runs one protocol round of one client (round 2 needs the input). */
export function secAggClientStep(
  c: SecAggClient,
  round: number,
  req: SecAggServerMessage | undefined,
  input: Uint32Array | undefined,
): SecAggClientMessage {
  return clientStep(c, round, req, input ?? EMPTY_INPUT);
}

/**
 * The input a host masks for `step`: its quantized `input`, or its `raw` update encoded with
 * the session's encoding (as the client would before masking).
 * @throws {SecAggError} SECAGG_BAD_CONFIG when a raw input comes without an encoding.
 */
export function hostStepInput(
  step: SecAggClientStep,
  encoding: SecAggInputEncoding | undefined,
): Uint32Array | undefined {
  if (step.raw === undefined) return step.input;
  if (encoding === undefined) bad('encoding', 'is needed for raw inputs');
  return encodeClientInput(step.raw, encoding, encodingRng(step.encodingSeed));
}

/** Clients on the calling thread, sharing the session's rng (as {@link runSecAggSession}). */
export class InProcessClientHost implements SecAggClientHost {
  private clients: SecAggClient[] = [];
  private encoding: SecAggInputEncoding | undefined;

  async open(config: SecAggSessionConfig, rng: Rng, encoding?: SecAggInputEncoding): Promise<void> {
    this.clients = [];
    this.encoding = encoding;
    for (let i = 0; i < config.n; i++)
      this.clients.push(new SecAggClient({ id: i + 1, config, rng, survivorDigestOnly: true }));
  }

  async step(round: number, steps: readonly SecAggClientStep[]): Promise<SecAggClientStepResult[]> {
    return steps.map((s) => {
      const client = this.clients[s.index];
      assert(client !== undefined, 'client of this session');
      const t0 = performance.now();
      try {
        return {
          index: s.index,
          message: secAggClientStep(client, round, s.request, hostStepInput(s, this.encoding)),
          ms: performance.now() - t0,
        };
      } catch (e) {
        if (!isSecAggError(e)) throw e;
        return { index: s.index, error: e, ms: performance.now() - t0 };
      }
    });
  }

  async release(): Promise<void> {
    this.clients = [];
    this.encoding = undefined;
  }
}

/** What a streaming session's `input` gives for one client. */
export type SessionInput = Uint32Array | SecAggRawInput | undefined;

/** Options of {@link runStreamingSecAggSession}. */
export interface StreamingSecAggSessionOptions {
  readonly config: SecAggSessionConfig;
  /**
   * The already-quantized input of client index i (protocol id i + 1), or `undefined` when the
   * client cannot produce one (it then vanishes before sending its masked input). Called at most
   * once per client, only for clients that reach round 2, in increasing index order, with at
   * most 2 × `batchClients` inputs produced and not yet masked. A {@link SecAggRawInput} is
   * encoded by the client's host with `encoding` (noise share and quantization on the client's
   * side, as a real client would).
   */
  readonly input: (index: number) => SessionInput | Promise<SessionInput>;
  /** How hosts encode raw inputs; required when `input` returns any. */
  readonly encoding?: SecAggInputEncoding;
  readonly rng: Rng;
  /** Client index → stage at which it vanishes. */
  readonly dropouts?: ReadonlyMap<number, SecAggStage>;
  /** Clients per step batch; default {@link SECAGG_STREAM_BATCH_CLIENTS}. */
  readonly batchClients?: number;
  /** Where the clients run; default a fresh {@link InProcessClientHost}. */
  readonly host?: SecAggClientHost;
}

/** Result of {@link runStreamingSecAggSession}. */
export interface StreamingSecAggSessionResult extends SecAggSessionResult {
  /** Most input vectors that were alive at once (produced and not yet masked and dropped). */
  readonly peakLiveInputs: number;
  /** Most vector words the server held at once (its running sum). */
  readonly serverVectorWordsMax: number;
  /** Wall time spent waiting for inputs and client steps, ms. */
  readonly waitMs: number;
}

/**
 * {@link runSecAggSession} with O(vector) memory: rounds 0 and 1 run for every client (keys,
 * rosters, encrypted shares: small per client), then round 2 streams — each client's input is
 * produced on demand, masked by its own {@link SecAggClient}, handed to a {@link SecAggServer}
 * with `streamMaskedInputs` (which adds it to a running sum on receipt) and dropped. Rounds 3
 * and 4 then run as usual; unmasking removes the survivors' self-masks and the dropped clients'
 * pairwise masks from the same running sum. Clients step in batches of `batchClients`, two
 * batches in flight (one on the host while the server takes the other's messages). Same
 * messages, same checks, same sum as {@link runSecAggSession} for the same inputs (tested).
 * @throws {SecAggError} SECAGG_BAD_CONFIG for a bad batch size or an input of the wrong length.
 */
export async function runStreamingSecAggSession(
  o: StreamingSecAggSessionOptions,
): Promise<StreamingSecAggSessionResult> {
  const { config, rng } = o;
  const batch = o.batchClients ?? SECAGG_STREAM_BATCH_CLIENTS;
  if (!Number.isInteger(batch) || batch < 1 || batch > SECAGG_STREAM_BATCH_CLIENTS_MAX)
    bad('batchClients', `must be an integer in [1, ${SECAGG_STREAM_BATCH_CLIENTS_MAX}]`);
  for (const [i, stage] of o.dropouts ?? []) {
    if (!Number.isInteger(i) || i < 0 || i >= config.n)
      bad('dropouts', `client index ${i} out of range`);
    if (!SECAGG_STAGES.includes(stage)) bad('dropouts', `unknown stage ${String(stage)}`);
  }
  const stageOf = (i: number): number => {
    const s = o.dropouts?.get(i);
    return s === undefined ? SECAGG_STAGES.length : SECAGG_STAGES.indexOf(s);
  };
  const droppedByStage = emptyStages();
  const server = new SecAggServer({ config, rng, streamMaskedInputs: true });
  const host = o.host ?? new InProcessClientHost();
  const clientMs = new Float64Array(config.n);
  const alive = new Uint8Array(config.n).fill(1);
  // One encoding seed per client, drawn before the hosts draw theirs, so a seeded session
  // encodes each client's input the same way on any host (tests compare them).
  const encodingSeeds =
    o.encoding !== undefined && !rng.cryptographic
      ? Uint32Array.from({ length: config.n }, () => rng.nextU32())
      : undefined;
  const t0 = performance.now();
  await host.open(config, rng, o.encoding);
  // Key generation of all clients, spread evenly (hosts may create them in parallel).
  clientMs.fill((performance.now() - t0) / config.n);
  const run = new ServerRun(server);
  let waitMs = 0;
  let live = 0;
  let peakLiveInputs = 0;
  let serverVectorWordsMax = 0;
  const leave = (i: number, round: number): void => {
    alive[i] = 0;
    droppedByStage[SECAGG_STAGES[round] as SecAggStage]++;
  };
  /** Round 2: the batch's inputs (a client without one vanishes), then its steps. */
  const prepare = async (round: number, idx: number[]): Promise<SecAggClientStepResult[]> => {
    const steps: SecAggClientStep[] = [];
    if (round === 2) {
      const inputs = await Promise.all(
        idx.map(async (i) => {
          const x = await o.input(i);
          if (x !== undefined) {
            live++;
            peakLiveInputs = Math.max(peakLiveInputs, live);
          }
          return x;
        }),
      );
      idx.forEach((i, j) => {
        const x = inputs[j];
        if (x === undefined) return;
        const request = run.requests.get(i + 1) as SecAggServerMessage;
        if (!(x instanceof Uint32Array)) {
          if (o.encoding === undefined) bad('encoding', 'is needed when input() gives raw updates');
          if (x.update.length + 1 !== config.vectorLength)
            bad(
              'input',
              `client ${i} has ${x.update.length} values, expected ${config.vectorLength - 1}`,
            );
          const seed = encodingSeeds?.[i];
          steps.push({
            index: i,
            request,
            raw: x,
            ...(seed === undefined ? {} : { encodingSeed: seed }),
          });
          return;
        }
        if (x.length !== config.vectorLength)
          bad('input', `client ${i} has ${x.length} words, expected ${config.vectorLength}`);
        steps.push({ index: i, request, input: x });
      });
    } else {
      for (const i of idx) {
        const request = run.requests.get(i + 1);
        steps.push(request === undefined ? { index: i } : { index: i, request });
      }
    }
    try {
      return await host.step(round, steps);
    } finally {
      live -= round === 2 ? steps.length : 0;
    }
  };
  for (let round = 0; round < SECAGG_STAGES.length && run.aborted === undefined; round++) {
    const senders: number[] = [];
    for (let i = 0; i < config.n; i++) {
      if (alive[i] === 0) continue;
      if (stageOf(i) <= round || (round > 0 && !run.requests.has(i + 1))) leave(i, round);
      else senders.push(i);
    }
    const batches: number[][] = [];
    for (let from = 0; from < senders.length; from += batch)
      batches.push(senders.slice(from, from + batch));
    // Batches b + 1 and b + 2 are in flight while the server takes batch b's messages: the
    // hosts always have the next batch queued, and in round 2 batch b + 2 is trained while
    // b + 1 is masked (one batch at a time left the hosts idle during training and the trainers
    // idle during masking). Inputs alive: at most those of b + 1 and b + 2 (b's were masked).
    const inFlight: Promise<SecAggClientStepResult[]>[] = [];
    const launch = (b: number): void => {
      if (b >= batches.length) return;
      const p = prepare(round, batches[b] as number[]);
      // Awaited in order below; a batch that fails while an earlier one is awaited must not
      // count as an unhandled rejection meanwhile.
      p.catch(() => {});
      inFlight.push(p);
    };
    for (let b = 0; b < SECAGG_STREAM_BATCHES_AHEAD; b++) launch(b);
    for (let b = 0; b < batches.length; b++) {
      const t1 = performance.now();
      const results = await (inFlight.shift() as Promise<SecAggClientStepResult[]>);
      waitMs += performance.now() - t1;
      launch(b + SECAGG_STREAM_BATCHES_AHEAD);
      const answered = new Set<number>();
      for (const r of results) {
        answered.add(r.index);
        clientMs[r.index] = (clientMs[r.index] as number) + r.ms;
        // The request (for round 2: the ciphertexts of the shares) is not needed any more.
        run.requests.delete(r.index + 1);
        if (r.message === undefined) {
          leave(r.index, round);
          continue;
        }
        run.receive(r.message);
      }
      // Round 2: clients without an input vanish before sending their masked input.
      for (const i of batches[b] as number[]) if (!answered.has(i)) leave(i, round);
      serverVectorWordsMax = Math.max(serverVectorWordsMax, server.retainedVectorWords);
    }
    run.requests.clear();
    run.close(round);
    serverVectorWordsMax = Math.max(serverVectorWordsMax, server.retainedVectorWords);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await host.release();
  const survivorIds = run.survivorIds();
  const survivors: number[] = [];
  for (let i = 0; i < config.n; i++) if (survivorIds.has(i + 1)) survivors.push(i);
  return {
    ...run.outcome(survivors),
    clientMs: Array.from(clientMs),
    droppedByStage,
    peakLiveInputs,
    serverVectorWordsMax,
    waitMs,
  };
}

const EMPTY_INPUT = new Uint32Array(0);

/**
 * Runs one secure-aggregation round (all clients and the server in this process) and returns
 * the weighted mean Σw·x/Σw of the survivors' updates. Aborts (too many dropouts, a failed
 * consistency check) are returned in `aborted`, never thrown.
 * @throws {SecAggError} SECAGG_BAD_CONFIG / SECAGG_QUANTIZATION_OVERFLOW / SECAGG_PARAMS_INFEASIBLE / SECAGG_MALFORMED (non-finite update) on bad options.
 * @example
 * const r = await secureAggregate({ updates, weights, mode: 'plus', rng: new CryptoRng() });
 * if (r.aborted === undefined) model.set(r.weightedMean);
 */
export async function secureAggregate(o: SecureAggregateOptions): Promise<SecureAggregateResult> {
  const { n, d } = validate(o);
  const config = sessionConfig(o, n, d);
  const clipRange = o.clipRange ?? SECAGG_CLIP_RANGE_DEFAULT;
  const levels = o.quantizationLevels ?? quantizationLevelsFor(n);
  checkQuantization(n, levels, clipRange);
  const maxWeight = o.maxWeight ?? Math.max(...o.weights);
  const inputs: Uint32Array[] = [];
  const encodeMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const noise = o.noise;
    inputs.push(
      encodeWeightedUpdate(o.updates[i] as Float32Array, {
        weight: o.weights[i] as number,
        maxWeight,
        clipRange,
        levels,
        rng: o.rng,
        ...(noise === undefined ? {} : { noise: (v: Float32Array) => noise(v, i, o.rng) }),
      }),
    );
    encodeMs.push(performance.now() - t0);
  }
  const r = await runSecAggSession({
    config,
    inputs,
    rng: o.rng,
    ...(o.dropouts === undefined ? {} : { dropouts: o.dropouts }),
  });
  const ids = (i: number): string => o.clientIds?.[i] ?? `c${i}`;
  const survivorSet = new Set(r.survivors);
  const times = r.clientMs.map((ms, i) => ms + (encodeMs[i] as number));
  const stats: SecAggStats = {
    n,
    threshold: config.t,
    neighbours: config.k,
    vectorLength: config.vectorLength,
    quantizationLevels: levels,
    serverMs: r.serverMs,
    serverUnmaskMs: r.serverUnmaskMs,
    clientMsMean: times.reduce((a, b) => a + b, 0) / n,
    clientMsMax: Math.max(...times),
    pairMasksRecovered: r.pairMasksRecovered,
    selfMasksRemoved: r.selfMasksRemoved,
    droppedByStage: r.droppedByStage,
    rejected: r.rejected,
  };
  const all = Array.from({ length: n }, (_, i) => i);
  if (r.aborted !== undefined || r.sum === undefined) {
    return {
      weightedMean: new Float32Array(0),
      totalWeight: 0,
      survivors: [],
      dropped: all.map(ids),
      aborted: r.aborted ?? new SecAggError(SecAggErrorCode.WrongState, 'no sum'),
      stats,
    };
  }
  const sumX = dequantizeSum(r.sum, r.survivors.length, clipRange, levels);
  const wsum = sumX[0] as number;
  const weightedMean = new Float32Array(d);
  for (let i = 0; i < d; i++) weightedMean[i] = (sumX[i + 1] as number) / wsum;
  return {
    weightedMean,
    totalWeight: wsum * maxWeight,
    survivors: r.survivors.map(ids),
    dropped: all.filter((i) => !survivorSet.has(i)).map(ids),
    stats,
  };
}

function clientStep(
  c: SecAggClient,
  round: number,
  req: SecAggServerMessage | undefined,
  input: Uint32Array,
): SecAggClientMessage {
  if (round === 0) return c.advertise();
  if (req?.kind === 'share-request' && round === 1) return c.share(req);
  if (req?.kind === 'masked-input-request' && round === 2) return c.maskInput(req, input);
  if (req?.kind === 'consistency-request' && round === 3) return c.consistency(req);
  if (req?.kind === 'unmask-request' && round === 4) return c.unmask(req);
  throw new SecAggError(
    SecAggErrorCode.WrongState,
    `no request for client ${c.id} in round ${round}`,
  );
}
