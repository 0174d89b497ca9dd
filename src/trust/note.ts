/**
 * C2SP signed notes (c2sp.org/signed-note), tlog checkpoints (c2sp.org/tlog-checkpoint) and
 * witness cosignatures (c2sp.org/tlog-cosignature, the Ed25519 `cosignature/v1` type).
 *
 * A note is UTF-8 text ending in a newline, a blank line, then lines
 * `— <key name> base64(key ID (4 bytes, big-endian) ‖ signature)`. Signature types used here:
 *  - 0x01 Ed25519 over the note text (signed-note §Ed25519 signatures);
 *  - 0x04 Ed25519 cosignature/v1: signature = u64 timestamp ‖ Ed25519 over
 *    "cosignature/v1\ntime <t>\n" ‖ note text (tlog-cosignature §Ed25519 signed message);
 *  - 0xff ‖ DER(OID of id-MLDSA65-Ed25519-SHA512 = 1.3.6.1.5.5.7.6.48) — our composite type,
 *    using the "0xff followed by a longer identifier" rule of signed-note §Signature types. The
 *    composite signature is over the note text with ctx = "c2sp.org/signed-note".
 * Key ID = SHA-256(key name ‖ 0x0A ‖ type identifier ‖ public key)[:4] for every type.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { bytesEqual, concatBytes, fromBase64Strict, toBase64, u64be, utf8 } from './bytes.ts';
import {
  COMPOSITE_SCHEMES,
  type CompositeAlgorithm,
  type CompositeSigner,
  CompositeVerifier,
} from './composite.ts';
import {
  ED25519_SIGNATURE_BYTES,
  ed25519PrivateKeyObject,
  ed25519PublicKey,
  ed25519PublicKeyObject,
  ed25519Sign,
  ed25519Verify,
} from './ed25519.ts';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';
import { checkKeyName } from './keyfile.ts';
import { MERKLE_HASH_BYTES } from './merkle.ts';

/** Largest note accepted (text plus signatures; composite signatures are ~4.5 KiB in base64). */
export const NOTE_BYTES_MAX = 256 * 1024;
/** Most signature lines accepted in one note (signed-note requires at least 16). */
export const NOTE_SIGNATURES_MAX = 64;
/** Signature type byte of Ed25519 note signatures. */
export const NOTE_TYPE_ED25519 = 0x01;
/** Signature type byte of Ed25519 cosignature/v1. */
export const NOTE_TYPE_COSIGNATURE_V1 = 0x04;
/** Composite signature context string for notes. */
export const NOTE_COMPOSITE_CONTEXT: Uint8Array = utf8('c2sp.org/signed-note');

/** Type identifier bytes (for key IDs) of a composite algorithm: 0xff ‖ DER OID. */
export function compositeNoteType(alg: CompositeAlgorithm): Uint8Array {
  return concatBytes(Uint8Array.of(0xff), COMPOSITE_SCHEMES[alg].oidDer);
}

/** signed-note key ID: SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4] as a uint32. */
export function noteKeyId(name: string, type: Uint8Array, publicKey: Uint8Array): number {
  const h = createHash('sha256')
    .update(utf8(name))
    .update(Uint8Array.of(0x0a))
    .update(type)
    .update(publicKey)
    .digest();
  return h.readUInt32BE(0);
}

/** One signature line. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  readonly signature: Uint8Array;
}

/** A parsed note. */
export interface Note {
  /** The note text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** Signs note text. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(text: Uint8Array): Uint8Array;
}

/** Verifies note signatures of one key. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

function noteError(message: string): TrustError {
  return new TrustError(TRUST_ERROR_CODES.noteFormat, message);
}

const SIG_LINE_PREFIX = '\u2014 ';

/** True when `s` has an ASCII control character other than newline (signed-note §Format). */
function hasControlCharacters(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a) || c === 0x7f) return true;
  }
  return false;
}

/**
 * Parses a signed note strictly (signed-note §Format): no control characters but newline,
 * text ending in a newline, a blank separator line, ≥ 1 well-formed signature lines.
 * @throws {TrustError} TRUST_NOTE_FORMAT or TRUST_TOO_LARGE.
 */
