/**
 * The server state machine of secure aggregation (Bonawitz et al. 2017, Fig. 4, "Server" side,
 * with SecAgg+ neighbourhoods). The server receives client messages one by one with
 * {@link SecAggServer.receive} (which rejects malformed, replayed, duplicate and unknown-sender
 * messages with typed errors and counts them) and closes each round with `close*()`, which
 * returns the requests for the next round or throws a SECAGG_TOO_FEW_* error: the round aborts.
 */
import { assert, type Logger, type Rng } from '../../core/index.ts';
import { HYBRID_KEM_CIPHERTEXT_BYTES } from '../../trust/index.ts';
import { SecAggError, SecAggErrorCode, type SecAggErrorCodeValue } from './errors.ts';
import { LagrangeCache, shamirCombine, shamirShareLength } from './field.ts';
import { x25519PublicOfRaw } from './keys.ts';
import { SECAGG_KEY_BYTES, SECAGG_SIGNATURE_BYTES } from './limits.ts';
import { MaskJobBuilder, maskThreadsFor, runMaskJob, wipeMaskJob } from './mask-job.ts';
import {
  type AdvertiseMsg,
  type ConsistencyRequest,
  type MaskedInputRequest,
  SECAGG_CLIENT_KINDS,
  SECAGG_SHARE_CIPHERTEXT_BYTES,
  type SecAggClientMessage,
  type SecAggSessionConfig,
  type ShareMsg,
  type ShareRequest,
  type UnmaskMsg,
  type UnmaskRequest,
  validateClientMessage,
} from './messages.ts';
import { bytePacker, sortedIndexOf } from './packed.ts';
import { buildNeighbourhoods } from './params.ts';
import { MaskAccumulator } from './prg.ts';

/** Stands in for a masked input already added to the running sum (streaming option). */
const STREAMED_Y = new Uint32Array(0);
/** Stands in for the per-neighbour lists of a round-1 or round-4 message once packed. */
const PACKED: readonly never[] = Object.freeze([]);
const SHARE_WORDS = shamirShareLength(SECAGG_KEY_BYTES);

/**
 * A client's round-1 message, packed on receipt: recipient ids and their ciphertexts in one
 * array each (instead of an object and a byte array per neighbour).
 */
interface PackedShares {
  readonly to: Uint32Array;
  /** to.length × SECAGG_SHARE_CIPHERTEXT_BYTES. */
  readonly ct: Uint8Array;
  /** Hybrid channel only: to.length × HYBRID_KEM_CIPHERTEXT_BYTES. */
  readonly kemCt?: Uint8Array;
}

/** A client's round-4 message, packed on receipt: share owners, then the share words in order. */
interface PackedUnmask {
  readonly selfOf: Uint32Array;
  readonly keyOf: Uint32Array;
  /** (selfOf.length + keyOf.length) × SHARE_WORDS: self shares, then key shares. */
  readonly words: Uint32Array;
}

/**
 * The first t shares of each client's secret, by holder id ascending, in compressed-row form:
 * owner u's shares are entries start[u] … start[u + 1] − 1 (holder ids and share words).
 */
interface ShareIndex {
  readonly start: Uint32Array;
  readonly holders: Uint32Array;
  readonly words: Uint32Array;
}

/**
 * The requests of a round, built when read: a Map whose entries are made on demand from the
 * server's packed state, so the n requests (n·k ciphertexts or keys, one object each) never all
 * exist at once — a simulation reads and forgets them one client at a time. Reading an entry
 * twice builds two equal requests. `set` stores the given request (e.g. a test tampering with
 * one); iteration follows the insertion order, as a Map's.
 */
class LazyRequests<V> extends Map<number, V> {
  private readonly ids = new Set<number>();
  private readonly given = new Map<number, V>();
  private build: ((id: number) => V) | undefined;

  constructor(ids: Iterable<number>, build: (id: number) => V) {
    super();
    for (const id of ids) this.ids.add(id);
    this.build = build;
  }

  override get size(): number {
    return this.ids.size;
  }

  override has(id: number): boolean {
    return this.ids.has(id);
  }

  override get(id: number): V | undefined {
    if (!this.ids.has(id)) return undefined;
    return this.given.get(id) ?? this.build?.(id);
  }

  override set(id: number, value: V): this {
    // Map's constructor calls set() before this class's fields exist; it is given no entries.
    this.ids?.add(id);
    this.given?.set(id, value);
    return this;
  }

