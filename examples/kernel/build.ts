/**
 * Rebuilds the committed example binaries: every examples/kernel/*.wat → .wasm (wabt) and every
 * examples/kernel/as/*.ts → as/*.wasm (AssemblyScript with the SDK). Run:
 *   node bin/run-ts.js examples/kernel/build.ts
 * test/kernel/examples.test.ts checks that the sources still compile and match the binaries.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { compileAssemblyScript, watToWasm } from '../../src/toolchain/index.ts';

const dir = new URL('./', import.meta.url);
for (const f of readdirSync(dir).filter((n) => n.endsWith('.wat'))) {
  const bytes = await watToWasm(readFileSync(new URL(f, dir), 'utf8'), f);
  writeFileSync(new URL(f.replace(/\.wat$/, '.wasm'), dir), bytes);
  process.stdout.write(`${f} -> ${bytes.length} bytes\n`);
}
const asDir = new URL('./as/', dir);
for (const f of readdirSync(asDir).filter((n) => n.endsWith('.ts'))) {
  const bytes = await compileAssemblyScript(new URL(f, asDir).pathname);
  writeFileSync(new URL(f.replace(/\.ts$/, '.wasm'), asDir), bytes);
  process.stdout.write(`as/${f} -> ${bytes.length} bytes\n`);
}
