/**
 * Messages of rounds 0–4 (Bonawitz et al. 2017, Fig. 4), their validation and their wire codec
 * (DAG-CBOR, RFC 8949 deterministic subset). Every message names its session and its round
 * (`kind`), so the server rejects replays from other sessions or rounds; `from`/`to` are client
 * ids 1..n, which are also the Shamir evaluation points.
 */
import { decode, encode } from '@ipld/dag-cbor';
import { HYBRID_KEM_CIPHERTEXT_BYTES, HYBRID_KEM_PUBLIC_KEY_BYTES } from '../../trust/index.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';
import { shamirShareLength } from './field.ts';
import {
  SECAGG_CLIENTS_MAX,
  SECAGG_KEY_BYTES,
  SECAGG_MESSAGE_BYTES_MAX,
  SECAGG_SESSION_ID_BYTES,
  SECAGG_SIGNATURE_BYTES,
  SECAGG_TAG_BYTES,
} from './limits.ts';
import type { SecAggChannel, SecAggMode } from './types.ts';

/** Public parameters of one session, known to the server and every client before round 0. */
export interface SecAggSessionConfig {
  /** 16 random bytes binding keys, masks and signatures to this session. */
  readonly sessionId: Uint8Array;
  readonly mode: SecAggMode;
  /** Clients invited (ids 1..n). */
  readonly n: number;
  /** Shamir threshold. */
  readonly t: number;
  /** Neighbourhood degree (n − 1 in full mode). */
  readonly k: number;
  /** Words in each masked vector. */
  readonly vectorLength: number;
  /**
   * Key agreement of the share-encryption channel: `'x25519'` (default; X25519 + SHA-256 +
   * ChaCha20-Poly1305) or `'hybrid-kem'` (the trust layer's X25519+ML-KEM-768 X-Wing KEM, so shares
   * of secrets stay confidential against a future quantum adversary; ~10× costlier per neighbour).
   */
  readonly channel?: SecAggChannel;
}

/** Bytes of the channel public key `cPk` for a channel kind. */
export function channelPublicKeyBytes(channel: SecAggChannel | undefined): number {
  return channel === 'hybrid-kem' ? HYBRID_KEM_PUBLIC_KEY_BYTES : SECAGG_KEY_BYTES;
}

/** Bytes of one plaintext share pair (b_u share and s_u^SK share, as 32-bit field elements) plus ids. */
export const SECAGG_SHARE_PLAINTEXT_BYTES = 8 + 2 * 4 * shamirShareLength(SECAGG_KEY_BYTES);
/** Bytes of one encrypted share pair. */
export const SECAGG_SHARE_CIPHERTEXT_BYTES = SECAGG_SHARE_PLAINTEXT_BYTES + SECAGG_TAG_BYTES;

