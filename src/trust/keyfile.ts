/**
 * Key files on disk. One JSON object per file, UTF-8, newline-terminated:
 *
 *     { "format": "genesis-key/v1", "kind": "private" | "public", "alg": <KeyAlgorithm>,
 *       "name": <key name>, "publicKey": <base64>, "secretKey": <base64, private only> }
 *
 * `<path>.key` holds the private key and is created with mode 0600 and O_EXCL (never
 * overwritten); `<path>.pub` holds the public half. Loading refuses a private file readable by
 * group or others (like OpenSSH), unknown fields, a different algorithm than expected, wrong
 * lengths, and a public key that does not match the private key.
 */
import {
  closeSync,
  constants,
  fsyncSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
import { fromBase64Strict, toBase64 } from './bytes.ts';
import {
  COMPOSITE_SCHEMES,
  type CompositeAlgorithm,
  compositeKeyGen,
  compositePublicKey,
} from './composite.ts';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SECRET_KEY_BYTES,
  ed25519KeyGen,
  ed25519PublicKey,
} from './ed25519.ts';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';
import {
  HYBRID_KEM_ALG,
  HYBRID_KEM_PUBLIC_KEY_BYTES,
  HYBRID_KEM_SECRET_KEY_BYTES,
  hybridKemKeyPair,
  hybridKemPublicKey,
} from './kem.ts';

/** Format tag of every key file. */
export const KEY_FILE_FORMAT = 'genesis-key/v1';
/** Largest key file accepted (an ML-DSA-65 public key in base64 is ~2.6 KiB). */
export const KEY_FILE_BYTES_MAX = 64 * 1024;
/** Mode of private key files. */
export const PRIVATE_KEY_FILE_MODE = 0o600;
/** Longest key name (C2SP signed-note names are single-line text; keep them short). */
export const KEY_NAME_BYTES_MAX = 256;

/** Every algorithm a key file may hold. */
export type KeyAlgorithm = CompositeAlgorithm | 'Ed25519' | typeof HYBRID_KEM_ALG;

/** A key pair with its name and algorithm. */
export interface NamedKeyPair {
  readonly alg: KeyAlgorithm;
  readonly name: string;
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** A public key with its name and algorithm. */
export interface NamedPublicKey {
  readonly alg: KeyAlgorithm;
  readonly name: string;
  readonly publicKey: Uint8Array;
}

const ALGS: readonly KeyAlgorithm[] = [
  'MLDSA65-Ed25519-SHA512',
  'MLDSA44-Ed25519-SHA512',
  'Ed25519',
  HYBRID_KEM_ALG,
];

function lengths(alg: KeyAlgorithm): { pk: number; sk: number } {
  if (alg === 'Ed25519') return { pk: ED25519_PUBLIC_KEY_BYTES, sk: ED25519_SECRET_KEY_BYTES };
  if (alg === HYBRID_KEM_ALG)
    return { pk: HYBRID_KEM_PUBLIC_KEY_BYTES, sk: HYBRID_KEM_SECRET_KEY_BYTES };
  const s = COMPOSITE_SCHEMES[alg];
  return { pk: s.publicKeyBytes, sk: s.secretKeyBytes };
}

/** Derives the public key of `secretKey` under `alg`. */
export function publicKeyOf(alg: KeyAlgorithm, secretKey: Uint8Array): Uint8Array {
  if (alg === 'Ed25519') return ed25519PublicKey(secretKey);
  if (alg === HYBRID_KEM_ALG) return hybridKemPublicKey(secretKey);
  return compositePublicKey(alg, secretKey);
}

/** Checks a key name: printable, no spaces or '+' (C2SP signed-note §Format), bounded. */
export function checkKeyName(name: string): void {
  if (
    name.length === 0 ||
    Buffer.byteLength(name) > KEY_NAME_BYTES_MAX ||
    /[\s+\p{Cc}]/u.test(name)
  ) {
    throw new TrustError(
      TRUST_ERROR_CODES.keyFormat,
      `key name "${name}" must be 1..${KEY_NAME_BYTES_MAX} bytes without spaces, '+' or control characters`,
    );
  }
}

/** Generates a fresh named key pair. */
export function generateKeyPair(alg: KeyAlgorithm, name: string): NamedKeyPair {
  checkKeyName(name);
  if (alg === 'Ed25519') return { alg, name, ...ed25519KeyGen() };
  if (alg === HYBRID_KEM_ALG) return { alg, name, ...hybridKemKeyPair() };
  if (!ALGS.includes(alg))
    throw new TrustError(TRUST_ERROR_CODES.wrongAlgorithm, `unknown key algorithm ${String(alg)}`);
  const kp = compositeKeyGen(alg);
  return { alg, name, publicKey: kp.publicKey, secretKey: kp.secretKey };
}

function writeExclusive(path: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new TrustError(
        TRUST_ERROR_CODES.exists,
        `${path} already exists; refusing to overwrite a key`,
        { cause },
      );
    }
    throw cause;
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `<prefix>.key` (mode 0600) and `<prefix>.pub`. Neither may exist yet.
 * @returns The two paths.
 */
export function writeKeyPair(
  prefix: string,
  kp: NamedKeyPair,
): { privatePath: string; publicPath: string } {
  const privatePath = `${prefix}.key`;
  const publicPath = `${prefix}.pub`;
  const base = {
    format: KEY_FILE_FORMAT,
    alg: kp.alg,
    name: kp.name,
    publicKey: toBase64(kp.publicKey),
  };
  writeExclusive(
    privatePath,
    `${JSON.stringify({ ...base, kind: 'private', secretKey: toBase64(kp.secretKey) })}\n`,
    PRIVATE_KEY_FILE_MODE,
  );
  writeExclusive(publicPath, `${JSON.stringify({ ...base, kind: 'public' })}\n`, 0o644);
  return { privatePath, publicPath };
}

interface RawKeyFile {
  format: string;
  kind: 'private' | 'public';
  alg: KeyAlgorithm;
  name: string;
  publicKey: string;
  secretKey?: string;
}

const FIELDS = new Set(['format', 'kind', 'alg', 'name', 'publicKey', 'secretKey']);

function parseKeyFile(path: string, text: string): RawKeyFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new TrustError(TRUST_ERROR_CODES.keyFormat, `${path}: not a JSON key file`, { cause });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new TrustError(TRUST_ERROR_CODES.keyFormat, `${path}: not a key object`);
  const o = raw as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0)
    throw new TrustError(
      TRUST_ERROR_CODES.keyFormat,
      `${path}: unknown field(s) ${unknown.join(', ')}`,
    );
  if (o.format !== KEY_FILE_FORMAT)
    throw new TrustError(TRUST_ERROR_CODES.keyFormat, `${path}: format is not ${KEY_FILE_FORMAT}`);
  if (o.kind !== 'private' && o.kind !== 'public')
    throw new TrustError(TRUST_ERROR_CODES.keyFormat, `${path}: kind must be private or public`);
  if (!ALGS.includes(o.alg as KeyAlgorithm)) {
    throw new TrustError(
      TRUST_ERROR_CODES.wrongAlgorithm,
      `${path}: unknown algorithm ${JSON.stringify(o.alg)}`,
    );
  }
  if (typeof o.name !== 'string' || typeof o.publicKey !== 'string')
    throw new TrustError(
      TRUST_ERROR_CODES.keyFormat,
      `${path}: name and publicKey must be strings`,
    );
  if (o.secretKey !== undefined && typeof o.secretKey !== 'string')
    throw new TrustError(TRUST_ERROR_CODES.keyFormat, `${path}: secretKey must be a string`);
  checkKeyName(o.name);
  return o as unknown as RawKeyFile;
}

