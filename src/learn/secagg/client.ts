/**
 * The client state machine of secure aggregation (Bonawitz et al. 2017, Fig. 4, "User" side;
 * SecAgg+ restricts every "for all v" to the client's neighbourhood N(u)). One instance serves
 * one session; each method is one round and may be called once, in order.
 */
import { createHash, type KeyObject } from 'node:crypto';
import type { Rng } from '../../core/index.ts';
import {
  HYBRID_KEM_CIPHERTEXT_BYTES,
  HYBRID_KEM_SECRET_KEY_BYTES,
  hybridDecapsulate,
  hybridEncapsulate,
  hybridKemKeyPair,
} from '../../trust/index.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { shamirShareLength, shamirSplit } from './field.ts';
import { channelKeys, curveThreadsFor, firstInvalidEd25519 } from './key-jobs.ts';
import {
  channelDecrypt,
  channelEncrypt,
  channelKey,
  generateEd25519,
  generateX25519,
  type RawKeyPair,
  signEd25519,
} from './keys.ts';
import { SECAGG_KEY_BYTES } from './limits.ts';
import { MaskJobBuilder, maskThreadsFor, runMaskJob, wipeMaskJob } from './mask-job.ts';
import type {
  AdvertiseMsg,
  ConsistencyMsg,
  ConsistencyRequest,
  MaskedInputMsg,
  MaskedInputRequest,
  NeighbourKeys,
  SecAggSessionConfig,
  ShareMsg,
  ShareOf,
  ShareRequest,
  UnmaskMsg,
  UnmaskRequest,
} from './messages.ts';
import { SECAGG_SHARE_PLAINTEXT_BYTES } from './messages.ts';
import { sortedIndexOf } from './packed.ts';
import { MaskAccumulator } from './prg.ts';

const SHARE_WORDS = shamirShareLength(SECAGG_KEY_BYTES);
const CONSISTENCY_LABEL = Buffer.from('genesis-secagg/v1/consistency', 'ascii');

/** What a client signs in round 3: a hash of the session id and the sorted survivor set U3. */
export function consistencyDigest(sessionId: Uint8Array, survivors: Uint32Array): Uint8Array {
  const h = createHash('sha256').update(CONSISTENCY_LABEL).update(sessionId);
  h.update(new Uint8Array(survivors.buffer, survivors.byteOffset, survivors.byteLength));
  return new Uint8Array(h.digest());
}

function fail(
  code: (typeof SecAggErrorCode)[keyof typeof SecAggErrorCode],
  message: string,
  details: Record<string, unknown> = {},
): never {
  throw new SecAggError(code, message, { details });
}

function isSortedUnique(a: Uint32Array): boolean {
  for (let i = 1; i < a.length; i++) if ((a[i] as number) <= (a[i - 1] as number)) return false;
  return true;
}

/** Words per neighbour in the packed share table: its b share then its s^SK share. */
const HELD_WORDS = 2 * SHARE_WORDS;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    )
  );
}

/** Options of {@link SecAggClient}. */
export interface SecAggClientOptions {
  /** This client's id, 1..n (its Shamir evaluation point). */
  readonly id: number;
  readonly config: SecAggSessionConfig;
  /** Randomness for keys and shares (a CryptoRng outside tests). */
  readonly rng: Rng;
  /**
   * Keep only the SHA-256 digest of the survivor set U3 between rounds 3 and 4 (and check the
   * round-4 set against it) instead of a copy of U3: 32 bytes instead of 4·|U3| per client.
   * Same check (up to SHA-256 collisions, which the signatures already rely on). For simulations
   * that hold many clients in one process; default false (a copy, as before).
   */
  readonly survivorDigestOnly?: boolean;
  /**
   * Threads for the client's parallel work (this one plus pool workers, at most
   * SECAGG_MASK_THREADS_MAX): round 1's channel agreements, round 2's masks, round 4's signature
   * checks. Default: one per core when a batch is large. No message depends on it.
   */
  readonly maskThreads?: number;
}

