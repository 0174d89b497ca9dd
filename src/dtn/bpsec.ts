/**
 * BPSec (RFC 9172) with the two default security contexts of RFC 9173: BIB-HMAC-SHA2
 * (context 1) for integrity and BCB-AES-GCM (context 2) for confidentiality, including AES key
 * wrap (RFC 3394) of the per-bundle key. Crypto is node:crypto (OpenSSL); this module only builds
 * the exact byte strings RFC 9173 §3.7 and §4.7 say to authenticate.
 */
import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import {
  BlockType,
  type Bundle,
  type CanonicalBlock,
  CrcType,
  encodePrimaryBlock,
} from './bundle.ts';
import { CborReader, CborWriter, MajorType } from './cbor.ts';
import { type Eid, readEid, writeEid } from './eid.ts';
import { BundleError, DtnError, DtnErrorCode } from './errors.ts';
import { ASB_ITEMS_MAX } from './limits.ts';

/** Security context ids (RFC 9173 §3.1, §4.1). */
export const SecurityContext = { BibHmacSha2: 1, BcbAesGcm: 2 } as const;

/** SHA variants of BIB-HMAC-SHA2 (RFC 9173 §3.3.1). */
export const ShaVariant = { HmacSha256: 5, HmacSha384: 6, HmacSha512: 7 } as const;
/** A SHA variant code. */
export type ShaVariant = (typeof ShaVariant)[keyof typeof ShaVariant];

/** AES variants of BCB-AES-GCM (RFC 9173 §4.3.2). */
export const AesVariant = { A128GCM: 1, A256GCM: 3 } as const;
/** An AES variant code. */
export type AesVariant = (typeof AesVariant)[keyof typeof AesVariant];

/** Integrity / AAD scope flags (RFC 9173 §3.3.3, §4.3.4). */
export const ScopeFlags = { Primary: 0x1, TargetHeader: 0x2, SecurityHeader: 0x4 } as const;

/** A security parameter or result value: an unsigned integer, a byte string, or other CBOR kept raw. */
export type SecurityValue = number | Uint8Array | { readonly raw: Uint8Array };

/** An abstract security block (RFC 9172 §3.6). */
export interface AbstractSecurityBlock {
  readonly targets: readonly number[];
  readonly contextId: number;
  readonly source: Eid;
  /** Parameters by id; present iff the context flags' bit 0 is set. */
  readonly parameters: ReadonlyMap<number, SecurityValue>;
  /** For each target, its results by id. */
  readonly results: readonly ReadonlyMap<number, SecurityValue>[];
}

/** A BPSec failure: malformed security block, unsupported context, or failed verification. */
export class SecurityError extends DtnError {
  constructor(
    readonly reason: 'malformed' | 'unsupported' | 'verification-failed' | 'key',
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(DtnErrorCode.Security, `${reason}: ${message}`, { ...options, details: { reason } });
    this.name = 'SecurityError';
  }
}

function readValue(r: CborReader): SecurityValue {
  const major = r.peekMajor();
  if (major === MajorType.Uint) return r.uint();
  if (major === MajorType.Bytes) return r.bytes();
  const at = r.pos;
  r.skip();
  return { raw: r.buf.subarray(at, r.pos) };
}

function writeValue(w: CborWriter, v: SecurityValue): void {
  if (typeof v === 'number') w.uint(v);
  else if (v instanceof Uint8Array) w.bytes(v);
  else w.raw(v.raw);
}

function readIdValueList(r: CborReader): Map<number, SecurityValue> {
  const n = r.arrayLength();
  if (n > ASB_ITEMS_MAX) r.fail('too many security parameters or results', 'cbor-limit');
  const out = new Map<number, SecurityValue>();
  for (let i = 0; i < n; i++) {
    if (r.arrayLength() !== 2) r.fail('a security parameter or result is [id, value]');
    out.set(r.uint(), readValue(r));
  }
  return out;
}

/**
 * Decodes the block-type-specific data of a BIB or BCB (a CBOR sequence, RFC 9172 §3.6).
 * @throws {SecurityError} `malformed` on any structural problem.
 */