/** Round 0, client → server: the client's public keys. */
export interface AdvertiseMsg {
  readonly kind: 'advertise';
  readonly session: Uint8Array;
  readonly from: number;
  /** Channel key c_u^PK: X25519 (32 bytes) or hybrid KEM public key (1216 bytes). */
  readonly cPk: Uint8Array;
  /** X25519 masking key s_u^PK. */
  readonly sPk: Uint8Array;
  /** Ed25519 key for the consistency check. */
  readonly sigPk: Uint8Array;
}
/** A neighbour's advertised keys, as forwarded by the server. */
export interface NeighbourKeys {
  readonly id: number;
  readonly cPk: Uint8Array;
  readonly sPk: Uint8Array;
  readonly sigPk: Uint8Array;
}
/** Round 1, server → client: the keys of its neighbours that advertised (U1 ∩ N(u)). */
export interface ShareRequest {
  readonly kind: 'share-request';
  readonly session: Uint8Array;
  readonly to: number;
  readonly neighbours: readonly NeighbourKeys[];
}
/** Round 1, client → server: one encrypted share pair per neighbour. */
export interface ShareMsg {
  readonly kind: 'share';
  readonly session: Uint8Array;
  readonly from: number;
  /** `kemCt`: the hybrid KEM ciphertext that carries the channel key (hybrid channel only). */
  readonly shares: readonly {
    readonly to: number;
    readonly ct: Uint8Array;
    readonly kemCt?: Uint8Array;
  }[];
}
/** Round 2, server → client: the ciphertexts addressed to it by neighbours in U2. */
export interface MaskedInputRequest {
  readonly kind: 'masked-input-request';
  readonly session: Uint8Array;
  readonly to: number;
  readonly ciphertexts: readonly {
    readonly from: number;
    readonly ct: Uint8Array;
    readonly kemCt?: Uint8Array;
  }[];
}
/** Round 2, client → server: the masked input y_u. */
export interface MaskedInputMsg {
  readonly kind: 'masked-input';
  readonly session: Uint8Array;
  readonly from: number;
  readonly y: Uint32Array;
}
/** Round 3, server → client: the survivor set U3 (sorted ids). */
export interface ConsistencyRequest {
  readonly kind: 'consistency-request';
  readonly session: Uint8Array;
  readonly to: number;
  readonly survivors: Uint32Array;
}
/** Round 3, client → server: Ed25519 signature over (session, U3). */
export interface ConsistencyMsg {
  readonly kind: 'consistency';
  readonly session: Uint8Array;
  readonly from: number;
  readonly signature: Uint8Array;
}
/** Round 4, server → client: U3 again, the neighbours to treat as dropped, and the neighbours' signatures. */
export interface UnmaskRequest {
  readonly kind: 'unmask-request';
  readonly session: Uint8Array;
  readonly to: number;
  readonly survivors: Uint32Array;
  /** Neighbours whose s^SK share the server asks for (must be exactly (U2 ∩ N(u)) \ U3). */
  readonly dropped: Uint32Array;
  readonly signatures: readonly { readonly from: number; readonly signature: Uint8Array }[];
}
/** One Shamir share of a neighbour's secret. */
export interface ShareOf {
  readonly of: number;
  readonly share: Uint32Array;
}
/** Round 4, client → server: b shares of surviving neighbours, s^SK shares of dropped ones. */
export interface UnmaskMsg {
  readonly kind: 'unmask';
  readonly session: Uint8Array;
  readonly from: number;
  readonly selfShares: readonly ShareOf[];
  readonly keyShares: readonly ShareOf[];
}

/** Messages a client sends. */
export type SecAggClientMessage =
  | AdvertiseMsg
  | ShareMsg
  | MaskedInputMsg
  | ConsistencyMsg
  | UnmaskMsg;
/** Messages the server sends. */
export type SecAggServerMessage =
  | ShareRequest
  | MaskedInputRequest
  | ConsistencyRequest
  | UnmaskRequest;
/** Any secure-aggregation message. */
export type SecAggMessage = SecAggClientMessage | SecAggServerMessage;

/** The client message kind of each round, in order. */
export const SECAGG_CLIENT_KINDS = [
  'advertise',
  'share',
  'masked-input',
  'consistency',
  'unmask',
] as const;

function malformed(field: string, why: string): never {
  throw new SecAggError(SecAggErrorCode.Malformed, `${field} ${why}`, { details: { field } });
}

function rec(x: unknown, field: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) malformed(field, 'is not an object');
  return x as Record<string, unknown>;
}

function id(x: unknown, field: string): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > SECAGG_CLIENTS_MAX)
    malformed(field, 'is not a client id');
  return x;
}

function bytes(x: unknown, field: string, length?: number): Uint8Array {
  if (!(x instanceof Uint8Array)) malformed(field, 'is not bytes');
  if (length !== undefined && x.length !== length) malformed(field, `must be ${length} bytes`);
  return x;
}

function words(x: unknown, field: string, length?: number): Uint32Array {
  if (!(x instanceof Uint32Array)) malformed(field, 'is not a word vector');
  if (length !== undefined && x.length !== length)
    malformed(field, `must have ${length} words, has ${x.length}`);
  return x;
}

function list(x: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(x)) malformed(field, 'is not a list');
  if (x.length > max) malformed(field, `has more than ${max} entries`);
  return x;
}

function shares(x: unknown, field: string, max: number): ShareOf[] {
  const m = shamirShareLength(SECAGG_KEY_BYTES);
  return list(x, field, max).map((e) => {
    const r = rec(e, field);
    return { of: id(r.of, `${field}.of`), share: words(r.share, `${field}.share`, m) };
  });
}

/**
 * Checks the shape of a client message against the session (sizes, ids, vector length).
 * Semantic checks (right round, known sender, duplicates) are the server's.
 * @throws {SecAggError} SECAGG_MALFORMED.
 */
