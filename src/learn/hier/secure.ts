/**
 * Secure aggregation between a pod and its tiles over the core Transport (Bonawitz et al. 2017,
 * "Practical Secure Aggregation for Privacy-Preserving Machine Learning", CCS '17, Fig. 4; SecAgg+
 * neighbourhoods after Bell et al. 2020 when the pod has many tiles).
 *
 * Each tile runs a {@link SecAggClient} for its own update; the pod runs the {@link SecAggServer}.
 * Nothing in this file ever puts a tile's update on the wire in the clear:
 *
 * - round 0: the pod's fit request carries the session's public parameters
 *   ({@link SecureFitHeader}); the tile trains, quantizes [w, w·Δ, w·loss] as Flower does, keeps
 *   it, and replies with its `advertise` message (public keys only);
 * - rounds 1–4: the pod sends each server message as a request on the tile's
 *   {@link secureSubject}; the tile answers with its client message. Share ciphertexts between
 *   tiles travel through the pod, encrypted and authenticated under the tiles' pairwise channel
 *   keys (AES-GCM with (session, from, to) as AAD), as in the paper;
 * - each round has a deadline; a tile that misses it is out of the round and the protocol's
 *   recovery runs (its pairwise masks are rebuilt from t shares of its key). When fewer than t
 *   tiles remain the server aborts: the pod's pass fails cleanly, is counted and logged, and
 *   the pod answers its parent without a contribution for that pass.
 *
 * The pod therefore learns Σw, Σw·Δ and Σw·loss over the tiles whose masked input is in the sum,
 * and nothing about any single tile's update (beyond what the sum reveals).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign as signBytes,
  verify as verifyBytes,
} from 'node:crypto';
import type { Logger, MessageHeaders, NodeContext } from '../../core/index.ts';
import {
  GenesisError,
  isGenesisError,
  TRANSPORT_MESSAGE_BYTES_MAX,
  TransportErrorCode,
} from '../../core/index.ts';
import {
  checkQuantization,
  chooseSecAggParams,
  decodeSecAggMessage,
  dequantizeSum,
  encodeSecAggMessage,
  encodeWeightedUpdate,
  isSecAggError,
  quantizationLevelsFor,
  SECAGG_CLIENTS_MAX,
  SECAGG_CLIP_RANGE_DEFAULT,
  SECAGG_SESSION_ID_BYTES,
  SECAGG_STAGES,
  SECAGG_THREAT_DEFAULT,
  SecAggClient,
  type SecAggClientMessage,
  SecAggError,
  SecAggErrorCode,
  type SecAggErrorCodeValue,
  type SecAggMode,
  SecAggServer,
  type SecAggServerMessage,
  type SecAggSessionConfig,
  type SecAggStage,
} from '../secagg/index.ts';
import { encodeFitRequest, fitSubject, type SecureCounters, type SecureFitHeader } from './wire.ts';

/** Default deadline of each protocol round after round 0 (share, masked input, consistency, unmask). */
export const SECURE_ROUND_MS_DEFAULT = 2_000;
/** Smallest deadline given to one protocol round, ms. */
export const SECURE_ROUND_MS_MIN = 20;
/** Protocol rounds after round 0 (AdvertiseKeys rides on the fit request). */
export const SECURE_PROTOCOL_ROUNDS = 4;
/** Fewest tiles a pod runs secure aggregation with: with two, each tile learns the other's update. */
export const SECURE_POD_TILES_MIN = 3;
/** Sessions one tile keeps open at once (a pod runs one per pass); the oldest is dropped. */
export const TILE_SECURE_SESSIONS_MAX = 4;
/** Closed session ids a tile remembers, so a replayed fit request cannot reopen one. */
export const TILE_CLOSED_SESSIONS_REMEMBERED_MAX = 256;
/** Floor of the dropout rate in the threat model the pod picks (k, t) for. */
export const SECURE_THREAT_DROPOUT_MIN = 0.1;
/** Ceiling of it (the threat model needs dropout + corrupt fraction < 1). */
export const SECURE_THREAT_DROPOUT_MAX = 0.5;

