/**
 * Wire format of hierarchical federated learning over the core Transport. A fit request carries
 * the model a child should start from; a fit reply carries the child's trained (or aggregated)
 * model and its weight. Both are: u32 magic, u32 header length, a JSON header, zero padding to a
 * 4-byte boundary, then the parameters as little-endian float32. Messages are bounded by the
 * transport's TRANSPORT_MESSAGE_BYTES_MAX (1 MiB, NATS' default max_payload), which caps a model
 * sent over the fabric at about 262,000 parameters.
 */
import { TRANSPORT_MESSAGE_BYTES_MAX } from '../../core/index.ts';
import { LearnError, LearnErrorCode } from '../errors.ts';

/** Largest JSON header, in bytes. */
export const WIRE_HEADER_BYTES_MAX = 4096;

const REQUEST_MAGIC = 0x474c5231; // "GLR1"
const REPLY_MAGIC = 0x474c5031; // "GLP1"

/** Subject on which a node receives fit requests from its parent. */
export function fitSubject(node: string): string {
  return `genesis.learn.fit.${node}`;
}

/** Header of a fit request. */
export interface FitRequestHeader {
  /** Global round. */
  readonly round: number;
  /** Step within the parent's κ loop (replays of older steps are rejected). */
  readonly step: number;
  /** Random per-request nonce, echoed in the reply (binds the reply to this request). */
  readonly nonce: string;
  /** Milliseconds the child has to answer (it must budget its own children within it). */
  readonly deadlineMs: number;
  /** FedProx μ for tiles. */
  readonly proximalMu: number;
  /**
   * Present when a pod asks its tiles for a secure-aggregation session instead of a plaintext
   * update: the tile trains, keeps its update, and answers with its round-0 SecAgg message.
   */
  readonly secure?: SecureFitHeader;
}

/**
 * Public parameters of one pod-level secure-aggregation session, sent to each tile with its fit
 * request (Bonawitz et al. 2017, §4: every party knows n, t and the session before round 0).
 */
export interface SecureFitHeader {
  /** The 16-byte session id, hex. */
  readonly session: string;
  /** This tile's protocol id (1..n, its Shamir evaluation point). */
  readonly id: number;
  readonly mode: 'full' | 'plus';
  readonly n: number;
  readonly t: number;
  readonly k: number;
  /** Words of every masked vector: 1 (weight) + parameters + 1 (loss). */
  readonly vectorLength: number;
  /** Quantization levels L (n·(L−1) < 2^32). */
  readonly levels: number;
  /** Values are clipped to [−clipRange, clipRange] before quantization. */
  readonly clipRange: number;
  /** Weights are divided by this (Flower's MAX_WEIGHT); tiles clamp larger weights to it. */
  readonly maxWeight: number;
  /** How long the tile keeps the session open after the fit request, ms. */
  readonly sessionMs: number;
  /**
   * The pod's Ed25519 key for this session (JWK `x`, base64url): the tile accepts rounds 1–4
   * requests only with a valid signature under it.
   */
  readonly podKey: string;
}

/** Secure-aggregation counters carried up the tree in fit replies. */
export interface SecureCounters {
  /** Pod-level secure sessions run (one per pod pass). */
  readonly sessions: number;
  /** Sessions that aborted (too many tiles vanished, or a refused parameter choice). */
  readonly aborted: number;
  /** Tiles that vanished mid-protocol and whose masks the protocol recovered. */
  readonly recovered: number;
}

/** Header of a fit reply. */
export interface FitReplyHeader {
  readonly clientId: string;
  readonly round: number;
  /** The request's nonce. */
  readonly nonce: string;
  /** Aggregation weight: example count (or tile count under DP). */
  readonly weight: number;
  /** Examples behind the update. */
  readonly numExamples: number;
  /** Tiles behind the update. */
  readonly tiles: number;
  readonly loss: number;
  /** Children that did not answer in time (summed up the tree). */
  readonly late: number;
  /** Updates rejected by guards below (summed up the tree). */
  readonly rejected: number;
  /** Secure-aggregation counters (summed up the tree); absent without SecAgg. */
  readonly secure?: SecureCounters;
}