  override delete(id: number): boolean {
    this.given.delete(id);
    return this.ids.delete(id);
  }

  override clear(): void {
    this.ids.clear();
    this.given.clear();
    // Lets the packed state go with the last reference to it.
    this.build = undefined;
  }

  override keys(): MapIterator<number> {
    return this.ids.values() as unknown as MapIterator<number>;
  }

  override values(): MapIterator<V> {
    return (function* (m: LazyRequests<V>) {
      for (const [, v] of m.lazyEntries()) yield v;
    })(this) as unknown as MapIterator<V>;
  }

  override entries(): MapIterator<[number, V]> {
    return this.lazyEntries() as unknown as MapIterator<[number, V]>;
  }

  override [Symbol.iterator](): MapIterator<[number, V]> {
    return this.entries();
  }

  override forEach(
    cb: (value: V, key: number, map: Map<number, V>) => void,
    thisArg?: unknown,
  ): void {
    for (const [k, v] of this.lazyEntries()) cb.call(thisArg, v, k, this);
  }

  /** Entries built one at a time as the iteration reaches them (iterating stays lazy). */
  private *lazyEntries(): Generator<[number, V]> {
    for (const id of this.ids) yield [id, this.get(id) as V];
  }
}

/** Options of {@link SecAggServer}. */
export interface SecAggServerOptions {
  readonly config: SecAggSessionConfig;
  /** Randomness for the SecAgg+ graph. */
  readonly rng: Rng;
  readonly logger?: Logger;
  /**
   * Streaming: add each accepted masked input y_u into a running sum on receipt and keep only
   * its sender (not the vector), and release round-1 share messages once routed. The server only
   * ever needs Σ y_u (Bonawitz et al. 2017, Fig. 4, round 4), so memory stays O(vector + n·k)
   * instead of O(n·vector). Default false (every message kept, as before).
   */
  readonly streamMaskedInputs?: boolean;
  /**
   * Threads that regenerate masks in {@link SecAggServer.closeUnmask} (this one plus pool
   * workers, at most SECAGG_MASK_THREADS_MAX). Default: one per core when the job is large.
   * The sum does not depend on it.
   */
  readonly maskThreads?: number;
}

/** Counters of the unmasking round. */
export interface SecAggUnmaskStats {
  readonly pairMasksRecovered: number;
  readonly selfMasksRemoved: number;
}

function abort(
  code: SecAggErrorCodeValue,
  message: string,
  details: Record<string, unknown> = {},
): never {
  throw new SecAggError(code, message, { details });
}

/** The server of one secure-aggregation session. */
export class SecAggServer {
  private readonly config: SecAggSessionConfig;
  private readonly rng: Rng;
  private readonly logger: Logger | undefined;
  private readonly maskThreads: number | undefined;
  private round = 0;
  private readonly inbox: Map<number, SecAggClientMessage>[] = [
    new Map(),
    new Map(),
    new Map(),
    new Map(),
    new Map(),
  ];
  private readonly rejectedByCode = new Map<string, number>();
  private keys = new Map<number, AdvertiseMsg>();
  private graph = new Map<number, number[]>();
  /** N(id) ascending, built once per client (rounds 1 and 4 check every message against it). */
  private readonly nbSorted = new Map<number, Uint32Array>();
  /** Round-1 messages, packed (by sender, in arrival order). */
  private readonly sharesIn = new Map<number, PackedShares>();
  /** Round-4 messages, packed (by sender). */
  private readonly unmaskIn = new Map<number, PackedUnmask>();
  private u2 = new Set<number>();
  private u3 = new Uint32Array(0);
  private u3set = new Set<number>();
  private unmaskStats: SecAggUnmaskStats = { pairMasksRecovered: 0, selfMasksRemoved: 0 };
  /** Running Σ y_u of accepted masked inputs (streaming option only). */
  private readonly maskedSum: MaskAccumulator | undefined;

  constructor(options: SecAggServerOptions) {
    this.config = options.config;
    this.rng = options.rng;
    this.logger = options.logger;
    this.maskThreads = options.maskThreads;
    this.maskedSum =
      options.streamMaskedInputs === true
        ? new MaskAccumulator(this.config.vectorLength)
        : undefined;
  }