/** One client of one secure-aggregation session. */
export class SecAggClient {
  readonly id: number;
  private readonly config: SecAggSessionConfig;
  private readonly rng: Rng;
  private readonly maskThreads: number | undefined;
  private readonly c: RawKeyPair;
  private readonly s: RawKeyPair;
  private readonly sig: RawKeyPair;
  private next = 0;
  /*
   * Per-neighbour state, packed by roster slot (the neighbour's position in the round-1 roster):
   * one typed array per client for each kind of state instead of a Map entry and a small typed
   * array per neighbour (≈ 1–2 KB per edge as JS objects; a simulation holds n·k edges).
   */
  /** Neighbour ids in roster order (slot → id). */
  private nbIds = new Uint32Array(0);
  /** The same ids ascending, and the slot of each: id → slot by binary search. */
  private nbSorted = new Uint32Array(0);
  private nbSortedSlot = new Uint32Array(0);
  /** Per slot: the masking key s^PK (needed until round 2; cPk only in round 1). */
  private nbSPk = new Uint8Array(0);
  /** Per slot: the Ed25519 key (needed until round 4). */
  private nbSigPk = new Uint8Array(0);
  /** Per slot: the 32-byte channel key (X25519 channel; unused with the hybrid KEM). */
  private channelKeys = new Uint8Array(0);
  /** Per slot: the shares this client holds for that neighbour, b share ‖ s^SK share. */
  private held = new Uint32Array(0);
  /** Per slot: 1 when the neighbour's shares were received. */
  private heldFlag = new Uint8Array(0);
  /** Slots in the order their shares arrived (the order round 4 reveals them in). */
  private heldOrder = new Uint32Array(0);
  private heldCount = 0;
  private survivors: Uint32Array | undefined;
  private readonly survivorDigestOnly: boolean;
  private survivorsDigest: Uint8Array | undefined;
  private bSeed: Uint8Array | undefined;
  /** This client's own Shamir share of its b (revealed in round 4 while it survives). */
  private ownBShare: Uint32Array | undefined;
  private kemSeed: Uint8Array | undefined;
  private kemPk: Uint8Array | undefined;

  constructor(options: SecAggClientOptions) {
    this.id = options.id;
    this.config = options.config;
    this.rng = options.rng;
    this.survivorDigestOnly = options.survivorDigestOnly === true;
    this.maskThreads = options.maskThreads;
    if (this.config.channel === 'hybrid-kem') {
      this.kemSeed = this.rng.fill(new Uint8Array(HYBRID_KEM_SECRET_KEY_BYTES));
      this.kemPk = hybridKemKeyPair(this.kemSeed).publicKey;
    }
    this.c = generateX25519(this.rng);
    this.s = generateX25519(this.rng);
    this.sig = generateEd25519(this.rng);
  }

  private enter(round: number, session: Uint8Array, to: number): void {
    if (this.next !== round)
      fail(SecAggErrorCode.WrongState, `client ${this.id} is at round ${this.next}, not ${round}`, {
        round,
      });
    if (!sameBytes(session, this.config.sessionId))
      fail(SecAggErrorCode.Replay, 'request of another session', { round });
    if (to !== this.id)
      fail(SecAggErrorCode.UnknownClient, `request addressed to ${to}, not ${this.id}`, { round });
    this.next = round + 1;
  }

  /** Roster slot of neighbour `id`, or −1 when it is not a neighbour. */
  private slotOf(id: number): number {
    const i = sortedIndexOf(this.nbSorted, id);
    return i === -1 ? -1 : (this.nbSortedSlot[i] as number);
  }

  private sPkOf(slot: number): Uint8Array {
    return this.nbSPk.subarray(slot * SECAGG_KEY_BYTES, (slot + 1) * SECAGG_KEY_BYTES);
  }

  private sigPkOf(slot: number): Uint8Array {
    return this.nbSigPk.subarray(slot * SECAGG_KEY_BYTES, (slot + 1) * SECAGG_KEY_BYTES);
  }