/** Header carrying the pod's Ed25519 signature (base64url) of a rounds 1–4 request. */
export const POD_SIGNATURE_HEADER = 'genesis-secagg-pod-sig';
/** Length of an Ed25519 public key as a JWK `x` (base64url of 32 bytes). */
const POD_KEY_CHARS = 43;

/** Code of a request that does not carry a valid signature of the session's pod key. */
export const POD_SIGNATURE_INVALID = 'LEARN_POD_SIGNATURE';

/**
 * A rounds 1–4 request without a valid signature of the pod key announced in the session's
 * fit request: someone other than the pod that opened the session sent it.
 */
export class PodSignatureError extends GenesisError {
  constructor(message: string) {
    super(POD_SIGNATURE_INVALID, message);
    this.name = 'PodSignatureError';
  }
}

/** A pod's per-session signing key (Ed25519, from OpenSSL's generator). */
export interface PodSigningKey {
  /** The public key as a JWK `x` (base64url), sent to the tiles in the fit request. */
  readonly publicX: string;
  /** Signs one request; the value of {@link POD_SIGNATURE_HEADER}. */
  sign(data: Uint8Array): string;
}

/**
 * A fresh signing key for one session. The generator returns JWK itself and the private key is
 * imported from it: in Node 20, exporting a freshly generated KeyObject can deadlock when a GC
 * finalizes its generator job at that moment (see src/learn/secagg/keys.ts).
 */
export function podSigningKey(): PodSigningKey {
  const pair = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { format: 'jwk' },
    privateKeyEncoding: { format: 'jwk' },
  });
  // With JWK encodings Node returns JWK objects; @types/node 20 types them as KeyObjects.
  const priv = pair.privateKey as unknown as { kty: string; crv: string; d: string; x: string };
  const privateKey = createPrivateKey({ key: priv, format: 'jwk' });
  return {
    publicX: priv.x,
    sign: (data) => signBytes(null, data, privateKey).toString('base64url'),
  };
}