export function decodeAsb(data: Uint8Array): AbstractSecurityBlock {
  try {
    const r = new CborReader(data, false);
    const nt = r.arrayLength();
    if (nt === 0 || nt > ASB_ITEMS_MAX) r.fail('security target count out of range', 'cbor-limit');
    const targets: number[] = [];
    for (let i = 0; i < nt; i++) targets.push(r.uint());
    if (new Set(targets).size !== targets.length) r.fail('duplicate security target');
    const contextId = r.uint();
    const flags = r.uint();
    const source = readEid(r);
    const parameters = (flags & 1) !== 0 ? readIdValueList(r) : new Map<number, SecurityValue>();
    const nr = r.arrayLength();
    if (nr !== nt) r.fail('one result set per target is required (RFC 9172 §3.6)');
    const results: Map<number, SecurityValue>[] = [];
    for (let i = 0; i < nr; i++) results.push(readIdValueList(r));
    if (!r.done) r.fail('bytes after the security results');
    return { targets, contextId, source, parameters, results };
  } catch (e) {
    if (e instanceof BundleError) throw new SecurityError('malformed', e.message, { cause: e });
    throw e;
  }
}

/** Encodes an abstract security block (deterministic CBOR). */
export function encodeAsb(asb: AbstractSecurityBlock): Uint8Array {
  const w = new CborWriter(128);
  w.array(asb.targets.length);
  for (const t of asb.targets) w.uint(t);
  w.uint(asb.contextId);
  w.uint(asb.parameters.size > 0 ? 1 : 0);
  writeEid(w, asb.source);
  if (asb.parameters.size > 0) {
    w.array(asb.parameters.size);
    for (const [id, v] of asb.parameters) {
      w.array(2);
      w.uint(id);
      writeValue(w, v);
    }
  }
  w.array(asb.results.length);
  for (const set of asb.results) {
    w.array(set.size);
    for (const [id, v] of set) {
      w.array(2);
      w.uint(id);
      writeValue(w, v);
    }
  }
  return w.finish();
}

/** AES key wrap (RFC 3394) with node:crypto's `id-aesNNN-wrap`. */
export function aesKeyWrap(kek: Uint8Array, key: Uint8Array): Uint8Array {
  const c = createCipheriv(kwAlgorithm(kek), kek, KW_IV);
  return new Uint8Array(Buffer.concat([c.update(key), c.final()]));
}

/** AES key unwrap (RFC 3394). @throws {SecurityError} `key` when the integrity check fails. */
export function aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Uint8Array {
  try {
    const d = createDecipheriv(kwAlgorithm(kek), kek, KW_IV);
    return new Uint8Array(Buffer.concat([d.update(wrapped), d.final()]));
  } catch (cause) {
    throw new SecurityError('key', 'AES key unwrap failed (wrong key-encryption key?)', { cause });
  }
}

const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

function kwAlgorithm(kek: Uint8Array): string {
  if (kek.length === 16) return 'id-aes128-wrap';
  if (kek.length === 24) return 'id-aes192-wrap';
  if (kek.length === 32) return 'id-aes256-wrap';
  throw new SecurityError('key', `key-encryption key of ${kek.length} bytes; need 16, 24 or 32`);
}

function findBlockByNumber(bundle: Bundle, n: number): CanonicalBlock | undefined {
  return bundle.blocks.find((b) => b.number === n);
}

/** The canonical bytes of a target's data: the primary block's encoding, or a block's BTSD. */
function targetData(bundle: Bundle, target: number): Uint8Array {
  if (target === 0) return encodePrimaryBlock(bundle.primary);
  const b = findBlockByNumber(bundle, target);
  if (b === undefined)
    throw new SecurityError('malformed', `security target block ${target} is not in the bundle`);
  return b.data;
}

/**
 * Builds the scope-dependent prefix shared by the IPPT (RFC 9173 §3.7) and the AAD (§4.7.2):
 * the scope flags, then optionally the primary block, the target's (type, number, flags) and
 * the security block's (type, number, flags).
 */