  /** Round 0 (AdvertiseKeys): the client's public keys. */
  advertise(): AdvertiseMsg {
    this.enter(0, this.config.sessionId, this.id);
    return {
      kind: 'advertise',
      session: this.config.sessionId,
      from: this.id,
      cPk: this.kemPk ?? this.c.publicRaw,
      sPk: this.s.publicRaw,
      sigPk: this.sig.publicRaw,
    };
  }

  /**
   * Round 1 (ShareKeys): draws the self-mask seed b_u and Shamir-shares b_u and s_u^SK t-of-|N(u)|
   * among the neighbours, each share pair encrypted to its holder.
   * @throws {SecAggError} SECAGG_TOO_FEW_CLIENTS when fewer than t neighbours advertised; SECAGG_MALFORMED on a bad roster.
   */
  share(req: ShareRequest): ShareMsg {
    this.enter(1, req.session, req.to);
    const { t, k, sessionId } = this.config;
    if (req.neighbours.length > k)
      fail(SecAggErrorCode.Malformed, `roster of ${req.neighbours.length} exceeds k = ${k}`);
    const m = req.neighbours.length;
    const seen = new Set<number>();
    for (const nb of req.neighbours) {
      if (nb.id === this.id || seen.has(nb.id) || nb.id < 1 || nb.id > this.config.n)
        fail(SecAggErrorCode.Malformed, `bad neighbour id ${nb.id}`);
      seen.add(nb.id);
    }
    // Bonawitz et al. Fig. 4 counts the client itself in U1 (|U1| ≥ t).
    if (m + 1 < t)
      fail(SecAggErrorCode.TooFewClients, `only ${m} neighbours and itself, threshold ${t}`, { t });
    // Keys go into fixed-size slots, so a key of the wrong size is refused here (it would be
    // refused anyway when first used: masking in round 2, verification in round 4).
    for (const nb of req.neighbours)
      if (
        !(nb.sPk instanceof Uint8Array) ||
        nb.sPk.length !== SECAGG_KEY_BYTES ||
        !(nb.sigPk instanceof Uint8Array) ||
        nb.sigPk.length !== SECAGG_KEY_BYTES
      )
        fail(SecAggErrorCode.Malformed, `public key of client ${nb.id} is invalid`, { id: nb.id });
    this.nbIds = Uint32Array.from(req.neighbours, (nb) => nb.id);
    const order = Array.from({ length: m }, (_, i) => i).sort(
      (a, b) => (this.nbIds[a] as number) - (this.nbIds[b] as number),
    );
    this.nbSortedSlot = Uint32Array.from(order);
    this.nbSorted = Uint32Array.from(order, (slot) => this.nbIds[slot] as number);
    this.nbSPk = new Uint8Array(m * SECAGG_KEY_BYTES);
    this.nbSigPk = new Uint8Array(m * SECAGG_KEY_BYTES);
    for (const [slot, nb] of req.neighbours.entries()) {
      this.nbSPk.set(nb.sPk, slot * SECAGG_KEY_BYTES);
      this.nbSigPk.set(nb.sigPk, slot * SECAGG_KEY_BYTES);
    }
    this.held = new Uint32Array(m * HELD_WORDS);
    this.heldFlag = new Uint8Array(m);
    this.heldOrder = new Uint32Array(m);
    this.heldCount = 0;
    const ids = Array.from(this.nbIds);
    let bShares: Uint32Array[] = [];
    let skShares: Uint32Array[] = [];
    const split = (): void => {
      const b = this.rng.fill(new Uint8Array(SECAGG_KEY_BYTES));
      this.bSeed = b;
      // Both secrets are shared over U1 with the client included (Bonawitz et al. §4, t-of-|U1|,
      // so |U1| = t works). It keeps its own share of b (x = its id): with exactly t survivors
      // each one's self-mask is rebuilt from t holders, itself included. Its own share of s^SK
      // is discarded at once: s^SK is rebuilt only for a client that dropped, and then never
      // from it.
      const holders = [...ids, this.id];
      const bAll = shamirSplit(b, holders, t, this.rng);
      this.ownBShare = bAll[ids.length] as Uint32Array;
      bShares = bAll.slice(0, ids.length);
      const skAll = shamirSplit(this.s.privateRaw, holders, t, this.rng);
      (skAll[ids.length] as Uint32Array).fill(0);
      skShares = skAll.slice(0, ids.length);
    };
    if (this.kemSeed === undefined) {
      // The X25519 channel keys are independent per neighbour: agree on the worker pool while
      // this thread splits the secrets (key-jobs.ts).
      const keys = channelKeys(
        this.c.privateRaw,
        req.neighbours.map((nb) => ({ id: nb.id, publicRaw: nb.cPk })),
        sessionId,
        curveThreadsFor(ids.length, this.maskThreads),
        { meanwhile: split },
      );
      this.channelKeys = new Uint8Array(m * SECAGG_KEY_BYTES);
      for (const [i, key] of keys.entries()) {
        this.channelKeys.set(key, i * SECAGG_KEY_BYTES);
        key.fill(0);
      }
    } else split();
    // One plaintext buffer for every share pair (each is encrypted before the next is written).
    const pt = Buffer.alloc(SECAGG_SHARE_PLAINTEXT_BYTES);
    const shares = ids.map((v, i) => {
      const { key, kemCt } = this.channelTo(req.neighbours[i] as NeighbourKeys, i);
      pt.writeUInt32BE(this.id, 0);
      pt.writeUInt32BE(v, 4);
      const bs = bShares[i] as Uint32Array;
      const ss = skShares[i] as Uint32Array;
      for (let j = 0; j < SHARE_WORDS; j++) {
        pt.writeUInt32BE(bs[j] as number, 8 + 4 * j);
        pt.writeUInt32BE(ss[j] as number, 8 + 4 * (SHARE_WORDS + j));
      }
      const ct = channelEncrypt(key, sessionId, this.id, v, pt);
      return kemCt === undefined ? { to: v, ct } : { to: v, ct, kemCt };
    });
    pt.fill(0);
    for (const sh of bShares) sh.fill(0);
    for (const sh of skShares) sh.fill(0);
    return { kind: 'share', session: sessionId, from: this.id, shares };
  }