function podSigned(data: Uint8Array, key: KeyObject, signature: string | undefined): boolean {
  if (signature === undefined) return false;
  try {
    return verifyBytes(null, data, key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

function podPublicKey(x: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
}

/** Subject on which a tile receives the rounds 1–4 requests of its pod's sessions. */
export function secureSubject(tile: string): string {
  return `genesis.learn.secagg.${tile}`;
}

/** Counters with nothing counted. */
export const NO_SECURE_COUNTERS: SecureCounters = { sessions: 0, aborted: 0, recovered: 0 };

/** Sums two counter sets. */
export function addCounters(a: SecureCounters, b: SecureCounters | undefined): SecureCounters {
  if (b === undefined) return a;
  return {
    sessions: a.sessions + b.sessions,
    aborted: a.aborted + b.aborted,
    recovered: a.recovered + b.recovered,
  };
}

/** The (mode, k, t) a pod uses for n tiles. */
export interface PodSecAggParams {
  readonly mode: SecAggMode;
  readonly k: number;
  readonly t: number;
  /**
   * True when no (k, t) met the default threat model (a malicious pod colluding with 5 % of
   * the tiles, 40-bit security) for this n — pods of 3 or 4 tiles. The pod then uses full
   * SecAgg with a majority threshold t = ⌊(n−1)/2⌋ + 1, which protects each update from a
   * curious pod that colludes with no tile.
   */
  readonly relaxed: boolean;
}

/**
 * Chooses the protocol for a pod of n tiles with the secagg module's parameter code
 * ({@link chooseSecAggParams}): `'plus'` becomes SecAgg+ only where a k-regular neighbourhood
 * beats the complete graph (from about 24 tiles); small pods run full SecAgg.
 */
export function choosePodSecAggParams(
  n: number,
  setting: 'full' | 'plus',
  dropoutRate: number,
): PodSecAggParams {
  const threat = {
    dropoutRate: Math.min(
      SECURE_THREAT_DROPOUT_MAX,
      Math.max(SECURE_THREAT_DROPOUT_MIN, dropoutRate),
    ),
    corruptFraction: SECAGG_THREAT_DEFAULT.corruptFraction,
  };
  try {
    const p = chooseSecAggParams(n, setting, threat);
    return { mode: p.mode, k: p.k, t: p.t, relaxed: false };
  } catch (e) {
    if (!isSecAggError(e)) throw e;
    const k = n - 1;
    return { mode: 'full', k, t: Math.floor(k / 2) + 1, relaxed: true };
  }
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function bad(code: SecAggErrorCodeValue, message: string, field?: string): never {
  throw new SecAggError(code, message, field === undefined ? {} : { details: { field } });
}

/**
 * Checks the secure header of a fit request as a tile must: well formed, a vector that fits the
 * model, a quantization that cannot wrap, and a threshold that keeps an honest majority of each
 * neighbourhood (2t > k; the consistency check relies on it, Bonawitz et al. §4). A pod that asks
 * for less is refused.
 * @throws {SecAggError} SECAGG_MALFORMED or SECAGG_BAD_CONFIG.
 */
export function checkSecureHeader(h: SecureFitHeader, paramCount: number): SecAggSessionConfig {
  const int = (v: unknown, lo: number, hi: number, field: string): void => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
      bad(SecAggErrorCode.Malformed, `secure.${field} must be an integer in [${lo}, ${hi}]`, field);
  };
  if (typeof h !== 'object' || h === null) bad(SecAggErrorCode.Malformed, 'secure header');
  if (typeof h.session !== 'string' || !/^[0-9a-f]+$/.test(h.session))
    bad(SecAggErrorCode.Malformed, 'secure.session is not hex', 'session');
  if (h.session.length !== 2 * SECAGG_SESSION_ID_BYTES)
    bad(SecAggErrorCode.Malformed, 'secure.session has the wrong length', 'session');
  if (h.mode !== 'full' && h.mode !== 'plus')
    bad(SecAggErrorCode.Malformed, 'secure.mode must be full or plus', 'mode');
  int(h.n, SECURE_POD_TILES_MIN, SECAGG_CLIENTS_MAX, 'n');
  int(h.id, 1, h.n, 'id');
  int(h.k, 2, h.n - 1, 'k');
  int(h.t, 1, h.k, 't');
  if (h.mode === 'full' && h.k !== h.n - 1)
    bad(SecAggErrorCode.BadConfig, 'full SecAgg needs k = n − 1', 'k');
  if (2 * h.t <= h.k)
    bad(SecAggErrorCode.BadConfig, `threshold ${h.t} is not a majority of ${h.k}`, 't');
  if (h.vectorLength !== paramCount + 2)
    bad(SecAggErrorCode.BadConfig, `vector of ${h.vectorLength} words for ${paramCount}`, 'vec');
  if (typeof h.maxWeight !== 'number' || !(h.maxWeight > 0) || !Number.isFinite(h.maxWeight))
    bad(SecAggErrorCode.Malformed, 'secure.maxWeight must be finite and > 0', 'maxWeight');
  if (typeof h.sessionMs !== 'number' || !(h.sessionMs > 0))
    bad(SecAggErrorCode.Malformed, 'secure.sessionMs must be > 0', 'sessionMs');
  if (
    typeof h.podKey !== 'string' ||
    h.podKey.length !== POD_KEY_CHARS ||
    !/^[A-Za-z0-9_-]+$/.test(h.podKey)
  )
    bad(SecAggErrorCode.Malformed, 'secure.podKey is not an Ed25519 key', 'podKey');
  checkQuantization(h.n, h.levels, h.clipRange);
  return {
    sessionId: fromHex(h.session),
    mode: h.mode,
    n: h.n,
    t: h.t,
    k: h.k,
    vectorLength: h.vectorLength,
  };
}

/** The protocol round (1–4) each server request opens. */
const REQUEST_ROUND: Readonly<Record<SecAggServerMessage['kind'], number>> = {
  'share-request': 1,
  'masked-input-request': 2,
  'consistency-request': 3,
  'unmask-request': 4,
};

function isBytes(x: unknown, length?: number): boolean {
  return x instanceof Uint8Array && (length === undefined || x.length === length);
}

function isId(x: unknown): boolean {
  return typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= SECAGG_CLIENTS_MAX;
}

function listOf(x: unknown, max: number, each: (e: Record<string, unknown>) => boolean): boolean {
  return (
    Array.isArray(x) &&
    x.length <= max &&
    x.every((e) => typeof e === 'object' && e !== null && each(e as Record<string, unknown>))
  );
}

/**
 * Shape check of a server message a tile received (the codec checks client messages only), so
 * that a hostile publisher gets a typed rejection instead of reaching the client state machine
 * with fields of the wrong type.
 * @throws {SecAggError} SECAGG_MALFORMED.
 */
export function validateServerMessage(m: unknown, k: number): SecAggServerMessage {
  const r = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
  const kind = r.kind as SecAggServerMessage['kind'];
  const ok =
    Object.hasOwn(REQUEST_ROUND, String(kind)) &&
    isBytes(r.session, SECAGG_SESSION_ID_BYTES) &&
    isId(r.to) &&
    (kind !== 'share-request' ||
      listOf(
        r.neighbours,
        k,
        (e) => isId(e.id) && isBytes(e.cPk) && isBytes(e.sPk) && isBytes(e.sigPk),
      )) &&
    (kind !== 'masked-input-request' ||
      listOf(
        r.ciphertexts,
        k,
        (e) => isId(e.from) && isBytes(e.ct) && (e.kemCt === undefined || isBytes(e.kemCt)),
      )) &&
    (kind !== 'consistency-request' || r.survivors instanceof Uint32Array) &&
    (kind !== 'unmask-request' ||
      (r.survivors instanceof Uint32Array &&
        r.dropped instanceof Uint32Array &&
        listOf(r.signatures, k + 1, (e) => isId(e.from) && isBytes(e.signature))));
  if (!ok) bad(SecAggErrorCode.Malformed, `server message "${String(kind)}" is ill-shaped`);
  return m as SecAggServerMessage;
}

/** One open session on a tile. */
interface TileSession {
  readonly config: SecAggSessionConfig;
  readonly client: SecAggClient;
  readonly input: Uint32Array;
  /** The pod key announced in the fit request; every later request must be signed with it. */
  readonly podKey: KeyObject;
  readonly expiresAt: number;
  /** Next round (1–4) the tile expects a request for. */
  nextRound: number;
  /** Fault injection: the stage at which this tile vanishes. */
  readonly vanishAt: SecAggStage | undefined;
}

/** What a tile trained, ready to be masked. */
export interface TileUpdate {
  /** Δ = trained − received parameters. */
  readonly delta: Float32Array;
  readonly loss: number;
  /** Aggregation weight before clamping to maxWeight (examples, or 1 under DP). */
  readonly weight: number;
}

/**
 * A tile's secure-aggregation sessions: opens one per secure fit request, answers the pod's
 * rounds 1–4, rejects anything else with a typed, counted error. Bounded: at most
 * {@link TILE_SECURE_SESSIONS_MAX} open sessions, expired by the clock.
 */
export class TileSecureSessions {
  private readonly open = new Map<string, TileSession>();
  private readonly closed = new Set<string>();
  /** Rejected messages by error code. */
  readonly rejectedByCode = new Map<string, number>();
  /** Sessions opened. */
  opened = 0;
  /** Weights clamped to the session's maxWeight. */
  clamped = 0;
  /** Stages this tile vanished at (fault injection). */
  vanished = 0;

  constructor(private readonly ctx: NodeContext) {}

  /** Rejections so far. */
  get rejected(): number {
    let s = 0;
    for (const v of this.rejectedByCode.values()) s += v;
    return s;
  }

  private count(e: SecAggError | PodSignatureError, what: string): void {
    this.rejectedByCode.set(e.code, (this.rejectedByCode.get(e.code) ?? 0) + 1);
    this.ctx.logger.warn(
      { node: this.ctx.name, code: e.code, details: e.details },
      `learn: secure ${what} rejected: ${e.message}`,
    );
  }

  private close(key: string): void {
    this.open.delete(key);
    this.closed.add(key);
    if (this.closed.size > TILE_CLOSED_SESSIONS_REMEMBERED_MAX) {
      const oldest = this.closed.values().next().value;
      if (oldest !== undefined) this.closed.delete(oldest);
    }
  }

  private expire(): void {
    const now = this.ctx.clock.monotonic();
    for (const [key, s] of this.open) if (now > s.expiresAt) this.close(key);
  }

  /**
   * Checks a secure fit request before training (so a replayed or hostile request costs no
   * training). Returns the session config, or undefined after counting the rejection.
   */
  admit(h: SecureFitHeader, paramCount: number): SecAggSessionConfig | undefined {
    this.expire();
    try {
      const config = checkSecureHeader(h, paramCount);
      if (this.open.has(h.session) || this.closed.has(h.session))
        bad(SecAggErrorCode.Replay, `session ${h.session} was already opened`, 'session');
      return config;
    } catch (e) {
      if (!isSecAggError(e)) throw e;
      this.count(e, 'fit request');
      return undefined;
    }
  }

  /**
   * Opens the session with the trained update: quantizes [w, w·Δ, w·loss], starts the client and
   * returns the encoded `advertise` message (or undefined when the tile refuses or vanishes).
   */
  start(
    h: SecureFitHeader,
    config: SecAggSessionConfig,
    u: TileUpdate,
    vanishAt: SecAggStage | undefined,
  ): Uint8Array | undefined {
    if (this.open.has(h.session) || this.closed.has(h.session)) return undefined;
    const x = new Float32Array(u.delta.length + 1);
    x.set(u.delta);
    x[u.delta.length] = u.loss;
    if (u.weight > h.maxWeight) this.clamped++;
    let input: Uint32Array;
    try {
      input = encodeWeightedUpdate(x, {
        weight: Math.min(u.weight, h.maxWeight),
        maxWeight: h.maxWeight,
        clipRange: h.clipRange,
        levels: h.levels,
        rng: this.ctx.rng,
      });
    } catch (e) {
      // A NaN/Inf update never leaves the tile: it sits this session out.
      if (!isSecAggError(e)) throw e;
      this.count(e, 'own update');
      return undefined;
    }
    let podKey: KeyObject;
    try {
      podKey = podPublicKey(h.podKey);
    } catch {
      this.count(
        new SecAggError(SecAggErrorCode.Malformed, 'secure.podKey does not import'),
        'fit request',
      );
      return undefined;
    }
    const client = new SecAggClient({ id: h.id, config, rng: this.ctx.rng });
    if (this.open.size >= TILE_SECURE_SESSIONS_MAX) {
      const oldest = this.open.keys().next().value;
      if (oldest !== undefined) this.close(oldest);
    }
    this.open.set(h.session, {
      config,
      client,
      input,
      podKey,
      // Twice the pass deadline: expiry only bounds memory, and a pod running late (CPU-bound
      // in an embedded fabric) fails its pass by its own deadlines, not by tiles forgetting.
      expiresAt: this.ctx.clock.monotonic() + 2 * h.sessionMs,
      nextRound: 1,
      vanishAt,
    });
    this.opened++;
    return encodeSecAggMessage(client.advertise());
  }

  /**
   * Answers one round 1–4 request. Returns the encoded reply, or undefined when the message is
   * rejected (counted), the client refuses (the session closes) or the tile vanishes.
   */
  handle(bytes: Uint8Array, headers?: MessageHeaders): Uint8Array | undefined {
    this.expire();
    let msg: SecAggServerMessage;
    let key: string;
    let s: TileSession | undefined;
    try {
      // The codec only uses the config to check client messages, which a tile never accepts.
      const any = this.open.values().next().value;
      if (any === undefined) bad(SecAggErrorCode.Replay, 'no open session');
      const decoded = decodeSecAggMessage(bytes, any.config);
      msg = validateServerMessage(decoded, any.config.n);
      key = hex(msg.session);
      s = this.open.get(key);
      if (s === undefined) bad(SecAggErrorCode.Replay, 'request of a session that is not open');
      // Only the pod that opened the session may drive it (session ids are visible on the bus).
      if (!podSigned(bytes, s.podKey, headers?.[POD_SIGNATURE_HEADER]))
        throw new PodSignatureError(`${msg.kind} is not signed by the session's pod`);
      const round = REQUEST_ROUND[msg.kind];
      if (round < s.nextRound) bad(SecAggErrorCode.Replay, `${msg.kind} replayed`);
      if (round > s.nextRound) bad(SecAggErrorCode.WrongState, `${msg.kind} before its turn`);
      if (msg.to !== s.client.id)
        bad(SecAggErrorCode.UnknownClient, `request for ${msg.to}, this tile is ${s.client.id}`);
    } catch (e) {
      if (!isSecAggError(e) && !(e instanceof PodSignatureError)) throw e;
      this.count(e, 'request');
      return undefined;
    }
    if (s.vanishAt === SECAGG_STAGES[REQUEST_ROUND[msg.kind]]) {
      this.vanished++;
      this.close(key);
      return undefined;
    }
    try {
      const reply = step(s, msg);
      s.nextRound++;
      if (msg.kind === 'unmask-request') this.close(key);
      return encodeSecAggMessage(reply);
    } catch (e) {
      // The client refused (inconsistent server view, too few neighbours, a tampered share):
      // its state machine has moved on, so it answers nothing more in this session.
      if (!isSecAggError(e)) throw e;
      this.count(e, `${msg.kind}`);
      this.close(key);
      return undefined;
    }
  }
}

function step(s: TileSession, m: SecAggServerMessage): SecAggClientMessage {
  switch (m.kind) {
    case 'share-request':
      return s.client.share(m);
    case 'masked-input-request':
      return s.client.maskInput(m, s.input);
    case 'consistency-request':
      return s.client.consistency(m);
    case 'unmask-request':
      return s.client.unmask(m);
  }
}

/** Settings of a pod's secure pass. */
export interface SecurePassSettings {
  readonly setting: 'full' | 'plus';
  readonly dropoutRate: number;
  /** Deadline of each round 1–4, ms (shrunk when the pass has less time). */
  readonly roundMs: number;
  /** maxWeight of the session (weights are clamped to it at the tiles). */
  readonly maxWeight: number;
}

/** One pass of a pod: the model to send, the time it has. */
export interface SecurePassRequest {
  readonly round: number;
  readonly step: number;
  readonly params: Float32Array;
  /** The whole pass: training plus rounds 1–4, ms. */
  readonly deadlineMs: number;
  readonly proximalMu: number;
  readonly nonce: string;
}

/** What a pod's secure pass produced. */
export interface SecurePassResult {
  /** params + the weighted mean delta (the unchanged params when the pass failed). */
  readonly params: Float32Array;
  /** Σ weights of the tiles in the sum. */
  readonly weight: number;
  readonly examples: number;
  /** Tiles whose masked input is in the sum (U3). */
  readonly tiles: number;
  /** Weighted mean training loss of those tiles. */
  readonly loss: number;
  /** Tiles left out (vanished before their masked input, or refused). */
  readonly late: number;
  /** Protocol messages rejected, by error code. */
  readonly rejectedByCode: Readonly<Record<string, number>>;
  /** Tiles that vanished, by the stage they vanished at. */
  readonly droppedByStage: Readonly<Record<SecAggStage, number>>;
  readonly counters: SecureCounters;
  readonly failure?: string;
}

function emptyStages(): Record<SecAggStage, number> {
  return { advertise: 0, share: 0, 'masked-input': 0, consistency: 0, unmask: 0 };
}

/**
 * Runs one secure-aggregation session as the pod (server) over its tiles. Never throws for
 * expected failures (too few tiles, an abort): see `failure`.
 */
export async function runSecurePass(
  ctx: NodeContext,
  s: SecurePassSettings,
  req: SecurePassRequest,
): Promise<SecurePassResult> {
  const run = new PodSession(ctx, s, req);
  return run.run();
}

/** One pod-side session: the server state machine driven over the transport. */
class PodSession {
  private readonly children: readonly string[];
  private readonly log: Logger;
  private readonly mine = new Map<string, number>();
  private readonly dropped = emptyStages();
  private server: SecAggServer | undefined;
  private config: SecAggSessionConfig | undefined;
  private readonly key = podSigningKey();
  private readonly end: number;

  constructor(
    private readonly ctx: NodeContext,
    private readonly s: SecurePassSettings,
    private readonly req: SecurePassRequest,
  ) {
    this.children = ctx.children;
    this.log = ctx.logger;
    this.end = ctx.clock.monotonic() + req.deadlineMs;
  }

  private result(
    fields: Partial<SecurePassResult> & Pick<SecurePassResult, 'late'>,
  ): SecurePassResult {
    const rejected: Record<string, number> = { ...(this.server?.rejected ?? {}) };
    for (const [c, v] of this.mine) rejected[c] = (rejected[c] ?? 0) + v;
    const failed = fields.failure !== undefined;
    const recovered = failed
      ? 0
      : this.dropped.share +
        this.dropped['masked-input'] +
        this.dropped.consistency +
        this.dropped.unmask;
    return {
      params: this.req.params,
      weight: 0,
      examples: 0,
      tiles: 0,
      loss: 0,
      rejectedByCode: rejected,
      droppedByStage: { ...this.dropped },
      counters: { sessions: 1, aborted: failed ? 1 : 0, recovered },
      ...fields,
    };
  }

  private fail(failure: string): SecurePassResult {
    this.log.warn(
      { node: this.ctx.name, round: this.req.round, step: this.req.step, failure },
      'learn: secure aggregation of this pod pass aborted; the pod contributes nothing this pass',
    );
    return this.result({ late: this.children.length, failure });
  }

  async run(): Promise<SecurePassResult> {
    const n = this.children.length;
    if (n < SECURE_POD_TILES_MIN)
      return this.fail(`pod has ${n} tiles; secure aggregation needs ${SECURE_POD_TILES_MIN}`);
    const vectorLength = this.req.params.length + 2;
    // The masked vector is the largest message; it must fit one transport message.
    if (vectorLength * 4 + 4096 > TRANSPORT_MESSAGE_BYTES_MAX)
      return this.fail(`a masked vector of ${vectorLength} words exceeds one transport message`);
    const header = this.open(n, vectorLength);
    const server = this.server as SecAggServer;
    // Round 0 rides on the fit request: the tiles train, then advertise their keys.
    const roundsMs = SECURE_PROTOCOL_ROUNDS * Math.min(this.s.roundMs, this.req.deadlineMs / 5);
    const trainMs = Math.max(SECURE_ROUND_MS_MIN, Math.floor(this.req.deadlineMs - roundsMs));
    await this.collect(
      this.children.map((_, i) => i + 1),
      (id) => [fitSubject(this.nameOf(id)), this.fitRequest(header, id, trainMs)],
      trainMs,
      'advertise',
    );
    let requests: Map<number, SecAggServerMessage>;
    try {
      requests = server.closeAdvertise();
    } catch (e) {
      return this.abort(e);
    }
    for (let round = 1; round <= SECURE_PROTOCOL_ROUNDS; round++) {
      const left = this.end - this.ctx.clock.monotonic();
      // Each remaining round gets an equal share of what is left of the pass.
      const timeout = Math.max(
        SECURE_ROUND_MS_MIN,
        Math.floor(left / (SECURE_PROTOCOL_ROUNDS + 1 - round)),
      );
      const current = requests;
      const stage = SECAGG_STAGES[round] as SecAggStage;
      await this.collect(
        [...current.keys()],
        (id) => {
          const data = encodeSecAggMessage(current.get(id) as SecAggServerMessage);
          return [secureSubject(this.nameOf(id)), data, this.key.sign(data)];
        },
        timeout,
        stage,
      );
      this.log.debug(
        { node: this.ctx.name, stage, asked: current.size, dropped: this.dropped[stage] },
        'learn: secure round collected',
      );
      try {
        if (round === SECURE_PROTOCOL_ROUNDS)
          return this.finish(server.closeUnmask(), header.levels, header.clipRange);
        requests =
          round === 1
            ? server.closeShare()
            : round === 2
              ? server.closeMaskedInput()
              : server.closeConsistency();
      } catch (e) {
        return this.abort(e);
      }
    }
    return this.fail('unreachable');
  }

  /** Chooses (mode, k, t), creates the server and returns the session's public parameters. */
  private open(n: number, vectorLength: number): Omit<SecureFitHeader, 'id'> {
    const p = choosePodSecAggParams(n, this.s.setting, this.s.dropoutRate);
    if (p.relaxed)
      this.log.debug(
        { node: this.ctx.name, n, t: p.t },
        'learn: small pod, full SecAgg with a majority threshold',
      );
    const sessionId = this.ctx.rng.fill(new Uint8Array(SECAGG_SESSION_ID_BYTES));
    const config: SecAggSessionConfig = {
      sessionId,
      mode: p.mode,
      n,
      t: p.t,
      k: p.k,
      vectorLength,
    };
    this.config = config;
    this.server = new SecAggServer({ config, rng: this.ctx.rng, logger: this.log });
    return {
      session: hex(sessionId),
      mode: p.mode,
      n,
      t: p.t,
      k: p.k,
      vectorLength,
      levels: quantizationLevelsFor(n),
      clipRange: SECAGG_CLIP_RANGE_DEFAULT,
      maxWeight: this.s.maxWeight,
      sessionMs: this.req.deadlineMs,
      podKey: this.key.publicX,
    };
  }

  private fitRequest(header: Omit<SecureFitHeader, 'id'>, id: number, trainMs: number): Uint8Array {
    return encodeFitRequest(
      {
        round: this.req.round,
        step: this.req.step,
        nonce: this.req.nonce,
        deadlineMs: trainMs,
        proximalMu: this.req.proximalMu,
        secure: { ...header, id },
      },
      this.req.params,
    );
  }

  private nameOf(id: number): string {
    return this.children[id - 1] as string;
  }

  private abort(e: unknown): SecurePassResult {
    if (!isSecAggError(e)) throw e;
    return this.fail(`secure aggregation aborted: ${e.code}: ${e.message}`);
  }

  /**
   * Sends one request per id, waits for the replies until `timeoutMs`, and feeds each accepted
   * reply to the server. Ids that do not answer in time are counted as dropped at `stage`.
   */
  private async collect(
    ids: readonly number[],
    build: (id: number) => [string, Uint8Array, string?],
    timeoutMs: number,
    stage: SecAggStage,
  ): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        const [subject, data, signature] = build(id);
        let reply: Uint8Array;
        try {
          const headers = signature === undefined ? {} : { [POD_SIGNATURE_HEADER]: signature };
          reply = (await this.ctx.transport.request(subject, data, { timeoutMs, headers })).data;
        } catch (e) {
          if (
            isGenesisError(e, TransportErrorCode.Timeout) ||
            isGenesisError(e, TransportErrorCode.NoResponders)
          ) {
            this.dropped[stage]++;
            return;
          }
          throw e;
        }
        if (!this.accept(id, reply)) this.dropped[stage]++;
      }),
    );
  }

  /** Decodes one tile's reply and hands it to the server; false when it is rejected. */
  private accept(id: number, bytes: Uint8Array): boolean {
    const config = this.config as SecAggSessionConfig;
    let msg: ReturnType<typeof decodeSecAggMessage>;
    try {
      msg = decodeSecAggMessage(bytes, config);
      // Replies come on the inbox of the request to this tile: a message naming another id
      // is an impersonation attempt (or a confused tile), never accepted.
      if (!('from' in msg))
        bad(SecAggErrorCode.Malformed, `tile ${this.nameOf(id)} answered with a server message`);
      if (msg.from !== id)
        bad(SecAggErrorCode.UnknownClient, `tile ${this.nameOf(id)} (id ${id}) claims ${msg.from}`);
    } catch (e) {
      if (!isSecAggError(e)) throw e;
      this.mine.set(e.code, (this.mine.get(e.code) ?? 0) + 1);
      this.log.warn(
        { node: this.ctx.name, tile: this.nameOf(id), code: e.code },
        `learn: secure reply rejected: ${e.message}`,
      );
      return false;
    }
    try {
      // The server checks session, round, sender set and duplicates; it counts and logs.
      (this.server as SecAggServer).receive(msg);
      return true;
    } catch (e) {
      if (!isSecAggError(e)) throw e;
      return false;
    }
  }

  private finish(sum: Uint32Array, levels: number, clipRange: number): SecurePassResult {
    const server = this.server as SecAggServer;
    const survivors = server.survivors.length;
    const x = dequantizeSum(sum, survivors, clipRange, levels);
    const d = this.req.params.length;
    const wsum = x[0] as number;
    const late = this.children.length - survivors;
    if (!(wsum > 0)) return this.fail('the secure sum carries no weight');
    const params = new Float32Array(d);
    for (let i = 0; i < d; i++)
      params[i] = (this.req.params[i] as number) + (x[i + 1] as number) / wsum;
    const weight = wsum * this.s.maxWeight;
    return this.result({
      params,
      weight,
      examples: Math.round(weight),
      tiles: survivors,
      loss: (x[d + 1] as number) / wsum,
      late,
    });
  }
}
