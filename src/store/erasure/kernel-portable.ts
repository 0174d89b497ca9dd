/**
 * The portable kernel: plain JavaScript with one 256-byte row of the multiplication table per
 * coefficient. Used where WebAssembly SIMD is unavailable and as the reference the SIMD kernel
 * is tested against.
 *
 * When every shard starts at a 4-byte-aligned offset, it works on 32-bit words: four lookups
 * are packed into one word and XORed into the output with one load and one store instead of
 * four (measured about 2x the byte loop). Each byte keeps its lane, so this is endian-neutral.
 */
import { assert } from '../../core/index.ts';
import { MUL_TABLE } from './gf.ts';
import type { GfKernel } from './kernel.ts';

/**
 * Bytes processed per output per pass (a multiple of 4). Small enough that an output segment
 * and the current input segment stay in L1 while every input is folded into it.
 */
export const PORTABLE_SEGMENT_BYTES = 16 * 1024;

// Segments must start on word boundaries for the 32-bit path.
assert(PORTABLE_SEGMENT_BYTES % 4 === 0, 'PORTABLE_SEGMENT_BYTES must be a multiple of 4');

/** out[j] = c·input[j] for j in [start, end), where `base` = c << 8 indexes MUL_TABLE. */
function mulSet(
  base: number,
  input: Uint8Array,
  out: Uint8Array,
  start: number,
  end: number,
): void {
  const t = MUL_TABLE;
  for (let j = start; j < end; j++) out[j] = t[base | input[j]!]!;
}

/** out[j] ^= c·input[j] for j in [start, end). Separate from mulSet to keep both loops tight. */
function mulXor(
  base: number,
  input: Uint8Array,
  out: Uint8Array,
  start: number,
  end: number,
): void {
  const t = MUL_TABLE;
  for (let j = start; j < end; j++) out[j] = out[j]! ^ t[base | input[j]!]!;
}

/** Word form of {@link mulSet}: w indexes 32-bit words. */
function mulSet32(
  base: number,
  input: Uint32Array,
  out: Uint32Array,
  start: number,
  end: number,
): void {
  const t = MUL_TABLE;
  for (let j = start; j < end; j++) {
    const w = input[j]!;
    out[j] =
      t[base | (w & 255)]! |
      (t[base | ((w >>> 8) & 255)]! << 8) |
      (t[base | ((w >>> 16) & 255)]! << 16) |
      (t[base | (w >>> 24)]! << 24);
  }
}

/** Word form of {@link mulXor}. */
function mulXor32(
  base: number,
  input: Uint32Array,
  out: Uint32Array,
  start: number,
  end: number,
): void {
  const t = MUL_TABLE;
  for (let j = start; j < end; j++) {
    const w = input[j]!;
    out[j] =
      out[j]! ^
      (t[base | (w & 255)]! |
        (t[base | ((w >>> 8) & 255)]! << 8) |
        (t[base | ((w >>> 16) & 255)]! << 16) |
        (t[base | (w >>> 24)]! << 24));
  }
}

const words = (a: Uint8Array, length: number): Uint32Array =>
  new Uint32Array(a.buffer, a.byteOffset, length >>> 2);

/** Creates the portable kernel (stateless). */
export function createPortableKernel(): GfKernel {
  return {
    name: 'portable',
    mulRows(coeffs, inputs, outputs, length) {
      const nIn = inputs.length;
      const aligned = [...inputs, ...outputs].every((a) => (a.byteOffset & 3) === 0);
      const in32 = aligned ? inputs.map((a) => words(a, length)) : [];
      const out32 = aligned ? outputs.map((a) => words(a, length)) : [];
      // Bytes [0, wordEnd) go word by word when aligned; the rest (or everything) byte by byte.
      const wordEnd = aligned ? length & ~3 : 0;
      for (let start = 0; start < length; start += PORTABLE_SEGMENT_BYTES) {
        const end = Math.min(length, start + PORTABLE_SEGMENT_BYTES);
        const wEnd = Math.min(end, wordEnd);
        for (let o = 0; o < outputs.length; o++) {
          for (let i = 0; i < nIn; i++) {
            const base = coeffs[o * nIn + i]! << 8;
            if (wEnd > start) {
              if (i === 0) mulSet32(base, in32[i]!, out32[o]!, start >>> 2, wEnd >>> 2);
              else mulXor32(base, in32[i]!, out32[o]!, start >>> 2, wEnd >>> 2);
            }
            const from = Math.max(start, wEnd);
            if (from < end) {
              if (i === 0) mulSet(base, inputs[i]!, outputs[o]!, from, end);
              else mulXor(base, inputs[i]!, outputs[o]!, from, end);
            }
          }
        }
      }
    },
  };
}