  /** Messages rejected so far, by error code. */
  get rejected(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.rejectedByCode);
  }

  /** Counters of the last unmasking. */
  get stats(): SecAggUnmaskStats {
    return this.unmaskStats;
  }

  /**
   * 32-bit words of client vectors this server holds: every kept masked input, plus the running
   * sum when streaming. Lets tests check that streaming memory does not grow with n.
   */
  get retainedVectorWords(): number {
    let words = this.maskedSum?.words ?? 0;
    for (const m of this.inbox[2]?.values() ?? [])
      if (m.kind === 'masked-input') words += m.y.length;
    return words;
  }

  /** The neighbourhoods (set after round 0). */
  get neighbourhoods(): ReadonlyMap<number, readonly number[]> {
    return this.graph;
  }

  /** The clients whose inputs are in the sum (U3; set after round 2). */
  get survivors(): readonly number[] {
    return [...this.u3];
  }

  private reject(e: SecAggError): never {
    this.rejectedByCode.set(e.code, (this.rejectedByCode.get(e.code) ?? 0) + 1);
    this.logger?.warn(
      { code: e.code, details: e.details },
      `secagg: rejected message: ${e.message}`,
    );
    throw e;
  }

  private expectedSenders(round: number): ((id: number) => boolean) | undefined {
    if (round === 0) return undefined;
    if (round === 1) return (id) => this.keys.has(id);
    if (round === 2) return (id) => this.u2.has(id);
    if (round === 3) return (id) => this.u3set.has(id);
    return (id) => this.inbox[3]?.has(id) === true;
  }

  /**
   * Accepts one client message of the current round.
   * @throws {SecAggError} SECAGG_MALFORMED, SECAGG_REPLAY (other session or round), SECAGG_DUPLICATE,
   * SECAGG_UNKNOWN_CLIENT (not in the round's set); each is counted in {@link rejected}.
   */
  receive(message: unknown): void {
    let msg: SecAggClientMessage;
    try {
      msg = validateClientMessage(message, this.config);
    } catch (e) {
      this.reject(e as SecAggError);
    }
    if (!Buffer.from(msg.session).equals(Buffer.from(this.config.sessionId))) {
      this.reject(
        new SecAggError(SecAggErrorCode.Replay, 'message of another session', {
          details: { from: msg.from },
        }),
      );
    }
    const round = SECAGG_CLIENT_KINDS.indexOf(msg.kind);
    if (round !== this.round) {
      this.reject(
        new SecAggError(SecAggErrorCode.Replay, `${msg.kind} message during round ${this.round}`, {
          details: { from: msg.from, round },
        }),
      );
    }
    const allowed = this.expectedSenders(round);
    if (allowed !== undefined && !allowed(msg.from)) {
      this.reject(
        new SecAggError(
          SecAggErrorCode.UnknownClient,
          `client ${msg.from} is not in round ${round}`,
          { details: { from: msg.from } },
        ),
      );
    }
    const inbox = this.inbox[round] as Map<number, SecAggClientMessage>;
    if (inbox.has(msg.from))
      this.reject(
        new SecAggError(SecAggErrorCode.Duplicate, `second ${msg.kind} from ${msg.from}`, {
          details: { from: msg.from },
        }),
      );
    try {
      if (msg.kind === 'share') this.checkShare(msg);
      if (msg.kind === 'unmask') this.checkUnmask(msg);
    } catch (e) {
      this.reject(e as SecAggError);
    }
    if (this.maskedSum !== undefined && msg.kind === 'masked-input') {
      // Streaming: accepted, so it is in U3 (closeMaskedInput takes every sender of round 2).
      this.maskedSum.addVector(msg.y);
      inbox.set(msg.from, { ...msg, y: STREAMED_Y });
      return;
    }
    // Shares and unmasking shares are kept packed (one typed array per kind and sender) rather
    // than as an object and a small typed array per neighbour: the server holds n·k of them.
    if (msg.kind === 'share') {
      this.sharesIn.set(msg.from, packShares(msg));
      inbox.set(msg.from, { ...msg, shares: PACKED });
      return;
    }
    if (msg.kind === 'unmask') {
      this.unmaskIn.set(msg.from, packUnmask(msg));
      inbox.set(msg.from, { ...msg, selfShares: PACKED, keyShares: PACKED });
      return;
    }
    inbox.set(msg.from, msg);
  }

  /** N(id) ascending, built once per client. */
  private neighboursOf(id: number): Uint32Array {
    let s = this.nbSorted.get(id);
    if (s === undefined) {
      // The graph is built over the advertisers (closeAdvertise), so every neighbour has keys.
      s = Uint32Array.from(this.graph.get(id) ?? []).sort();
      this.nbSorted.set(id, s);
    }
    return s;
  }

  private checkShare(msg: ShareMsg): void {
    const nbs = this.neighboursOf(msg.from);
    const seen = new Uint8Array(nbs.length);
    let count = 0;
    for (const { to } of msg.shares) {
      const i = sortedIndexOf(nbs, to);
      if (i === -1 || seen[i] === 1)
        abort(
          SecAggErrorCode.Malformed,
          `share from ${msg.from} to ${to}: not a neighbour or repeated`,
        );
      seen[i] = 1;
      count++;
    }
    if (count !== nbs.length)
      abort(
        SecAggErrorCode.Malformed,
        `client ${msg.from} shared with ${count} of ${nbs.length} neighbours`,
      );
  }

  private checkUnmask(msg: UnmaskMsg): void {
    const nbs = this.neighboursOf(msg.from);
    // One flag per neighbour, plus one for the sender's own b share.
    const seen = new Uint8Array(nbs.length + 1);
    for (const { of } of msg.selfShares) {
      // A survivor may reveal its share of its own b (it holds one; see SecAggClient.share).
      const i = of === msg.from ? nbs.length : sortedIndexOf(nbs, of);
      if (i === -1 || !this.u3set.has(of) || seen[i] === 1)
        abort(SecAggErrorCode.Malformed, `self-mask share of ${of} from ${msg.from} not expected`);
      seen[i] = 1;
    }
    for (const { of } of msg.keyShares) {
      const i = sortedIndexOf(nbs, of);
      if (i === -1 || !this.u2.has(of) || this.u3set.has(of) || seen[i] === 1)
        abort(SecAggErrorCode.Malformed, `key share of ${of} from ${msg.from} not expected`);
      seen[i] = 1;
    }
  }

  private close(round: number): Map<number, SecAggClientMessage> {
    if (this.round !== round)
      abort(SecAggErrorCode.WrongState, `server is at round ${this.round}, not ${round}`);
    const inbox = this.inbox[round] as Map<number, SecAggClientMessage>;
    if (inbox.size < this.config.t) {
      this.round = -1;
      abort(
        SecAggErrorCode.TooFewClients,
        `round ${round}: ${inbox.size} clients answered, threshold ${this.config.t}`,
        { round, answered: inbox.size },
      );
    }
    this.round = round + 1;
    return inbox;
  }

  /** Ends round 0: builds the neighbourhood graph over U1 and returns each client's roster. */
  closeAdvertise(): Map<number, ShareRequest> {
    const inbox = this.close(0);
    for (const [id, m] of inbox) this.keys.set(id, m as AdvertiseMsg);
    const ids = [...this.keys.keys()].sort((a, b) => a - b);
    const k =
      this.config.mode === 'full' ? ids.length - 1 : Math.min(this.config.k, ids.length - 1);
    this.graph = buildNeighbourhoods(
      ids,
      k % 2 === 0 || k === ids.length - 1 ? k : k - 1,
      this.rng,
    );
    // Built when read: n rosters of k key triples need not all exist at once. A roster's keys
    // are copied into one array (views into it), so it crosses threads as one buffer, not 3k.
    const { keys, graph } = this;
    const sessionId = this.config.sessionId;
    return new LazyRequests<ShareRequest>(ids, (id) => {
      const nbs = (graph.get(id) ?? []).map((v) => keys.get(v) as AdvertiseMsg);
      let bytes = 0;
      for (const m of nbs) bytes += m.cPk.length + m.sPk.length + m.sigPk.length;
      const view = bytePacker(bytes);
      return {
        kind: 'share-request',
        session: sessionId,
        to: id,
        neighbours: nbs.map((m) => ({
          id: m.from,
          cPk: view(m.cPk),
          sPk: view(m.sPk),
          sigPk: view(m.sigPk),
        })),
      };
    });
  }

  /** Ends round 1: routes each encrypted share pair to its holder (only from senders in U2). */
  closeShare(): Map<number, MaskedInputRequest> {
    const inbox = this.close(1);
    this.u2 = new Set(inbox.keys());
    const CT = SECAGG_SHARE_CIPHERTEXT_BYTES;
    const KEM = HYBRID_KEM_CIPHERTEXT_BYTES;
    const { n, sessionId } = this.config;
    // Routing table in compressed rows: recipient `to`'s ciphertexts are entries start[to] …
    // start[to + 1] − 1, each (sender, index in the sender's packed message), in sender arrival
    // order. A request copies its ciphertexts into one array when it is read (views into it:
    // it crosses threads as one buffer); the packed messages go with the returned map.
    const senders = [...inbox.keys()];
    const packed = senders.map((from) => this.sharesIn.get(from) as PackedShares);
    const count = new Uint32Array(n + 2);
    for (const p of packed)
      for (const to of p.to) if (this.u2.has(to)) count[to] = (count[to] as number) + 1;
    const start = new Uint32Array(n + 2);
    for (let u = 1; u <= n + 1; u++) start[u] = (start[u - 1] as number) + (count[u - 1] as number);
    const total = start[n + 1] as number;
    const srcSender = new Uint32Array(total);
    const srcIndex = new Uint32Array(total);
    const filled = new Uint32Array(n + 2);
    for (const [s, p] of packed.entries())
      for (const [j, to] of p.to.entries()) {
        if (!this.u2.has(to)) continue;
        const at = (start[to] as number) + (filled[to] as number);
        filled[to] = (filled[to] as number) + 1;
        srcSender[at] = s;
        srcIndex[at] = j;
      }
    this.sharesIn.clear();
    if (this.maskedSum !== undefined) inbox.clear();
    return new LazyRequests<MaskedInputRequest>(this.u2, (to) => {
      const a = start[to] as number;
      const c = (start[to + 1] as number) - a;
      const ct = new Uint8Array(c * CT);
      const hybrid = packed[0]?.kemCt !== undefined;
      const kemCt = hybrid ? new Uint8Array(c * KEM) : undefined;
      const ciphertexts: { from: number; ct: Uint8Array; kemCt?: Uint8Array }[] = [];
      for (let i = 0; i < c; i++) {
        const s = srcSender[a + i] as number;
        const p = packed[s] as PackedShares;
        const j = srcIndex[a + i] as number;
        ct.set(p.ct.subarray(j * CT, (j + 1) * CT), i * CT);
        const view = ct.subarray(i * CT, (i + 1) * CT);
        if (kemCt !== undefined && p.kemCt !== undefined) {
          kemCt.set(p.kemCt.subarray(j * KEM, (j + 1) * KEM), i * KEM);
          ciphertexts.push({
            from: senders[s] as number,
            ct: view,
            kemCt: kemCt.subarray(i * KEM, (i + 1) * KEM),
          });
        } else ciphertexts.push({ from: senders[s] as number, ct: view });
      }
      return { kind: 'masked-input-request', session: sessionId, to, ciphertexts };
    });
  }

  /** Ends round 2: fixes U3 and asks its members to sign it. */
  closeMaskedInput(): Map<number, ConsistencyRequest> {
    const inbox = this.close(2);
    this.u3 = Uint32Array.from([...inbox.keys()].sort((a, b) => a - b));
    this.u3set = new Set(this.u3);
    const out = new Map<number, ConsistencyRequest>();
    for (const to of this.u3)
      out.set(to, {
        kind: 'consistency-request',
        session: this.config.sessionId,
        to,
        survivors: this.u3,
      });
    return out;
  }

  /** Ends round 3: sends U3, each client's dropped neighbours and its neighbours' signatures. */
  closeConsistency(): Map<number, UnmaskRequest> {
    const inbox = this.close(3);
    const { sessionId } = this.config;
    const SIG = SECAGG_SIGNATURE_BYTES;
    // Signatures by signer, packed; each request copies its own into one array when read
    // (views into it), so neither the n requests nor their n·k entries exist all at once (full
    // SecAgg sends n − 1 signatures to each of n clients).
    const signed = new Set<number>();
    const sigs = new Uint8Array((this.config.n + 1) * SIG);
    for (const [v, m] of inbox)
      if (m.kind === 'consistency') {
        sigs.set(m.signature, v * SIG);
        signed.add(v);
      }
    const { graph, u2, u3set, u3 } = this;
    return new LazyRequests<UnmaskRequest>(inbox.keys(), (to) => {
      const nbs = graph.get(to) ?? [];
      const dropped = Uint32Array.from(nbs.filter((v) => u2.has(v) && !u3set.has(v)));
      // The recipient's own signature counts towards its t (Bonawitz et al. Fig. 4, round 4:
      // the server sends every σ'_v of U3); without it, exactly t signers could never unmask.
      const from = signed.has(to) ? [to] : [];
      for (const v of nbs) if (v !== to && signed.has(v)) from.push(v);
      const packed = new Uint8Array(from.length * SIG);
      const signatures = from.map((v, i) => {
        packed.set(sigs.subarray(v * SIG, (v + 1) * SIG), i * SIG);
        return { from: v, signature: packed.subarray(i * SIG, (i + 1) * SIG) };
      });
      return { kind: 'unmask-request', session: sessionId, to, survivors: u3, dropped, signatures };
    });
  }

  /**
   * Indexes round-4 shares by the client they belong to, keeping only the first t holders (in
   * holder order) of each, in compressed-row form (two passes over the packed messages: count,
   * then copy). Only t are ever combined.
   */
  private indexShares(responders: Map<number, UnmaskMsg>, self: boolean): ShareIndex {
    const { t, n } = this.config;
    const holders = [...responders.keys()].sort((a, b) => a - b);
    const count = new Uint32Array(n + 2);
    const ofsOf = (v: number): Uint32Array => {
      const p = this.unmaskIn.get(v) as PackedUnmask;
      return self ? p.selfOf : p.keyOf;
    };
    for (const v of holders)
      for (const of of ofsOf(v))
        if ((count[of] as number) < t) count[of] = (count[of] as number) + 1;
    const start = new Uint32Array(n + 2);
    for (let u = 1; u <= n + 1; u++) start[u] = (start[u - 1] as number) + (count[u - 1] as number);
    const total = start[n + 1] as number;
    const out: ShareIndex = {
      start,
      holders: new Uint32Array(total),
      words: new Uint32Array(total * SHARE_WORDS),
    };
    const filled = new Uint32Array(n + 1);
    for (const v of holders) {
      const p = this.unmaskIn.get(v) as PackedUnmask;
      const ofs = self ? p.selfOf : p.keyOf;
      const base = self ? 0 : p.selfOf.length;
      for (const [j, of] of ofs.entries()) {
        const f = filled[of] as number;
        if (f >= (count[of] as number)) continue;
        const at = (start[of] as number) + f;
        out.holders[at] = v;
        out.words.set(
          p.words.subarray((base + j) * SHARE_WORDS, (base + j + 1) * SHARE_WORDS),
          at * SHARE_WORDS,
        );
        filled[of] = f + 1;
      }
    }
    return out;
  }

  /** The first t shares of `of` (in holder order) and their holders, or an abort. */
  private sharesOf(of: number, index: ShareIndex): { xs: number[]; shares: Uint32Array[] } {
    const from = index.start[of] as number;
    const have = (index.start[of + 1] as number) - from;
    if (have < this.config.t) {
      this.round = -1;
      abort(
        SecAggErrorCode.TooFewShares,
        `only ${have} shares of client ${of}, threshold ${this.config.t}`,
        { of, shares: have },
      );
    }
    const xs: number[] = [];
    const shares: Uint32Array[] = [];
    for (let i = from; i < from + have; i++) {
      xs.push(index.holders[i] as number);
      shares.push(index.words.subarray(i * SHARE_WORDS, (i + 1) * SHARE_WORDS));
    }
    return { xs, shares };
  }

  /**
   * Ends round 4: Σ_{u∈U3} y_u minus every survivor's self-mask PRG(b_u) and, for every client
   * that dropped after sharing, its pairwise masks with surviving neighbours (rebuilt from
   * s_u^SK). Returns the exact sum Σ_{u∈U3} x_u mod 2^32.
   * @throws {SecAggError} SECAGG_TOO_FEW_CLIENTS / SECAGG_TOO_FEW_SHARES: the round aborts.
   */
  closeUnmask(): Uint32Array {
    const responders = this.close(4) as Map<number, UnmaskMsg>;
    // Most holder sets are the first t + 1 responders minus the client being rebuilt.
    const lagrange = new LagrangeCache(
      [...responders.keys()].sort((x, y) => x - y).slice(0, this.config.t + 1),
    );
    const lambdaOf = (xs: number[]): Float64Array => lagrange.get(xs);
    let acc: MaskAccumulator;
    if (this.maskedSum !== undefined) acc = this.maskedSum;
    else {
      acc = new MaskAccumulator(this.config.vectorLength);
      for (const u of this.u3) {
        const m = this.inbox[2]?.get(u);
        assert(m?.kind === 'masked-input', 'every survivor sent a masked input');
        acc.addVector(m.y);
      }
    }
    // Shares are combined here; the masks they unlock go into one job that runs on several
    // threads (mask-job.ts). Each survivor's masking key is imported once per thread.
    const job = new MaskJobBuilder(this.config.sessionId);
    const selfIndex = this.indexShares(responders, true);
    const keyIndex = this.indexShares(responders, false);
    let selfMasksRemoved = 0;
    let pairMasksRecovered = 0;
    for (const u of this.u3) {
      const { xs, shares } = this.sharesOf(u, selfIndex);
      const b = shamirCombine(shares, lambdaOf(xs), SECAGG_KEY_BYTES);
      job.addSeed(b, -1);
      b.fill(0);
      selfMasksRemoved++;
    }
    for (const u of this.u2) {
      if (this.u3set.has(u)) continue;
      const survivingNbs = (this.graph.get(u) ?? []).filter((v) => this.u3set.has(v));
      if (survivingNbs.length === 0) continue;
      const { xs, shares } = this.sharesOf(u, keyIndex);
      const sk = shamirCombine(shares, lambdaOf(xs), SECAGG_KEY_BYTES);
      const sPk = (this.keys.get(u) as AdvertiseMsg).sPk;
      // The public key of the rebuilt d must equal the advertised one, or the shares lied.
      if (!Buffer.from(x25519PublicOfRaw(sk)).equals(Buffer.from(sPk))) {
        sk.fill(0);
        this.round = -1;
        abort(
          SecAggErrorCode.TooFewShares,
          `shares of client ${u} do not rebuild its advertised key`,
          { of: u },
        );
      }
      const priv = job.addPrivate(sk);
      sk.fill(0);
      for (const v of survivingNbs) {
        const pub = job.addPublic(v, (this.keys.get(v) as AdvertiseMsg).sPk);
        // y_v holds +PRG(s_{v,u}) when v < u: remove it with the opposite sign.
        job.addPair(priv, pub, u, v, v < u ? -1 : 1);
        pairMasksRecovered++;
      }
    }
    // The shares are combined; the packed copies are not needed (and hold secrets' shares).
    selfIndex.words.fill(0);
    keyIndex.words.fill(0);
    for (const p of this.unmaskIn.values()) p.words.fill(0);
    this.unmaskIn.clear();
    const masks = job.build();
    try {
      runMaskJob(acc, masks, maskThreadsFor(job.size, this.config.vectorLength, this.maskThreads));
    } finally {
      wipeMaskJob(masks);
    }
    this.unmaskStats = { pairMasksRecovered, selfMasksRemoved };
    return acc.result();
  }
}