  /** The channel key of roster slot `slot`, agreed in round 1 (X25519 channel). */
  private channelKeyOf(slot: number): Uint8Array {
    return this.channelKeys.subarray(slot * SECAGG_KEY_BYTES, (slot + 1) * SECAGG_KEY_BYTES);
  }

  /** The channel key to neighbour `nb` (at `slot`): agreed in round 1 (X25519), or a fresh hybrid-KEM encapsulation. */
  private channelTo(nb: NeighbourKeys, slot: number): { key: Uint8Array; kemCt?: Uint8Array } {
    const { sessionId } = this.config;
    if (this.kemSeed === undefined) return { key: this.channelKeyOf(slot) };
    try {
      const { ciphertext, sharedSecret } = hybridEncapsulate(nb.cPk);
      return { key: channelKey(sharedSecret, sessionId), kemCt: ciphertext };
    } catch (cause) {
      throw new SecAggError(
        SecAggErrorCode.Malformed,
        `neighbour ${nb.id} has an invalid hybrid KEM key`,
        { cause },
      );
    }
  }

  /** The channel key of a ciphertext from slot `slot` (X25519 key cached in round 1, or KEM decapsulation). */
  private channelFrom(from: number, slot: number, kemCt: Uint8Array | undefined): Uint8Array {
    if (this.kemSeed === undefined) return this.channelKeyOf(slot);
    if (!(kemCt instanceof Uint8Array) || kemCt.length !== HYBRID_KEM_CIPHERTEXT_BYTES) {
      return fail(SecAggErrorCode.Malformed, `ciphertext from ${from} lacks its KEM ciphertext`, {
        from,
      });
    }
    // ML-KEM's implicit rejection turns a tampered kemCt into a wrong key, which Poly1305 then rejects.
    return channelKey(hybridDecapsulate(this.kemSeed, kemCt), this.config.sessionId);
  }