function scopePrefix(
  w: CborWriter,
  bundle: Bundle,
  scope: number,
  target: number,
  sec: { type: number; number: number; flags: number },
): void {
  w.uint(scope);
  if ((scope & ScopeFlags.Primary) !== 0) w.raw(encodePrimaryBlock(bundle.primary));
  if ((scope & ScopeFlags.TargetHeader) !== 0 && target !== 0) {
    const b = findBlockByNumber(bundle, target) as CanonicalBlock;
    w.uint(b.type);
    w.uint(b.number);
    w.uint(b.flags);
  }
  if ((scope & ScopeFlags.SecurityHeader) !== 0) {
    w.uint(sec.type);
    w.uint(sec.number);
    w.uint(sec.flags);
  }
}

/** The Integrity-Protected Plaintext of RFC 9173 §3.7 for one target. */
export function integrityProtectedPlaintext(
  bundle: Bundle,
  target: number,
  scope: number,
  bib: { number: number; flags: number },
): Uint8Array {
  const w = new CborWriter(256);
  scopePrefix(w, bundle, scope, target, { type: BlockType.Integrity, ...bib });
  w.bytes(targetData(bundle, target));
  return w.finish();
}

/** The AES-GCM additional authenticated data of RFC 9173 §4.7.2 for one target. */
export function aesGcmAad(
  bundle: Bundle,
  target: number,
  scope: number,
  bcb: { number: number; flags: number },
): Uint8Array {
  const w = new CborWriter(128);
  scopePrefix(w, bundle, scope, target, { type: BlockType.Confidentiality, ...bcb });
  return w.finish();
}

function hmacName(v: number): string {
  if (v === ShaVariant.HmacSha256) return 'sha256';
  if (v === ShaVariant.HmacSha384) return 'sha384';
  if (v === ShaVariant.HmacSha512) return 'sha512';
  throw new SecurityError('unsupported', `SHA variant ${v} is not 5, 6 or 7 (RFC 9173 §3.3.1)`);
}

function uintParam(asb: AbstractSecurityBlock, id: number, dflt: number): number {
  const v = asb.parameters.get(id);
  if (v === undefined) return dflt;
  if (typeof v !== 'number')
    throw new SecurityError('malformed', `parameter ${id} must be an unsigned integer`);
  return v;
}

function bytesParam(asb: AbstractSecurityBlock, id: number): Uint8Array | undefined {
  const v = asb.parameters.get(id);
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array))
    throw new SecurityError('malformed', `parameter ${id} must be a byte string`);
  return v;
}

/** Options of {@link addBib}. */
export interface BibInit {
  readonly targets: readonly number[];
  readonly source: Eid;
  /** The HMAC key; with `kek` it is wrapped and carried in the block (parameter 2). */
  readonly key: Uint8Array;
  readonly kek?: Uint8Array;
  readonly shaVariant?: ShaVariant;
  readonly scopeFlags?: number;
  readonly blockNumber: number;
  readonly blockFlags?: number;
  /** Index among the canonical blocks at which to insert the BIB (default 0: right after the primary). */
  readonly position?: number;
  readonly crcType?: CrcType;
}

function insertBlock(bundle: Bundle, block: CanonicalBlock, position = 0): Bundle {
  if (bundle.blocks.some((b) => b.number === block.number))
    throw new SecurityError('malformed', `block number ${block.number} is already used`);
  const blocks = [...bundle.blocks];
  blocks.splice(Math.min(position, blocks.length - 1), 0, block);
  return { primary: bundle.primary, blocks };
}

/**
 * Adds a BIB-HMAC-SHA2 block signing `targets` (RFC 9173 §3). Parameters are written in the
 * order RFC 9173's examples use: SHA variant, wrapped key, scope flags.
 */
