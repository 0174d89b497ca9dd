/**
 * Shamir secret sharing (Shamir 1979) over the prime field GF(p), p = 2^26 − 5.
 *
 * Why this prime: every product of two field elements is below 2^52, so plain JavaScript
 * doubles compute `a·b mod p` exactly without BigInt, which keeps sharing a secret among
 * hundreds of neighbours at a few milliseconds. A byte string is split into 24-bit chunks (each
 * below p), and every chunk is shared with its own random polynomial of degree t−1; a share is
 * the vector of the polynomials' values at the holder's id. Any t shares rebuild the secret by
 * Lagrange interpolation at 0; fewer reveal nothing (each chunk is information-theoretically
 * hidden).
 */
import { assert, type Rng } from '../../core/index.ts';
import { SecAggError, SecAggErrorCode } from './errors.ts';

/** The field modulus, 2^26 − 5 (prime). */
export const SHAMIR_PRIME = 67_108_859;
/** Bytes of secret packed into one field element. */
export const SHAMIR_CHUNK_BYTES = 3;

/** Field elements needed to share a secret of `bytes` bytes. */
export function shamirShareLength(bytes: number): number {
  return Math.ceil(bytes / SHAMIR_CHUNK_BYTES);
}

const INV_PRIME = 1 / SHAMIR_PRIME;

/** Reduces 0 ≤ x < 2^52 modulo p without `%` (a slow fmod call in V8): floor(x/p) is off by at most one. */
function reduce(x: number): number {
  let r = x - Math.floor(x * INV_PRIME) * SHAMIR_PRIME;
  if (r < 0) r += SHAMIR_PRIME;
  else if (r >= SHAMIR_PRIME) r -= SHAMIR_PRIME;
  return r;
}

function mulMod(a: number, b: number): number {
  // a, b < 2^26, so a·b < 2^52 is exact in a double.
  return reduce(a * b);
}

/** Modular inverse by the extended Euclidean algorithm; `a` must be non-zero mod p. */
export function invMod(a: number): number {
  let r0 = SHAMIR_PRIME;
  let r1 = ((a % SHAMIR_PRIME) + SHAMIR_PRIME) % SHAMIR_PRIME;
  assert(r1 !== 0, 'inverse of zero');
  let s0 = 0;
  let s1 = 1;
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    const r2 = r0 - q * r1;
    r0 = r1;
    r1 = r2;
    const s2 = s0 - q * s1;
    s0 = s1;
    s1 = s2;
  }
  return ((s0 % SHAMIR_PRIME) + SHAMIR_PRIME) % SHAMIR_PRIME;
}

function uniformElement(rng: Rng): number {
  // Rejection sampling on 26 bits gives a uniform element (acceptance 1 − 5/2^26).
  for (;;) {
    const x = rng.nextU32() >>> 6;
    if (x < SHAMIR_PRIME) return x;
  }
}

/**
 * Splits `secret` into shares for the holders `xs` (distinct ids in [1, p−1]); any `t` of them
 * rebuild it. Returns one share (a vector of field elements) per holder, in the order of `xs`.
 * @throws {SecAggError} SECAGG_BAD_CONFIG when t is out of [1, xs.length] or ids are invalid.
 */
export function shamirSplit(
  secret: Uint8Array,
  xs: readonly number[],
  t: number,
  rng: Rng,
): Uint32Array[] {
  if (!Number.isInteger(t) || t < 1 || t > xs.length) {
    throw new SecAggError(SecAggErrorCode.BadConfig, `threshold ${t} out of [1, ${xs.length}]`, {
      details: { field: 't' },
    });
  }
  const m = shamirShareLength(secret.length);
  // coef[d*m + j]: coefficient of x^d of chunk j's polynomial; degree 0 is the secret chunk.
  const coef = new Float64Array(t * m);
  for (let j = 0; j < m; j++) {
    let v = 0;
    for (let b = 0; b < SHAMIR_CHUNK_BYTES; b++)
      v = v * 256 + (secret[j * SHAMIR_CHUNK_BYTES + b] ?? 0);
    coef[j] = v;
  }
  for (let i = m; i < t * m; i++) coef[i] = uniformElement(rng);
  const out: Uint32Array[] = [];
  const acc = new Float64Array(m);
  for (const x of xs) {
    if (!Number.isInteger(x) || x < 1 || x >= SHAMIR_PRIME) {
      throw new SecAggError(SecAggErrorCode.BadConfig, `share holder id ${x} not in [1, p−1]`, {
        details: { field: 'xs' },
      });
    }
    // Horner's rule, highest degree first; acc·x < 2^26·2^26 stays exact.
    acc.fill(0);
    for (let d = t - 1; d >= 0; d--) {
      const base = d * m;
      for (let j = 0; j < m; j++)
        acc[j] = reduce((acc[j] as number) * x + (coef[base + j] as number));
    }
    out.push(Uint32Array.from(acc));
  }
  coef.fill(0);
  return out;
}