export function validateClientMessage(
  x: unknown,
  config: SecAggSessionConfig,
): SecAggClientMessage {
  const r = rec(x, 'message');
  const session = bytes(r.session, 'session', SECAGG_SESSION_ID_BYTES);
  const from = id(r.from, 'from');
  if (from > config.n) malformed('from', `exceeds n = ${config.n}`);
  switch (r.kind) {
    case 'advertise':
      return {
        kind: 'advertise',
        session,
        from,
        cPk: bytes(r.cPk, 'cPk', channelPublicKeyBytes(config.channel)),
        sPk: bytes(r.sPk, 'sPk', SECAGG_KEY_BYTES),
        sigPk: bytes(r.sigPk, 'sigPk', SECAGG_KEY_BYTES),
      };
    case 'share':
      return {
        kind: 'share',
        session,
        from,
        shares: list(r.shares, 'shares', config.k).map((e) => {
          const s = rec(e, 'shares');
          const entry = {
            to: id(s.to, 'shares.to'),
            ct: bytes(s.ct, 'shares.ct', SECAGG_SHARE_CIPHERTEXT_BYTES),
          };
          return config.channel === 'hybrid-kem'
            ? { ...entry, kemCt: bytes(s.kemCt, 'shares.kemCt', HYBRID_KEM_CIPHERTEXT_BYTES) }
            : entry;
        }),
      };
    case 'masked-input':
      return { kind: 'masked-input', session, from, y: words(r.y, 'y', config.vectorLength) };
    case 'consistency':
      return {
        kind: 'consistency',
        session,
        from,
        signature: bytes(r.signature, 'signature', SECAGG_SIGNATURE_BYTES),
      };
    case 'unmask':
      return {
        kind: 'unmask',
        session,
        from,
        // k neighbours' self-mask shares plus the sender's own (see SecAggClient.share).
        selfShares: shares(r.selfShares, 'selfShares', config.k + 1),
        keyShares: shares(r.keyShares, 'keyShares', config.k),
      };
    default:
      return malformed('kind', `"${String(r.kind)}" is not a client message kind`);
  }
}

function toWire(x: unknown): unknown {
  if (x instanceof Uint32Array)
    return { u32: new Uint8Array(x.buffer, x.byteOffset, x.byteLength) };
  if (x instanceof Uint8Array) return x;
  if (Array.isArray(x)) return x.map(toWire);
  if (typeof x === 'object' && x !== null)
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, toWire(v)]));
  return x;
}

function fromWire(x: unknown): unknown {
  if (x instanceof Uint8Array) return x;
  if (Array.isArray(x)) return x.map(fromWire);
  if (typeof x === 'object' && x !== null) {
    const r = x as Record<string, unknown>;
    const keys = Object.keys(r);
    if (keys.length === 1 && keys[0] === 'u32') {
      const b = r.u32;
      if (!(b instanceof Uint8Array) || b.length % 4 !== 0)
        malformed('u32', 'is not a whole number of words');
      // Copy: the decoded bytes may not be 4-byte aligned.
      return new Uint32Array(Uint8Array.from(b).buffer);
    }
    return Object.fromEntries(keys.map((k) => [k, fromWire(r[k])]));
  }
  return x;
}

/** Encodes any secure-aggregation message as DAG-CBOR (word vectors as little-endian bytes). */
export function encodeSecAggMessage(msg: SecAggMessage): Uint8Array {
  return encode(toWire(msg));
}

/**
 * Decodes a message; client messages are also shape-checked against `config`.
 * @throws {SecAggError} SECAGG_MALFORMED on oversized, undecodable or ill-shaped input.
 */
export function decodeSecAggMessage(data: Uint8Array, config: SecAggSessionConfig): SecAggMessage {
  if (data.length > SECAGG_MESSAGE_BYTES_MAX)
    malformed('message', `exceeds ${SECAGG_MESSAGE_BYTES_MAX} bytes`);
  let raw: unknown;
  try {
    raw = fromWire(decode(data));
  } catch (cause) {
    if (cause instanceof SecAggError) throw cause;
    throw new SecAggError(SecAggErrorCode.Malformed, 'message does not decode as DAG-CBOR', {
      cause,
    });
  }
  const kind = rec(raw, 'message').kind;
  if (typeof kind === 'string' && (SECAGG_CLIENT_KINDS as readonly string[]).includes(kind))
    return validateClientMessage(raw, config);
  if (
    kind === 'share-request' ||
    kind === 'masked-input-request' ||
    kind === 'consistency-request' ||
    kind === 'unmask-request'
  ) {
    return raw as SecAggServerMessage;
  }
  return malformed('kind', `"${String(kind)}" is unknown`);
}