export function addBib(bundle: Bundle, init: BibInit): Bundle {
  const variant = init.shaVariant ?? ShaVariant.HmacSha384;
  const scope = init.scopeFlags ?? 7;
  const flags = init.blockFlags ?? 0;
  const params = new Map<number, SecurityValue>([[1, variant]]);
  if (init.kek !== undefined) params.set(2, aesKeyWrap(init.kek, init.key));
  params.set(3, scope);
  const results = init.targets.map((t) => {
    const ippt = integrityProtectedPlaintext(bundle, t, scope, { number: init.blockNumber, flags });
    const mac = createHmac(hmacName(variant), init.key).update(ippt).digest();
    return new Map<number, SecurityValue>([[1, new Uint8Array(mac)]]);
  });
  const asb: AbstractSecurityBlock = {
    targets: init.targets,
    contextId: SecurityContext.BibHmacSha2,
    source: init.source,
    parameters: params,
    results,
  };
  const block: CanonicalBlock = {
    type: BlockType.Integrity,
    number: init.blockNumber,
    flags,
    crcType: init.crcType ?? CrcType.None,
    data: encodeAsb(asb),
  };
  return insertBlock(bundle, block, init.position);
}

/**
 * Verifies every target of the BIB numbered `bibNumber`.
 * @param key the HMAC key, or the key-encryption key when the BIB carries a wrapped key.
 * @throws {SecurityError} `verification-failed` naming the target whose HMAC does not match.
 */
export function verifyBib(bundle: Bundle, bibNumber: number, key: Uint8Array): void {
  const bib = findBlockByNumber(bundle, bibNumber);
  if (bib === undefined || bib.type !== BlockType.Integrity)
    throw new SecurityError('malformed', `block ${bibNumber} is not a BIB`);
  const asb = decodeAsb(bib.data);
  if (asb.contextId !== SecurityContext.BibHmacSha2)
    throw new SecurityError('unsupported', `security context ${asb.contextId}`);
  const variant = uintParam(asb, 1, ShaVariant.HmacSha384);
  const scope = uintParam(asb, 3, 7);
  const wrapped = bytesParam(asb, 2);
  const hmacKey = wrapped === undefined ? key : aesKeyUnwrap(key, wrapped);
  asb.targets.forEach((t, i) => {
    const expected = asb.results[i]?.get(1);
    if (!(expected instanceof Uint8Array))
      throw new SecurityError('malformed', `no HMAC result for target ${t}`);
    const ippt = integrityProtectedPlaintext(bundle, t, scope, {
      number: bib.number,
      flags: bib.flags,
    });
    const mac = createHmac(hmacName(variant), hmacKey).update(ippt).digest();
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
      throw new SecurityError(
        'verification-failed',
        `HMAC over block ${t} does not match (BIB ${bibNumber})`,
      );
    }
  });
}

/** Options of {@link addBcb}. */
export interface BcbInit {
  readonly targets: readonly number[];
  readonly source: Eid;
  /** The content-encryption key; with `kek` it is wrapped and carried (parameter 3). */
  readonly key: Uint8Array;
  readonly kek?: Uint8Array;
  /** 12-byte IV; must never repeat under one key (RFC 9173 §4.3.1). */
  readonly iv: Uint8Array;
  readonly aesVariant?: AesVariant;
  readonly scopeFlags?: number;
  readonly blockNumber: number;
  readonly position?: number;
}

function gcmName(variant: number, key: Uint8Array): 'aes-128-gcm' | 'aes-256-gcm' {
  const name =
    variant === AesVariant.A128GCM
      ? 'aes-128-gcm'
      : variant === AesVariant.A256GCM
        ? 'aes-256-gcm'
        : undefined;
  if (name === undefined)
    throw new SecurityError(
      'unsupported',
      `AES variant ${variant} is not 1 or 3 (RFC 9173 §4.3.2)`,
    );
  if (key.length !== (name === 'aes-128-gcm' ? 16 : 32))
    throw new SecurityError(
      'key',
      `${name} needs a ${name === 'aes-128-gcm' ? 16 : 32}-byte key, got ${key.length}`,
    );
  return name;
}

function replaceData(bundle: Bundle, number: number, data: Uint8Array): Bundle {
  return {
    primary: bundle.primary,
    blocks: bundle.blocks.map((b) => (b.number === number ? { ...b, data } : b)),
  };
}

/**
 * Encrypts `targets` in place with AES-GCM and adds the BCB (RFC 9173 §4). The BCB's block
 * processing flags have "replicate in every fragment" set, as RFC 9172 §3.9 requires.
 */