  private decryptShares(req: MaskedInputRequest): void {
    const { sessionId } = this.config;
    for (const { from, ct, kemCt } of req.ciphertexts) {
      const slot = this.slotOf(from);
      if (slot === -1 || this.heldFlag[slot] === 1)
        fail(SecAggErrorCode.Malformed, `ciphertext from ${from}, not a neighbour or repeated`, {
          from,
        });
      const key = this.channelFrom(from, slot, kemCt);
      const plain = channelDecrypt(key, sessionId, from, this.id, ct);
      const pt = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
      if (
        pt.length !== SECAGG_SHARE_PLAINTEXT_BYTES ||
        pt.readUInt32BE(0) !== from ||
        pt.readUInt32BE(4) !== this.id
      ) {
        fail(SecAggErrorCode.Decrypt, `share from ${from} names the wrong sender or recipient`, {
          from,
        });
      }
      // b share then s^SK share, as in the plaintext.
      const at = slot * HELD_WORDS;
      for (let j = 0; j < HELD_WORDS; j++) this.held[at + j] = pt.readUInt32BE(8 + 4 * j);
      pt.fill(0);
      this.heldFlag[slot] = 1;
      this.heldOrder[this.heldCount++] = slot;
    }
  }

  /**
   * Round 2 (MaskedInputCollection): y_u = x_u + PRG(b_u) + Σ_{v∈U2∩N(u)} ±PRG(s_{u,v}) mod 2^32,
   * + when u < v and − otherwise, so that pairwise masks cancel in the sum.
   * @throws {SecAggError} SECAGG_TOO_FEW_CLIENTS when fewer than t neighbours shared; SECAGG_DECRYPT on a bad ciphertext.
   */
  maskInput(req: MaskedInputRequest, input: Uint32Array): MaskedInputMsg {
    this.enter(2, req.session, req.to);
    const { t, vectorLength, sessionId } = this.config;
    if (input.length !== vectorLength)
      fail(
        SecAggErrorCode.BadConfig,
        `input has ${input.length} words, session expects ${vectorLength}`,
      );
    // Every sender must be a neighbour, once; checked before any work (decryptShares checks again).
    const sent = new Uint8Array(this.nbIds.length);
    const senders: number[] = [];
    for (const { from } of req.ciphertexts) {
      const slot = this.slotOf(from);
      if (slot === -1 || sent[slot] === 1)
        fail(SecAggErrorCode.Malformed, `ciphertext from ${from}, not a neighbour or repeated`, {
          from,
        });
      sent[slot] = 1;
      senders.push(slot);
    }
    // |U2| ≥ t, the client included (it holds its own share of b).
    if (senders.length + 1 < t)
      fail(
        SecAggErrorCode.TooFewClients,
        `only ${senders.length} neighbours shared keys (and itself), threshold ${t}`,
        { t },
      );
    const acc = new MaskAccumulator(vectorLength);
    acc.addVector(input);
    const job = new MaskJobBuilder(sessionId);
    job.addSeed(this.bSeed as Uint8Array, 1);
    const own = job.addPrivate(this.s.privateRaw);
    for (const slot of senders) {
      const v = this.nbIds[slot] as number;
      const pub = job.addPublic(v, this.sPkOf(slot));
      job.addPair(own, pub, this.id, v, this.id < v ? 1 : -1);
    }
    const masks = job.build();
    try {
      // The shares are decrypted while the workers start on the masks; a bad ciphertext abandons
      // the job (and the round) before anything is sent.
      runMaskJob(acc, masks, maskThreadsFor(job.size, vectorLength, this.maskThreads), {
        meanwhile: () => this.decryptShares(req),
      });
    } finally {
      wipeMaskJob(masks);
    }
    const y = acc.result();
    // The self-mask seed is only ever needed again as shares; wipe it (STYLE: secrets are zeroed).
    this.bSeed?.fill(0);
    // Channel keys and masking keys are not used after this round: free them (a simulation
    // holds many clients between rounds).
    this.channelKeys.fill(0);
    this.channelKeys = new Uint8Array(0);
    this.nbSPk = new Uint8Array(0);
    return { kind: 'masked-input', session: sessionId, from: this.id, y };
  }

