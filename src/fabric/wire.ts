/**
 * Signed envelopes for fabric control traffic, and the receiver-side checks that make hostile
 * input harmless: every message is bounded in size, parsed defensively, signed with the
 * sender's Ed25519 key (RFC 8032, through the trust layer), bound to the name its pod
 * assigned, fresh (timestamp within a skew window) and never replayed (strictly increasing
 * sequence per sender). Each rejection is counted by reason.
 *
 * Layout: `signature (64 bytes) || JSON header+body`. The signature covers the JSON bytes, so
 * there is no canonicalisation to get wrong: the receiver verifies exactly what it parses.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../core/index.ts';
import { ed25519KeyGen, ed25519Sign, ed25519Verify } from '../trust/index.ts';
import { FabricErrorCode, type FabricErrorCodeValue } from './errors.ts';
import {
  WIRE_CLOCK_SKEW_MS_MAX,
  WIRE_MESSAGE_BYTES_MAX,
  WIRE_REPLAY_SENDERS_MAX,
} from './limits.ts';

const SIGNATURE_BYTES = 64;
const PUBLIC_KEY_B64_CHARS = 44;

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** The header every envelope carries. */
const headerSchema = z.strictObject({
  v: z.literal(1),
  /** Message type, e.g. `join`, `hb`. */
  t: z.string().min(1).max(32),
  /** Sender's assigned name; empty before admission. */
  from: z.string().max(128),
  /** Sender's Ed25519 public key, base64. */
  key: z.string().length(PUBLIC_KEY_B64_CHARS),
  seq: z.number().int().positive(),
  ts: z.number().int().nonnegative(),
  body: z.unknown(),
});

/** A verified envelope. */
export interface Envelope<T = unknown> {
  readonly type: string;
  readonly from: string;
  /** Sender's public key, base64. */
  readonly key: string;
  readonly seq: number;
  readonly ts: number;
  readonly body: T;
}

/** Reasons a message is rejected, each counted. */
export type RejectReason =
  | 'oversized'
  | 'malformed'
  | 'badSignature'
  | 'impostor'
  | 'replayed'
  | 'stale'
  | 'unknownSender'
  | 'wrongType';

const REASON_CODE: Record<RejectReason, FabricErrorCodeValue> = {
  oversized: FabricErrorCode.WireOversized,
  malformed: FabricErrorCode.WireMalformed,
  badSignature: FabricErrorCode.WireBadSignature,
  impostor: FabricErrorCode.WireImpostor,
  replayed: FabricErrorCode.WireReplayed,
  stale: FabricErrorCode.WireStale,
  unknownSender: FabricErrorCode.WireImpostor,
  wrongType: FabricErrorCode.WireMalformed,
};

/** Outcome of {@link WireVerifier.open}. */
export type OpenResult<T> =
  | { readonly ok: true; readonly envelope: Envelope<T> }
  | { readonly ok: false; readonly reason: RejectReason; readonly code: FabricErrorCodeValue };

/** An Ed25519 key pair as raw bytes. */
export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

// DER prefixes of raw Ed25519 keys (RFC 8410 §4 SPKI, §7 PKCS#8), so KeyObjects are built
// once per key and cached instead of once per signature.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.byteLength !== 32) throw new Error('ed25519 public key must be 32 bytes');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Generates a node identity with the trust layer's Ed25519 key generation. */
export function generateKeyPair(): KeyPair {
  return ed25519KeyGen();
}

/** Base64 of a public key, the form used on the wire and in membership records. */
export function publicKeyId(publicKey: Uint8Array): string {
  return Buffer.from(publicKey).toString('base64');
}

/** Seals bodies into signed envelopes for one sender. */
export class WireSigner {
  private seq = 0;
  private readonly keyId: string;

  constructor(
    keys: KeyPair,
    private readonly clock: Clock,
    /** The name this sender was assigned (empty until admitted). */
    public name = '',
  ) {
    this.keyId = publicKeyId(keys.publicKey);
    this.secret = createPrivateKey({
      key: Buffer.concat([PKCS8_PREFIX, keys.secretKey]),
      format: 'der',
      type: 'pkcs8',
    });
  }

  private readonly secret: KeyObject;

  /** This sender's public key, base64. */
  get publicKeyId(): string {
    return this.keyId;
  }

  /** Seals `body` as a message of type `type`. */
  seal(type: string, body: unknown): Uint8Array {
    // Sequence numbers start from the clock (µs) so a restarted sender with the same key is
    // never mistaken for a replay of its previous life.
    this.seq = Math.max(this.seq + 1, Math.floor(this.clock.now() * 1000));
    const json = enc.encode(
      JSON.stringify({
        v: 1,
        t: type,
        from: this.name,
        key: this.keyId,
        seq: this.seq,
        ts: Math.floor(this.clock.now()),
        body,
      }),
    );
    const sig = ed25519Sign(this.secret, json);
    const out = new Uint8Array(SIGNATURE_BYTES + json.byteLength);
    out.set(sig, 0);
    out.set(json, SIGNATURE_BYTES);
    return out;
  }
}

/** Counters of {@link WireVerifier}. */
export type WireCounters = Record<RejectReason | 'accepted', number>;

