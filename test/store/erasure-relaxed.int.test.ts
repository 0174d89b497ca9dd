import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('relaxed-SIMD kernel', () => {
  it('is selected when the engine has relaxed SIMD and matches the portable kernel', () => {
    const child = fileURLToPath(new URL('./erasure/relaxed-child.ts', import.meta.url));
    // Node 20 (V8 11.3) ships relaxed SIMD behind this flag; Node 22+ has it on by default.
    const r = spawnSync(
      process.execPath,
      ['--experimental-wasm-relaxed-simd', '--import', 'tsx/esm', child],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as {
      variant: string;
      cases: number;
      mismatches: number;
    };
    expect(out.variant).toBe('relaxed-simd');
    expect(out.cases).toBe(200);
    expect(out.mismatches).toBe(0);
  });
});
