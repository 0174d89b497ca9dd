/**
 * The portable kernel: plain JavaScript with one 256-byte row of the multiplication table per
 * coefficient. Used where WebAssembly SIMD is unavailable and as the reference the SIMD kernel
 * is tested against.
 */
import { MUL_TABLE } from './gf.ts';
import type { GfKernel } from './kernel.ts';

/**
 * Bytes processed per output per pass. Small enough that an output segment and the current
 * input segment stay in L1 while every input is folded into it.
 */
export const PORTABLE_SEGMENT_BYTES = 16 * 1024;

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

/** Creates the portable kernel (stateless). */
export function createPortableKernel(): GfKernel {
  return {
    name: 'portable',
    mulRows(coeffs, inputs, outputs, length) {
      const nIn = inputs.length;
      for (let start = 0; start < length; start += PORTABLE_SEGMENT_BYTES) {
        const end = Math.min(length, start + PORTABLE_SEGMENT_BYTES);
        for (let o = 0; o < outputs.length; o++) {
          const out = outputs[o]!;
          for (let i = 0; i < nIn; i++) {
            const base = coeffs[o * nIn + i]! << 8;
            if (i === 0) mulSet(base, inputs[i]!, out, start, end);
            else mulXor(base, inputs[i]!, out, start, end);
          }
        }
      }
    },
  };
}