/**
 * Lagrange coefficients λ_i for interpolation at 0 from the points `xs`:
 * f(0) = Σ λ_i·f(x_i), λ_i = Π_{j≠i} x_j / (x_j − x_i). O(t²), computed once per responder set.
 */
export function lagrangeAtZero(xs: readonly number[]): Float64Array {
  const n = xs.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const xi = xs[i] as number;
    let num = 1;
    let den = 1;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const xj = xs[j] as number;
      num = mulMod(num, xj);
      den = mulMod(den, xj >= xi ? xj - xi : xj - xi + SHAMIR_PRIME);
    }
    out[i] = mulMod(num, invMod(den));
  }
  return out;
}

/**
 * Rebuilds a secret of `bytes` bytes from shares with the Lagrange coefficients of their holders
 * ({@link lagrangeAtZero}). With fewer than t (or tampered) shares the result is garbage; a chunk
 * that does not fit in 24 bits proves it and is reported.
 * @throws {SecAggError} SECAGG_TOO_FEW_SHARES when a rebuilt chunk is out of range.
 */
export function shamirCombine(
  shares: readonly Uint32Array[],
  lambdas: Float64Array,
  bytes: number,
): Uint8Array {
  assert(shares.length === lambdas.length, 'one coefficient per share');
  const m = shamirShareLength(bytes);
  const acc = new Float64Array(m);
  for (let i = 0; i < shares.length; i++) {
    const s = shares[i] as Uint32Array;
    const l = lambdas[i] as number;
    assert(s.length === m, 'share length');
    for (let j = 0; j < m; j++) acc[j] = reduce((acc[j] as number) + mulMod(l, s[j] as number));
  }
  const out = new Uint8Array(bytes);
  for (let j = 0; j < m; j++) {
    let v = acc[j] as number;
    if (v >= 2 ** (8 * SHAMIR_CHUNK_BYTES)) {
      throw new SecAggError(
        SecAggErrorCode.TooFewShares,
        'shares do not interpolate to a valid secret',
        { details: { chunk: j } },
      );
    }
    for (let b = SHAMIR_CHUNK_BYTES - 1; b >= 0; b--) {
      const idx = j * SHAMIR_CHUNK_BYTES + b;
      if (idx < bytes) out[idx] = v & 0xff;
      else if ((v & 0xff) !== 0) {
        throw new SecAggError(
          SecAggErrorCode.TooFewShares,
          'shares do not interpolate to a valid secret',
          { details: { chunk: j } },
        );
      }
      v = Math.floor(v / 256);
    }
  }
  return out;
}

/**
 * Caches Lagrange coefficients per holder set. Sets that are a `base` set minus one element u
 * (the common case in full SecAgg: the first t+1 responders minus the client being rebuilt)
 * are derived in O(t) instead of O(t²): λ^{A∖u}_i = λ^A_i · (x_u − x_i) / x_u.
 */
export class LagrangeCache {
  private readonly cache = new Map<string, Float64Array>();
  private readonly base:
    | {
        readonly pos: Map<number, number>;
        readonly xs: readonly number[];
        readonly lambdas: Float64Array;
      }
    | undefined;

  /** @param base a superset (of size t + 1) from which size-t subsets are derived. */
  constructor(base?: readonly number[]) {
    this.base =
      base === undefined || base.length < 2
        ? undefined
        : { pos: new Map(base.map((x, i) => [x, i])), xs: base, lambdas: lagrangeAtZero(base) };
  }

  /** Coefficients for `xs`, in the order of `xs`. */
  get(xs: readonly number[]): Float64Array {
    const key = xs.join(',');
    let l = this.cache.get(key);
    if (l === undefined) {
      l = this.derive(xs) ?? lagrangeAtZero(xs);
      this.cache.set(key, l);
    }
    return l;
  }

  private derive(xs: readonly number[]): Float64Array | undefined {
    const b = this.base;
    if (b === undefined || xs.length !== b.xs.length - 1) return undefined;
    const present = new Uint8Array(b.xs.length);
    for (const x of xs) {
      const p = b.pos.get(x);
      if (p === undefined || present[p] === 1) return undefined;
      present[p] = 1;
    }
    const u = b.xs[present.indexOf(0)] as number;
    const invU = invMod(u);
    const out = new Float64Array(xs.length);
    xs.forEach((x, i) => {
      const diff = u >= x ? u - x : u - x + SHAMIR_PRIME;
      out[i] = mulMod(mulMod(b.lambdas[b.pos.get(x) as number] as number, diff), invU);
    });
    return out;
  }
}