export function parseNote(note: string): Note {
  if (Buffer.byteLength(note) > NOTE_BYTES_MAX)
    throw new TrustError(TRUST_ERROR_CODES.tooLarge, `note exceeds ${NOTE_BYTES_MAX} bytes`);
  if (hasControlCharacters(note)) throw noteError('note contains control characters');
  if (note.includes('\ufffd')) throw noteError('note is not valid UTF-8');
  const sep = note.lastIndexOf('\n\n');
  if (sep < 0) throw noteError('note has no blank line before its signatures');
  const text = note.slice(0, sep + 1);
  const sigBlock = note.slice(sep + 2);
  if (!sigBlock.endsWith('\n')) throw noteError('signature block must end with a newline');
  const lines = sigBlock.slice(0, -1).split('\n');
  if (lines.length > NOTE_SIGNATURES_MAX)
    throw new TrustError(TRUST_ERROR_CODES.tooLarge, `more than ${NOTE_SIGNATURES_MAX} signatures`);
  const signatures = lines.map((line) => {
    if (!line.startsWith(SIG_LINE_PREFIX))
      throw noteError(`malformed signature line "${line.slice(0, 40)}"`);
    const parts = line.slice(SIG_LINE_PREFIX.length).split(' ');
    if (parts.length !== 2) throw noteError('signature line must be "— <name> <base64>"');
    const [name, b64] = parts as [string, string];
    checkKeyName(name);
    const raw = fromBase64Strict(b64);
    if (raw === undefined || raw.length < 5)
      throw noteError(`signature of ${name} is not canonical base64 of ≥ 5 bytes`);
    return {
      name,
      keyId: Buffer.from(raw.buffer, raw.byteOffset, 4).readUInt32BE(0),
      signature: raw.slice(4),
    };
  });
  if (text.length === 0) throw noteError('empty note text');
  return { text, signatures };
}

/** Formats a note with its signature lines. */
export function formatNote(note: Note): string {
  const lines = note.signatures.map((s) => {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(s.keyId >>> 0, 0);
    return `${SIG_LINE_PREFIX}${s.name} ${toBase64(concatBytes(id, s.signature))}\n`;
  });
  return `${note.text}\n${lines.join('')}`;
}

/** Signs `text` with every signer and formats the note. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  if (!text.endsWith('\n')) throw noteError('note text must end with a newline');
  const bytes = utf8(text);
  return formatNote({
    text,
    signatures: signers.map((s) => ({ name: s.name, keyId: s.keyId, signature: s.sign(bytes) })),
  });
}

/** Adds signatures to an already signed note (e.g. witness cosignatures). */
export function addSignatures(note: string, extra: readonly NoteSignature[]): string {
  const n = parseNote(note);
  return formatNote({ text: n.text, signatures: [...n.signatures, ...extra] });
}

/**
 * Verifies a note against known keys (signed-note §Signatures): signatures of unknown
 * (name, key ID) pairs are ignored; a known key whose signature fails rejects the whole note;
 * at least one known key must verify.
 * @returns The parsed note and the verifiers whose signatures verified.
 * @throws {TrustError} TRUST_BAD_SIGNATURE or TRUST_NOTE_FORMAT.
 */
export function openNote(
  note: string,
  verifiers: readonly NoteVerifier[],
): { note: Note; verified: NoteVerifier[] } {
  const n = parseNote(note);
  const text = utf8(n.text);
  const verified: NoteVerifier[] = [];
  for (const s of n.signatures) {
    const v = verifiers.find((x) => x.name === s.name && x.keyId === s.keyId);
    if (v === undefined) continue;
    if (!v.verify(text, s.signature))
      throw new TrustError(
        TRUST_ERROR_CODES.badSignature,
        `signature of ${s.name} does not verify`,
      );
    if (!verified.includes(v)) verified.push(v);
  }
  if (verified.length === 0)
    throw new TrustError(TRUST_ERROR_CODES.badSignature, 'no signature from a known key');
  return { note: n, verified };
}

/** An Ed25519 note signer (type 0x01). */
export function ed25519NoteSigner(name: string, secretKey: Uint8Array): NoteSigner {
  checkKeyName(name);
  const key: KeyObject = ed25519PrivateKeyObject(secretKey);
  return {
    name,
    keyId: noteKeyId(name, Uint8Array.of(NOTE_TYPE_ED25519), ed25519PublicKey(secretKey)),
    sign: (t) => ed25519Sign(key, t),
  };
}

/** An Ed25519 note verifier (type 0x01). */
export function ed25519NoteVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  const key = ed25519PublicKeyObject(publicKey);
  return {
    name,
    keyId: noteKeyId(name, Uint8Array.of(NOTE_TYPE_ED25519), publicKey),
    verify: (t, s) => ed25519Verify(key, t, s),
  };
}

/** A composite note signer (type 0xff ‖ OID). */
export function compositeNoteSigner(name: string, signer: CompositeSigner): NoteSigner {
  checkKeyName(name);
  return {
    name,
    keyId: noteKeyId(name, compositeNoteType(signer.alg), signer.publicKey),
    sign: (t) => signer.sign(t, NOTE_COMPOSITE_CONTEXT),
  };
}

