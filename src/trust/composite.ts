/**
 * Composite ML-DSA + Ed25519 signatures as in draft-ietf-lamps-pq-composite-sigs (-14 to -19,
 * whose published vectors we verify): `id-MLDSA65-Ed25519-SHA512` and `id-MLDSA44-Ed25519-SHA512`.
 *
 * Message representative (draft §4.2): M' = Prefix ‖ Label ‖ len(ctx) ‖ ctx ‖ SHA-512(M), with
 * Prefix = "CompositeAlgorithmSignatures2025" and a one-byte ctx length (ctx ≤ 255 bytes).
 * The ML-DSA component signs M' with its FIPS 204 context set to Label (pure ML-DSA); Ed25519
 * signs M' plainly. Keys and signatures are plain concatenations, ML-DSA part first:
 * public key = pk_ML-DSA ‖ pk_Ed25519, private key = ML-DSA seed (32) ‖ Ed25519 seed (32),
 * signature = σ_ML-DSA ‖ σ_Ed25519. Verification succeeds only if both components verify, so a
 * forger must break both ML-DSA and Ed25519.
 */
import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { ml_dsa44, ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { concatBytes, utf8 } from './bytes.ts';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SECRET_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  ed25519PrivateKeyObject,
  ed25519PublicKey,
  ed25519PublicKeyObject,
  ed25519Sign,
  ed25519Verify,
} from './ed25519.ts';
import { TRUST_ERROR_CODES, TrustError } from './errors.ts';

/** Draft §4.2 prefix, identical for every composite algorithm. */
export const COMPOSITE_PREFIX: Uint8Array = utf8('CompositeAlgorithmSignatures2025');
/** Longest application context string: its length is encoded in one byte (draft §4.2). */
export const COMPOSITE_CONTEXT_BYTES_MAX = 255;
/** ML-DSA seed size (FIPS 204 ξ). */
export const MLDSA_SEED_BYTES = 32;

/** Names of the supported composite algorithms. */
export type CompositeAlgorithm = 'MLDSA65-Ed25519-SHA512' | 'MLDSA44-Ed25519-SHA512';

type MlDsa = typeof ml_dsa65;

/** Static description of one composite algorithm. */
export interface CompositeScheme {
  readonly alg: CompositeAlgorithm;
  /** Draft label: the domain separator and the ML-DSA context. */
  readonly label: string;
  /** DER encoding of the algorithm OID (draft §7), used as the signed-note type identifier. */
  readonly oidDer: Uint8Array;
  readonly publicKeyBytes: number;
  readonly secretKeyBytes: number;
  readonly signatureBytes: number;
  readonly mldsa: MlDsa;
}

function scheme(alg: CompositeAlgorithm, mldsa: MlDsa, oidLastArc: number): CompositeScheme {
  const pk = mldsa.lengths.publicKey ?? 0;
  const sig = mldsa.lengths.signature ?? 0;
  return {
    alg,
    label: `COMPSIG-${alg}`,
    // 1.3.6.1.5.5.7.6.<arc>: the OIDs the -14..-19 vectors carry in their PKCS#8 encodings.
    oidDer: Uint8Array.of(0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x06, oidLastArc),
    publicKeyBytes: pk + ED25519_PUBLIC_KEY_BYTES,
    secretKeyBytes: MLDSA_SEED_BYTES + ED25519_SECRET_KEY_BYTES,
    signatureBytes: sig + ED25519_SIGNATURE_BYTES,
    mldsa,
  };
}

/** The composite schemes by name. */
export const COMPOSITE_SCHEMES: Readonly<Record<CompositeAlgorithm, CompositeScheme>> = {
  'MLDSA65-Ed25519-SHA512': scheme('MLDSA65-Ed25519-SHA512', ml_dsa65, 48),
  'MLDSA44-Ed25519-SHA512': scheme('MLDSA44-Ed25519-SHA512', ml_dsa44, 39),
};

/** The default identity algorithm of Genesis. */
export const DEFAULT_COMPOSITE_ALG: CompositeAlgorithm = 'MLDSA65-Ed25519-SHA512';

