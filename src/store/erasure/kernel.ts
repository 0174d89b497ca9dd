/**
 * The contract shared by the two GF(2^8) matrix kernels (WebAssembly SIMD and portable JS), so
 * the codec and the property tests can run either one and compare them byte for byte.
 */

/** Name of a kernel implementation. */
export type KernelName = 'wasm-simd' | 'portable';

/**
 * Multiplies a coefficient matrix by rows of bytes: for every output o and byte offset j <
 * `length`, `outputs[o][j] = XOR over i of coeffs[o · inputs.length + i] · inputs[i][j]` in
 * GF(2^8). Outputs are overwritten, never read. Inputs and outputs must not overlap.
 */
export interface GfKernel {
  readonly name: KernelName;
  mulRows(
    coeffs: Uint8Array,
    inputs: readonly Uint8Array[],
    outputs: readonly Uint8Array[],
    length: number,
  ): void;
}
