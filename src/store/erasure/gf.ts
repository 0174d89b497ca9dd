/**
 * Arithmetic in GF(2^8) with the field polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D), the field
 * used by Backblaze JavaReedSolomon and klauspost/reedsolomon. Addition is XOR; multiplication
 * goes through log/exp tables built once from the generator 2.
 */

/** The field polynomial, including the x^8 term. */
export const GF_POLYNOMIAL = 0x11d;

/** Number of field elements. */
export const GF_SIZE = 256;

/** exp[i] = 2^i for i in [0, 510), doubled so exp[log a + log b] needs no modulo. */
const EXP = new Uint8Array(2 * GF_SIZE);
/** log[a] for a in [1, 256); log[0] is unused. */
const LOG = new Uint8Array(GF_SIZE);

{
  let x = 1;
  for (let i = 0; i < GF_SIZE - 1; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= GF_POLYNOMIAL;
  }
  for (let i = GF_SIZE - 1; i < EXP.length; i++) EXP[i] = EXP[i - (GF_SIZE - 1)]!;
}

/** Product of two field elements. */
export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return EXP[LOG[a]! + LOG[b]!]!;
}

/** Multiplicative inverse of a non-zero element; an assertion-style RangeError for 0. */
export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('GF(2^8): 0 has no inverse');
  return EXP[GF_SIZE - 1 - LOG[a]!]!;
}

/** a^n, with 0^0 = 1 as the Vandermonde construction requires. */
export function gfPow(a: number, n: number): number {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return EXP[(LOG[a]! * n) % (GF_SIZE - 1)]!;
}

/**
 * The full 256 x 256 multiplication table, row `c` at offset `c << 8`: `MUL_TABLE[(c << 8) | x]`
 * is c·x. 64 KiB; the portable kernel indexes one 256-byte row per coefficient.
 */
export const MUL_TABLE: Uint8Array = (() => {
  const t = new Uint8Array(GF_SIZE * GF_SIZE);
  for (let c = 0; c < GF_SIZE; c++) for (let x = 0; x < GF_SIZE; x++) t[(c << 8) | x] = gfMul(c, x);
  return t;
})();
