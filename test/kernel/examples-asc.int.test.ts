/**
 * The AssemblyScript examples still compile with the SDK to their committed binaries (slow:
 * asc takes a few seconds per file, hence an integration test). Rebuild them with
 * `node bin/run-ts.js examples/kernel/build.ts`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileAssemblyScript } from '../../src/toolchain/index.ts';

const asDir = new URL('../../examples/kernel/as/', import.meta.url);
const committed = (url: URL): Uint8Array => new Uint8Array(readFileSync(url));

describe('AssemblyScript examples', () => {
  it('the AssemblyScript examples compile with the SDK to their committed .wasm', async () => {
    for (const f of readdirSync(asDir).filter((n) => n.endsWith('.ts'))) {
      const bytes = await compileAssemblyScript(new URL(f, asDir).pathname);
      expect(
        Buffer.from(bytes).equals(
          Buffer.from(committed(new URL(f.replace('.ts', '.wasm'), asDir))),
        ),
        f,
      ).toBe(true);
    }
  }, 120_000);
});