/** A composite note verifier. */
export function compositeNoteVerifier(
  name: string,
  alg: CompositeAlgorithm,
  publicKey: Uint8Array,
): NoteVerifier {
  const v = CompositeVerifier.create(alg, publicKey);
  return {
    name,
    keyId: noteKeyId(name, compositeNoteType(alg), publicKey),
    verify: (t, s) => v.verify(t, s, NOTE_COMPOSITE_CONTEXT),
  };
}

function cosignedMessage(timestamp: bigint, text: Uint8Array): Uint8Array {
  return concatBytes(utf8(`cosignature/v1\ntime ${timestamp.toString()}\n`), text);
}

/** A witness's cosignature/v1 signer. `nowSeconds` gives the POSIX timestamp. */
export interface Cosigner {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  cosign(text: Uint8Array, nowSeconds: number): NoteSignature;
}

/** Builds a cosignature/v1 signer from an Ed25519 secret key. */
export function cosigner(name: string, secretKey: Uint8Array): Cosigner {
  checkKeyName(name);
  const key = ed25519PrivateKeyObject(secretKey);
  const publicKey = ed25519PublicKey(secretKey);
  const keyId = noteKeyId(name, Uint8Array.of(NOTE_TYPE_COSIGNATURE_V1), publicKey);
  return {
    name,
    keyId,
    publicKey,
    cosign(text, nowSeconds) {
      const t = BigInt(Math.floor(nowSeconds));
      return {
        name,
        keyId,
        signature: concatBytes(u64be(Number(t)), ed25519Sign(key, cosignedMessage(t, text))),
      };
    },
  };
}

/** A cosignature/v1 verifier; also exposes the timestamp of the last verified signature. */
export interface CosignatureVerifier extends NoteVerifier {
  readonly publicKey: Uint8Array;
  /** Parses the timestamp of a cosignature (undefined when malformed). */
  timestampOf(signature: Uint8Array): number | undefined;
}

/** Builds a cosignature/v1 verifier for a witness public key. */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): CosignatureVerifier {
  const key = ed25519PublicKeyObject(publicKey);
  const timestampOf = (sig: Uint8Array): number | undefined => {
    if (sig.length !== 8 + ED25519_SIGNATURE_BYTES) return undefined;
    const t = Buffer.from(sig.buffer, sig.byteOffset, 8).readBigUInt64BE(0);
    return t > 2n ** 63n - 1n ? undefined : Number(t);
  };
  return {
    name,
    publicKey,
    keyId: noteKeyId(name, Uint8Array.of(NOTE_TYPE_COSIGNATURE_V1), publicKey),
    timestampOf,
    verify(text, sig) {
      const t = timestampOf(sig);
      if (t === undefined) return false;
      return ed25519Verify(key, cosignedMessage(BigInt(t), text), sig.subarray(8));
    },
  };
}

/** A parsed tlog checkpoint body (c2sp.org/tlog-checkpoint). */
export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
  readonly extensions: readonly string[];
}

/** The note text of a checkpoint. */
export function formatCheckpoint(c: Checkpoint): string {
  if (c.origin.length === 0 || c.origin.includes('\n'))
    throw noteError('checkpoint origin must be one non-empty line');
  if (c.root.length !== MERKLE_HASH_BYTES) throw noteError('checkpoint root must be 32 bytes');
  return `${c.origin}\n${c.size}\n${toBase64(c.root)}\n${c.extensions.map((e) => `${e}\n`).join('')}`;
}

/**
 * Parses a checkpoint body: origin line, decimal size without leading zeros, base64 root
 * hash, then optional non-empty extension lines.
 * @throws {TrustError} TRUST_NOTE_FORMAT.
 */
export function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split('\n');
  if (lines.pop() !== '' || lines.length < 3)
    throw noteError('checkpoint needs origin, size and root lines');
  const [origin, sizeText, rootText, ...extensions] = lines as [
    string,
    string,
    string,
    ...string[],
  ];
  if (origin.length === 0) throw noteError('empty checkpoint origin');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText)))
    throw noteError(`bad checkpoint size "${sizeText}"`);
  const root = fromBase64Strict(rootText);
  if (root === undefined || root.length !== MERKLE_HASH_BYTES)
    throw noteError('checkpoint root must be base64 of 32 bytes');
  if (extensions.some((e) => e.length === 0)) throw noteError('empty checkpoint extension line');
  return { origin, size: Number(sizeText), root, extensions };
}

/** True when two checkpoints are the same tree head. */
export function sameTreeHead(a: Checkpoint, b: Checkpoint): boolean {
  return a.origin === b.origin && a.size === b.size && bytesEqual(a.root, b.root);
}