  /**
   * Round 3 (ConsistencyCheck): signs the survivor set U3 so that the server cannot show
   * different sets to different clients.
   * @throws {SecAggError} SECAGG_CONSISTENCY when U3 is malformed, too small, or names a neighbour that never shared.
   */
  consistency(req: ConsistencyRequest): ConsistencyMsg {
    this.enter(3, req.session, req.to);
    const u3 = req.survivors;
    if (!(u3 instanceof Uint32Array) || !isSortedUnique(u3))
      fail(SecAggErrorCode.Consistency, 'survivor set is not sorted and unique');
    if (u3.length < this.config.t)
      fail(
        SecAggErrorCode.TooFewClients,
        `only ${u3.length} survivors, threshold ${this.config.t}`,
      );
    if (sortedIndexOf(u3, this.id) === -1)
      fail(SecAggErrorCode.Consistency, 'survivor set omits this client');
    // O(k log |U3|) over the neighbours, ascending, so the first offender is the same as a scan
    // of U3 would find.
    for (const [i, v] of this.nbSorted.entries())
      if (this.heldFlag[this.nbSortedSlot[i] as number] !== 1 && sortedIndexOf(u3, v) !== -1)
        fail(SecAggErrorCode.Consistency, `survivor ${v} never shared keys`, { v });
    const digest = consistencyDigest(this.config.sessionId, u3);
    if (this.survivorDigestOnly) this.survivorsDigest = digest;
    else this.survivors = Uint32Array.from(u3);
    return {
      kind: 'consistency',
      session: this.config.sessionId,
      from: this.id,
      signature: signEd25519(this.sig.privateKey as KeyObject, digest),
    };
  }

  /**
   * The survivor set signed in round 3 and its digest: the copy kept then, or (with
   * `survivorDigestOnly`) the round-4 set itself once its digest is the one signed.
   */
  private signedSurvivors(req: UnmaskRequest): { survivors: Uint32Array; digest: Uint8Array } {
    const digest = this.survivorsDigest;
    if (digest === undefined) {
      if (this.survivors === undefined)
        return fail(SecAggErrorCode.WrongState, 'no survivor set from round 3');
      return {
        survivors: this.survivors,
        digest: consistencyDigest(this.config.sessionId, this.survivors),
      };
    }
    if (
      !(req.survivors instanceof Uint32Array) ||
      !sameBytes(consistencyDigest(this.config.sessionId, req.survivors), digest)
    )
      fail(SecAggErrorCode.Consistency, 'survivor set changed between rounds 3 and 4');
    return { survivors: req.survivors, digest };
  }