function decodeKey(path: string, what: string, b64: string, want: number): Uint8Array {
  const b = fromBase64Strict(b64);
  if (b === undefined)
    throw new TrustError(TRUST_ERROR_CODES.keyFormat, `${path}: ${what} is not canonical base64`);
  if (b.length !== want) {
    throw new TrustError(
      TRUST_ERROR_CODES.badLength,
      `${path}: ${what} is ${b.length} bytes, expected ${want}`,
      { details: { got: b.length, want } },
    );
  }
  return b;
}

function readBounded(path: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (cause) {
    throw new TrustError(TRUST_ERROR_CODES.notFound, `${path}: no such key file`, { cause });
  }
  if (size > KEY_FILE_BYTES_MAX)
    throw new TrustError(
      TRUST_ERROR_CODES.tooLarge,
      `${path}: ${size} bytes, max ${KEY_FILE_BYTES_MAX}`,
    );
  return readFileSync(path, 'utf8');
}

function checkAlg(path: string, got: KeyAlgorithm, expected: KeyAlgorithm | undefined): void {
  if (expected !== undefined && got !== expected) {
    throw new TrustError(
      TRUST_ERROR_CODES.wrongAlgorithm,
      `${path}: holds a ${got} key, expected ${expected}`,
      { details: { got, expected } },
    );
  }
}

/**
 * Loads a private key file.
 * @throws {TrustError} TRUST_KEY_PERMISSIONS (group/other can read), TRUST_WRONG_ALGORITHM,
 *   TRUST_BAD_LENGTH, TRUST_KEY_FORMAT (bad JSON, unknown fields, mismatched public key),
 *   TRUST_NOT_FOUND.
 */
export function readPrivateKey(path: string, expectedAlg?: KeyAlgorithm): NamedKeyPair {
  const text = readBounded(path);
  const raw = parseKeyFile(path, text);
  if (raw.kind !== 'private' || raw.secretKey === undefined)
    throw new TrustError(TRUST_ERROR_CODES.keyFormat, `${path}: not a private key file`);
  // Permissions are checked before the key is used (like OpenSSH): a readable private key
  // file must be treated as leaked, not silently accepted.
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new TrustError(
      TRUST_ERROR_CODES.keyPermissions,
      `${path}: mode ${mode.toString(8)} lets others read a private key; run chmod 600 ${path}`,
      {
        details: { mode: mode.toString(8) },
      },
    );
  }
  checkAlg(path, raw.alg, expectedAlg);
  const len = lengths(raw.alg);
  const secretKey = decodeKey(path, 'secretKey', raw.secretKey, len.sk);
  const publicKey = decodeKey(path, 'publicKey', raw.publicKey, len.pk);
  const derived = publicKeyOf(raw.alg, secretKey);
  if (Buffer.compare(derived, publicKey) !== 0)
    throw new TrustError(
      TRUST_ERROR_CODES.keyFormat,
      `${path}: publicKey does not match secretKey`,
    );
  return { alg: raw.alg, name: raw.name, publicKey, secretKey };
}

/** Loads a public key file (or the public half of a private key file). */
export function readPublicKey(path: string, expectedAlg?: KeyAlgorithm): NamedPublicKey {
  const raw = parseKeyFile(path, readBounded(path));
  checkAlg(path, raw.alg, expectedAlg);
  return {
    alg: raw.alg,
    name: raw.name,
    publicKey: decodeKey(path, 'publicKey', raw.publicKey, lengths(raw.alg).pk),
  };
}