/** Packs a validated round-1 message (its recipients and ciphertexts, in order). */
function packShares(msg: ShareMsg): PackedShares {
  const CT = SECAGG_SHARE_CIPHERTEXT_BYTES;
  const KEM = HYBRID_KEM_CIPHERTEXT_BYTES;
  const m = msg.shares.length;
  const to = new Uint32Array(m);
  const ct = new Uint8Array(m * CT);
  const hybrid = m > 0 && msg.shares[0]?.kemCt !== undefined;
  const kemCt = hybrid ? new Uint8Array(m * KEM) : undefined;
  for (const [j, sh] of msg.shares.entries()) {
    to[j] = sh.to;
    ct.set(sh.ct, j * CT);
    if (kemCt !== undefined && sh.kemCt !== undefined) kemCt.set(sh.kemCt, j * KEM);
  }
  return kemCt === undefined ? { to, ct } : { to, ct, kemCt };
}

/** Packs a validated round-4 message: owners of its self and key shares, then their words. */
function packUnmask(msg: UnmaskMsg): PackedUnmask {
  const selfOf = Uint32Array.from(msg.selfShares, (s) => s.of);
  const keyOf = Uint32Array.from(msg.keyShares, (s) => s.of);
  const words = new Uint32Array((selfOf.length + keyOf.length) * SHARE_WORDS);
  let at = 0;
  for (const list of [msg.selfShares, msg.keyShares])
    for (const { share } of list) {
      words.set(share, at);
      at += SHARE_WORDS;
    }
  return { selfOf, keyOf, words };
}