  /**
   * Checks the round-4 request against U3 (sorted, checked in round 3) and returns U3's
   * membership test (a binary search: no set of |U3| entries per client).
   */
  private checkUnmaskRequest(
    req: UnmaskRequest,
    survivors: Uint32Array,
    digest: Uint8Array,
  ): (v: number) => boolean {
    if (
      !(req.survivors instanceof Uint32Array) ||
      !sameBytes(
        new Uint8Array(req.survivors.buffer, req.survivors.byteOffset, req.survivors.byteLength),
        new Uint8Array(survivors.buffer, survivors.byteOffset, survivors.byteLength),
      )
    ) {
      fail(SecAggErrorCode.Consistency, 'survivor set changed between rounds 3 and 4');
    }
    const u3 = { has: (v: number): boolean => sortedIndexOf(survivors, v) !== -1 };
    for (const v of req.dropped) {
      // The core of the consistency check: never reveal s^SK of a client whose b share is asked too.
      if (u3.has(v))
        fail(SecAggErrorCode.Consistency, `server asks for both shares of client ${v}`, { v });
    }
    const expected = Array.from(
      this.heldOrder.subarray(0, this.heldCount),
      (slot) => this.nbIds[slot] as number,
    )
      .filter((v) => !u3.has(v))
      .sort((a, b) => a - b);
    if (expected.length !== req.dropped.length || expected.some((v, i) => v !== req.dropped[i])) {
      fail(
        SecAggErrorCode.Consistency,
        'dropped set differs from neighbours that shared but did not survive',
      );
    }
    // Each honest client signs one survivor set, so t valid signatures over ours prove that no
    // other set can also gather t (Bonawitz et al. §4, t > (n + corrupt)/2): verifying the first
    // t suffices, and each Ed25519 verification costs as much as two X25519 agreements. They run
    // on the worker pool (key-jobs.ts).
    const seen = new Set<number>();
    const toVerify: { from: number; publicRaw: Uint8Array; signature: Uint8Array }[] = [];
    for (const { from, signature } of req.signatures) {
      const slot = from === this.id ? -1 : this.slotOf(from);
      if ((from !== this.id && slot === -1) || seen.has(from) || !u3.has(from))
        fail(
          SecAggErrorCode.Consistency,
          `signature from ${from} is not from a surviving neighbour`,
          { from },
        );
      seen.add(from);
      if (toVerify.length < this.config.t)
        toVerify.push({
          from,
          publicRaw: slot === -1 ? this.sig.publicRaw : this.sigPkOf(slot),
          signature,
        });
    }
    const bad = firstInvalidEd25519(
      digest,
      toVerify,
      curveThreadsFor(toVerify.length, this.maskThreads),
    );
    if (bad !== -1) {
      const { from } = toVerify[bad] as (typeof toVerify)[number];
      fail(SecAggErrorCode.Consistency, `signature of ${from} is not over this survivor set`, {
        from,
      });
    }
    if (toVerify.length < this.config.t)
      fail(
        SecAggErrorCode.TooFewClients,
        `only ${toVerify.length} consistent signatures, threshold ${this.config.t}`,
      );
    return u3.has;
  }

  /**
   * Round 4 (Unmasking): after checking the signatures over U3, reveals the b share of every
   * surviving neighbour and the s^SK share of every neighbour that shared but did not survive —
   * never both for the same neighbour. Any inconsistency and the client reveals nothing.
   * @throws {SecAggError} SECAGG_CONSISTENCY or SECAGG_TOO_FEW_CLIENTS.
   */
  unmask(req: UnmaskRequest): UnmaskMsg {
    this.enter(4, req.session, req.to);
    const { survivors, digest } = this.signedSurvivors(req);
    const inU3 = this.checkUnmaskRequest(req, survivors, digest);
    // The revealed shares are copied into one fresh array (views into it in the message): the
    // message must carry exactly the shares it reveals, never the rest of the held table.
    const withOwn = this.ownBShare !== undefined && inU3(this.id);
    const out = new Uint32Array((this.heldCount + (withOwn ? 1 : 0)) * SHARE_WORDS);
    const selfShares: ShareOf[] = [];
    const keyShares: ShareOf[] = [];
    for (let i = 0; i < this.heldCount; i++) {
      const slot = this.heldOrder[i] as number;
      const v = this.nbIds[slot] as number;
      const survived = inU3(v);
      const at = slot * HELD_WORDS + (survived ? 0 : SHARE_WORDS);
      out.set(this.held.subarray(at, at + SHARE_WORDS), i * SHARE_WORDS);
      const share = out.subarray(i * SHARE_WORDS, (i + 1) * SHARE_WORDS);
      if (survived) selfShares.push({ of: v, share });
      else keyShares.push({ of: v, share });
    }
    if (withOwn) {
      const at = this.heldCount * SHARE_WORDS;
      out.set(this.ownBShare as Uint32Array, at);
      selfShares.push({ of: this.id, share: out.subarray(at, at + SHARE_WORDS) });
    }
    this.held.fill(0);
    this.held = new Uint32Array(0);
    this.heldCount = 0;
    this.ownBShare?.fill(0);
    this.ownBShare = undefined;
    return { kind: 'unmask', session: this.config.sessionId, from: this.id, selfShares, keyShares };
  }
}
