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
            const input = inputs[i]!;
            const row = MUL_TABLE.subarray(
              coeffs[o * nIn + i]! << 8,
              (coeffs[o * nIn + i]! << 8) + 256,
            );
            if (i === 0) for (let j = start; j < end; j++) out[j] = row[input[j]!]!;
            else for (let j = start; j < end; j++) out[j] = out[j]! ^ row[input[j]!]!;
          }
        }
      }
    },
  };
}