function schemeOf(alg: CompositeAlgorithm): CompositeScheme {
  const s = COMPOSITE_SCHEMES[alg];
  if (s === undefined)
    throw new TrustError(
      TRUST_ERROR_CODES.wrongAlgorithm,
      `unknown composite algorithm ${String(alg)}`,
    );
  return s;
}

/**
 * M' of draft §4.2 for `message` under `ctx`.
 * @throws {TrustError} TRUST_TOO_LARGE when ctx is longer than 255 bytes.
 */
export function compositeMessageRepresentative(
  alg: CompositeAlgorithm,
  message: Uint8Array,
  ctx: Uint8Array = new Uint8Array(0),
): Uint8Array {
  if (ctx.length > COMPOSITE_CONTEXT_BYTES_MAX) {
    throw new TrustError(
      TRUST_ERROR_CODES.tooLarge,
      `composite ctx is ${ctx.length} bytes, max ${COMPOSITE_CONTEXT_BYTES_MAX}`,
    );
  }
  const ph = new Uint8Array(createHash('sha512').update(message).digest());
  return concatBytes(
    COMPOSITE_PREFIX,
    utf8(schemeOf(alg).label),
    Uint8Array.of(ctx.length),
    ctx,
    ph,
  );
}

function checkLength(what: string, got: number, want: number): void {
  if (got !== want)
    throw new TrustError(TRUST_ERROR_CODES.badLength, `${what} is ${got} bytes, expected ${want}`, {
      details: { got, want },
    });
}

/** A composite key pair as raw bytes. */
export interface CompositeKeyPair {
  readonly alg: CompositeAlgorithm;
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/**
 * Generates a composite key pair. `seed` (64 bytes: ML-DSA ξ ‖ Ed25519 seed) makes it
 * deterministic; it is copied into the secret key, which is exactly that seed pair.
 */
export function compositeKeyGen(
  alg: CompositeAlgorithm = DEFAULT_COMPOSITE_ALG,
  seed?: Uint8Array,
): CompositeKeyPair {
  const s = schemeOf(alg);
  const sk =
    seed === undefined ? new Uint8Array(randomBytes(s.secretKeyBytes)) : Uint8Array.from(seed);
  checkLength('composite seed', sk.length, s.secretKeyBytes);
  return { alg, secretKey: sk, publicKey: compositePublicKey(alg, sk) };
}

/** The composite public key of a composite private key. */
export function compositePublicKey(alg: CompositeAlgorithm, secretKey: Uint8Array): Uint8Array {
  const s = schemeOf(alg);
  checkLength(`${alg} private key`, secretKey.length, s.secretKeyBytes);
  const ml = s.mldsa.keygen(secretKey.subarray(0, MLDSA_SEED_BYTES));
  const ed = ed25519PublicKey(secretKey.subarray(MLDSA_SEED_BYTES));
  return concatBytes(ml.publicKey, ed);
}

/**
 * A signer holding the expanded ML-DSA key and the native Ed25519 key, so repeated signing
 * skips key expansion (ML-DSA keygen costs about as much as a signature).
 */
export class CompositeSigner {
  readonly alg: CompositeAlgorithm;
  readonly publicKey: Uint8Array;
  private readonly mlSecret: Uint8Array;
  private readonly edKey: KeyObject;

  constructor(alg: CompositeAlgorithm, secretKey: Uint8Array) {
    const s = schemeOf(alg);
    checkLength(`${alg} private key`, secretKey.length, s.secretKeyBytes);
    this.alg = alg;
    const ml = s.mldsa.keygen(secretKey.subarray(0, MLDSA_SEED_BYTES));
    this.mlSecret = ml.secretKey;
    const edSeed = secretKey.subarray(MLDSA_SEED_BYTES);
    this.edKey = ed25519PrivateKeyObject(edSeed);
    this.publicKey = concatBytes(ml.publicKey, ed25519PublicKey(edSeed));
  }