export function addBcb(bundle: Bundle, init: BcbInit): Bundle {
  const variant = init.aesVariant ?? AesVariant.A256GCM;
  const scope = init.scopeFlags ?? 7;
  const flags = 0x01;
  const alg = gcmName(variant, init.key);
  const params = new Map<number, SecurityValue>([
    [1, init.iv],
    [2, variant],
  ]);
  if (init.kek !== undefined) params.set(3, aesKeyWrap(init.kek, init.key));
  params.set(4, scope);
  let out = bundle;
  const results = init.targets.map((t) => {
    if (t === 0)
      throw new SecurityError('malformed', 'a BCB cannot target the primary block (RFC 9172 §3.9)');
    const target = findBlockByNumber(out, t);
    if (target === undefined)
      throw new SecurityError('malformed', `security target block ${t} is not in the bundle`);
    const c = createCipheriv(alg, init.key, init.iv, { authTagLength: 16 });
    c.setAAD(aesGcmAad(out, t, scope, { number: init.blockNumber, flags }));
    const ct = Buffer.concat([c.update(target.data), c.final()]);
    out = replaceData(out, t, new Uint8Array(ct));
    return new Map<number, SecurityValue>([[1, new Uint8Array(c.getAuthTag())]]);
  });
  const asb: AbstractSecurityBlock = {
    targets: init.targets,
    contextId: SecurityContext.BcbAesGcm,
    source: init.source,
    parameters: params,
    results,
  };
  return insertBlock(
    out,
    {
      type: BlockType.Confidentiality,
      number: init.blockNumber,
      flags,
      crcType: CrcType.None,
      data: encodeAsb(asb),
    },
    init.position,
  );
}

/**
 * Decrypts every target of the BCB numbered `bcbNumber` and removes the BCB.
 * @param key the content key, or the key-encryption key when the BCB carries a wrapped key.
 * @throws {SecurityError} `verification-failed` when a tag does not authenticate.
 */
export function decryptBcb(bundle: Bundle, bcbNumber: number, key: Uint8Array): Bundle {
  const bcb = findBlockByNumber(bundle, bcbNumber);
  if (bcb === undefined || bcb.type !== BlockType.Confidentiality)
    throw new SecurityError('malformed', `block ${bcbNumber} is not a BCB`);
  const asb = decodeAsb(bcb.data);
  if (asb.contextId !== SecurityContext.BcbAesGcm)
    throw new SecurityError('unsupported', `security context ${asb.contextId}`);
  const iv = bytesParam(asb, 1);
  if (iv === undefined)
    throw new SecurityError('malformed', 'BCB-AES-GCM needs an IV (parameter 1)');
  const variant = uintParam(asb, 2, AesVariant.A256GCM);
  const wrapped = bytesParam(asb, 3);
  const scope = uintParam(asb, 4, 7);
  const cek = wrapped === undefined ? key : aesKeyUnwrap(key, wrapped);
  const alg = gcmName(variant, cek);
  let out = bundle;
  asb.targets.forEach((t, i) => {
    const tag = asb.results[i]?.get(1);
    if (!(tag instanceof Uint8Array))
      throw new SecurityError('malformed', `no authentication tag for target ${t}`);
    const target = findBlockByNumber(out, t);
    if (target === undefined)
      throw new SecurityError('malformed', `security target block ${t} is not in the bundle`);
    try {
      const d = createDecipheriv(alg, cek, iv, { authTagLength: tag.length });
      d.setAAD(aesGcmAad(out, t, scope, { number: bcb.number, flags: bcb.flags }));
      d.setAuthTag(tag);
      out = replaceData(out, t, new Uint8Array(Buffer.concat([d.update(target.data), d.final()])));
    } catch (cause) {
      throw new SecurityError(
        'verification-failed',
        `AES-GCM tag over block ${t} does not authenticate (BCB ${bcbNumber})`,
        { cause },
      );
    }
  });
  return { primary: out.primary, blocks: out.blocks.filter((b) => b.number !== bcbNumber) };
}