function encode(magic: number, header: object, params: Float32Array): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  if (h.length > WIRE_HEADER_BYTES_MAX)
    throw new LearnError(LearnErrorCode.Oversized, 'header too large');
  const pad = (4 - ((8 + h.length) % 4)) % 4;
  const total = 8 + h.length + pad + params.byteLength;
  if (total > TRANSPORT_MESSAGE_BYTES_MAX) {
    throw new LearnError(
      LearnErrorCode.Oversized,
      `message of ${total} bytes exceeds TRANSPORT_MESSAGE_BYTES_MAX`,
      { details: { bytes: total } },
    );
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, true);
  view.setUint32(4, h.length, true);
  out.set(h, 8);
  const body = new DataView(out.buffer, 8 + h.length + pad);
  for (let i = 0; i < params.length; i++) body.setFloat32(i * 4, params[i] as number, true);
  return out;
}

function decode<T>(
  magic: number,
  bytes: Uint8Array,
  what: string,
): { header: T; params: Float32Array } {
  const bad = (msg: string, cause?: unknown): never => {
    throw new LearnError(LearnErrorCode.Malformed, `${what}: ${msg}`, { cause });
  };
  if (bytes.length > TRANSPORT_MESSAGE_BYTES_MAX) {
    throw new LearnError(
      LearnErrorCode.Oversized,
      `${what} of ${bytes.length} bytes exceeds TRANSPORT_MESSAGE_BYTES_MAX`,
      { details: { bytes: bytes.length } },
    );
  }
  if (bytes.length < 8) bad('too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== magic) bad('bad magic');
  const hLen = view.getUint32(4, true);
  if (hLen > WIRE_HEADER_BYTES_MAX || 8 + hLen > bytes.length) bad('bad header length');
  let header: T = {} as T;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hLen))) as T;
  } catch (e) {
    bad('header is not JSON', e);
  }
  const off = 8 + hLen + ((4 - ((8 + hLen) % 4)) % 4);
  if ((bytes.length - off) % 4 !== 0) bad('body is not whole float32s');
  const n = (bytes.length - off) / 4;
  const params = new Float32Array(n);
  for (let i = 0; i < n; i++) params[i] = view.getFloat32(off + i * 4, true);
  return { header, params };
}

function validCounters(c: unknown): boolean {
  if (typeof c !== 'object' || c === null) return false;
  const r = c as Record<string, unknown>;
  return ['sessions', 'aborted', 'recovered'].every(
    (k) => Number.isInteger(r[k]) && (r[k] as number) >= 0,
  );
}

/** Encodes a fit request. @throws {LearnError} `LEARN_OVERSIZED` */
export function encodeFitRequest(h: FitRequestHeader, params: Float32Array): Uint8Array {
  return encode(REQUEST_MAGIC, h, params);
}

/** Decodes a fit request. @throws {LearnError} `LEARN_MALFORMED`, `LEARN_OVERSIZED` */
export function decodeFitRequest(bytes: Uint8Array): {
  header: FitRequestHeader;
  params: Float32Array;
} {
  const r = decode<FitRequestHeader>(REQUEST_MAGIC, bytes, 'fit request');
  const h = r.header;
  if (
    !Number.isInteger(h.round) ||
    !Number.isInteger(h.step) ||
    typeof h.nonce !== 'string' ||
    !(h.deadlineMs > 0) ||
    !(h.proximalMu >= 0)
  ) {
    throw new LearnError(LearnErrorCode.Malformed, 'fit request: bad header fields');
  }
  return r;
}

/** Encodes a fit reply. @throws {LearnError} `LEARN_OVERSIZED` */
export function encodeFitReply(h: FitReplyHeader, params: Float32Array): Uint8Array {
  return encode(REPLY_MAGIC, h, params);
}

/** Decodes a fit reply. @throws {LearnError} `LEARN_MALFORMED`, `LEARN_OVERSIZED` */
export function decodeFitReply(bytes: Uint8Array): {
  header: FitReplyHeader;
  params: Float32Array;
  bytes: number;
} {
  const r = decode<FitReplyHeader>(REPLY_MAGIC, bytes, 'fit reply');
  const h = r.header;
  if (
    typeof h.clientId !== 'string' ||
    !Number.isInteger(h.round) ||
    typeof h.nonce !== 'string' ||
    !(h.weight >= 0) ||
    !Number.isInteger(h.numExamples) ||
    (h.secure !== undefined && !validCounters(h.secure))
  ) {
    throw new LearnError(LearnErrorCode.Malformed, 'fit reply: bad header fields');
  }
  return { ...r, bytes: bytes.length };
}