  /**
   * Signs `message` under application context `ctx` (draft §4.2 Composite-ML-DSA.Sign).
   * ML-DSA uses its hedged (randomised) variant, as FIPS 204 recommends.
   */
  sign(message: Uint8Array, ctx: Uint8Array = new Uint8Array(0)): Uint8Array {
    const s = schemeOf(this.alg);
    const mPrime = compositeMessageRepresentative(this.alg, message, ctx);
    const mlSig = s.mldsa.sign(mPrime, this.mlSecret, { context: utf8(s.label) });
    const edSig = ed25519Sign(this.edKey, mPrime);
    return concatBytes(mlSig, edSig);
  }
}

/** One-shot composite signing (expands the key each call; prefer {@link CompositeSigner}). */
export function compositeSign(
  alg: CompositeAlgorithm,
  secretKey: Uint8Array,
  message: Uint8Array,
  ctx?: Uint8Array,
): Uint8Array {
  return new CompositeSigner(alg, secretKey).sign(message, ctx);
}

/**
 * Verifies a composite signature (draft §4.3): lengths must match exactly, and both the ML-DSA
 * and the Ed25519 component must verify over M'. Returns false for any malformed input of the
 * right type; never throws for attacker-controlled bytes.
 */
export function compositeVerify(
  alg: CompositeAlgorithm,
  publicKey: Uint8Array | CompositeVerifier,
  message: Uint8Array,
  signature: Uint8Array,
  ctx: Uint8Array = new Uint8Array(0),
): boolean {
  const v =
    publicKey instanceof CompositeVerifier
      ? publicKey
      : CompositeVerifier.tryCreate(alg, publicKey);
  return v !== undefined && v.alg === alg && v.verify(message, signature, ctx);
}

/** A verifier with the public key split and the Ed25519 part parsed once. */
export class CompositeVerifier {
  private constructor(
    readonly alg: CompositeAlgorithm,
    readonly publicKey: Uint8Array,
    private readonly mlPublic: Uint8Array,
    private readonly edKey: KeyObject,
  ) {}

  /** Parses a composite public key; throws TRUST_BAD_LENGTH or TRUST_KEY_FORMAT. */
  static create(alg: CompositeAlgorithm, publicKey: Uint8Array): CompositeVerifier {
    const s = schemeOf(alg);
    checkLength(`${alg} public key`, publicKey.length, s.publicKeyBytes);
    const split = s.publicKeyBytes - ED25519_PUBLIC_KEY_BYTES;
    let edKey: KeyObject;
    try {
      edKey = ed25519PublicKeyObject(publicKey.subarray(split));
    } catch (cause) {
      throw new TrustError(
        TRUST_ERROR_CODES.keyFormat,
        `${alg} public key: invalid Ed25519 component`,
        { cause },
      );
    }
    return new CompositeVerifier(alg, Uint8Array.from(publicKey), publicKey.slice(0, split), edKey);
  }

  /** Like {@link create} but undefined instead of throwing. */
  static tryCreate(alg: CompositeAlgorithm, publicKey: Uint8Array): CompositeVerifier | undefined {
    try {
      return CompositeVerifier.create(alg, publicKey);
    } catch {
      return undefined;
    }
  }

  /** True iff both components verify over M'(message, ctx). */
  verify(message: Uint8Array, signature: Uint8Array, ctx: Uint8Array = new Uint8Array(0)): boolean {
    const s = schemeOf(this.alg);
    if (signature.length !== s.signatureBytes || ctx.length > COMPOSITE_CONTEXT_BYTES_MAX)
      return false;
    const mPrime = compositeMessageRepresentative(this.alg, message, ctx);
    const split = s.signatureBytes - ED25519_SIGNATURE_BYTES;
    // Ed25519 first: it is ~50x cheaper, so forgeries that break it are rejected early. Both
    // must pass regardless of order, so this leaks nothing a verifier's caller does not know.
    if (!ed25519Verify(this.edKey, mPrime, signature.subarray(split))) return false;
    try {
      return s.mldsa.verify(signature.subarray(0, split), mPrime, this.mlPublic, {
        context: utf8(s.label),
      });
    } catch {
      return false;
    }
  }
}
