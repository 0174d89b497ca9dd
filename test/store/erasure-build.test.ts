import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WASM_OUTPUTS_PER_PASS } from '../../src/store/erasure/kernel-wasm.ts';
import { buildKernel, kernelBytesModule } from '../../src/store/erasure/simd/build.ts';
import { OUTPUTS_PER_PASS_MAX } from '../../src/store/erasure/simd/gen-wat.ts';

const file = (name: string): URL =>
  new URL(`../../src/store/erasure/simd/${name}`, import.meta.url);

describe('SIMD kernel build', () => {
  it('rebuilding from source gives the committed kernel.wat, kernel.wasm and kernel-bytes.ts', async () => {
    const { wat, wasm } = await buildKernel();
    const relaxed = await buildKernel(true);
    expect(wat).toBe(readFileSync(file('kernel.wat'), 'utf8'));
    expect(Buffer.from(wasm).equals(readFileSync(file('kernel.wasm')))).toBe(true);
    expect(relaxed.wat).toBe(readFileSync(file('kernel-relaxed.wat'), 'utf8'));
    expect(Buffer.from(relaxed.wasm).equals(readFileSync(file('kernel-relaxed.wasm')))).toBe(true);
    expect(kernelBytesModule(wasm, relaxed.wasm)).toBe(
      readFileSync(file('kernel-bytes.ts'), 'utf8'),
    );
  });

  it('host and generator agree on outputs per pass', () => {
    expect(WASM_OUTPUTS_PER_PASS).toBe(OUTPUTS_PER_PASS_MAX);
  });
});