/** Options of {@link WireVerifier.open}. */
export interface OpenOptions<T> {
  /** Expected message type. */
  readonly type: string;
  /** Body schema; a body that fails it is `malformed`. */
  readonly body: z.ZodType<T>;
  /** Accept senders without an assigned name (join requests); their key must sign. */
  readonly allowUnbound?: boolean;
  /** When set, the envelope's `from` must equal it (a reply from the node we asked). */
  readonly expectFrom?: string;
}

/**
 * Receiver-side checks. Names are bound to keys by {@link bind} (on admission); a message
 * claiming a bound name with another key is an impostor.
 */
export class WireVerifier {
  private readonly bound = new Map<string, { keyId: string; key: KeyObject }>();
  private readonly lastSeq = new Map<string, number>();
  private readonly counters: WireCounters = {
    accepted: 0,
    oversized: 0,
    malformed: 0,
    badSignature: 0,
    impostor: 0,
    replayed: 0,
    stale: 0,
    unknownSender: 0,
    wrongType: 0,
  };

  constructor(private readonly clock: Clock) {}

  /** Binds `name` to a public key (base64). */
  bind(name: string, keyId: string): void {
    this.bound.set(name, { keyId, key: publicKeyObject(Buffer.from(keyId, 'base64')) });
  }

  /** Forgets a name's binding. */
  unbind(name: string): void {
    this.bound.delete(name);
  }

  /** The key bound to `name`, if any. */
  boundKey(name: string): string | undefined {
    return this.bound.get(name)?.keyId;
  }

  /** Rejection and acceptance counts. */
  stats(): Readonly<WireCounters> {
    return { ...this.counters };
  }

  /** Total rejections. */
  get rejected(): number {
    let n = 0;
    for (const [k, v] of Object.entries(this.counters)) if (k !== 'accepted') n += v;
    return n;
  }

  /** Verifies and decodes one message. Never throws on bad input. */
  open<T>(data: Uint8Array, options: OpenOptions<T>): OpenResult<T> {
    if (data.byteLength > WIRE_MESSAGE_BYTES_MAX) return this.reject('oversized');
    if (data.byteLength <= SIGNATURE_BYTES + 2) return this.reject('malformed');
    const sig = data.subarray(0, SIGNATURE_BYTES);
    const json = data.subarray(SIGNATURE_BYTES);
    let raw: unknown;
    try {
      raw = JSON.parse(dec.decode(json));
    } catch {
      return this.reject('malformed');
    }
    const h = headerSchema.safeParse(raw);
    if (!h.success) return this.reject('malformed');
    const env = h.data;
    if (env.t !== options.type) return this.reject('wrongType');
    if (options.expectFrom !== undefined && env.from !== options.expectFrom)
      return this.reject('impostor');
    let key: KeyObject;
    const binding = env.from === '' ? undefined : this.bound.get(env.from);
    if (binding !== undefined) {
      // A bound name speaks only with the key it was admitted with.
      if (binding.keyId !== env.key) return this.reject('impostor');
      key = binding.key;
    } else if (env.from === '' || options.allowUnbound === true) {
      try {
        key = publicKeyObject(Buffer.from(env.key, 'base64'));
      } catch {
        return this.reject('malformed');
      }
    } else return this.reject('unknownSender');
    if (!ed25519Verify(key, json, sig)) return this.reject('badSignature');
    if (Math.abs(this.clock.now() - env.ts) > WIRE_CLOCK_SKEW_MS_MAX) return this.reject('stale');
    const sender = env.from === '' ? `key:${env.key}` : env.from;
    const last = this.lastSeq.get(sender) ?? 0;
    if (env.seq <= last) return this.reject('replayed');
    const body = options.body.safeParse(env.body);
    if (!body.success) return this.reject('malformed');
    if (!this.lastSeq.has(sender) && this.lastSeq.size >= WIRE_REPLAY_SENDERS_MAX) {
      // Bounded memory: forget the oldest sender; its next message is still signature-checked.
      const oldest = this.lastSeq.keys().next().value;
      if (oldest !== undefined) this.lastSeq.delete(oldest);
    }
    this.lastSeq.set(sender, env.seq);
    this.counters.accepted++;
    return {
      ok: true,
      envelope: {
        type: env.t,
        from: env.from,
        key: env.key,
        seq: env.seq,
        ts: env.ts,
        body: body.data,
      },
    };
  }

  private reject(reason: RejectReason): {
    ok: false;
    reason: RejectReason;
    code: FabricErrorCodeValue;
  } {
    this.counters[reason]++;
    return { ok: false, reason, code: REASON_CODE[reason] };
  }
}

/** Encodes an unsigned JSON reply (answers to a request the asker authenticated by subject). */
export function encodeJson(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

/** Decodes a bounded JSON payload against a schema; undefined when it does not parse. */
export function decodeJson<T>(data: Uint8Array, schema: z.ZodType<T>): T | undefined {
  if (data.byteLength > WIRE_MESSAGE_BYTES_MAX) return undefined;
  try {
    const r = schema.safeParse(JSON.parse(dec.decode(data)));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
