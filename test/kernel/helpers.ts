/** Shared helpers of the kernel tests: WAT → KernelModule, example loading. */
import { readFileSync } from 'node:fs';
import { type KernelModule, loadModule } from '../../src/kernel/index.ts';
import { watToWasm } from '../../src/toolchain/index.ts';

/** Assembles and loads a WAT module. */
export async function wat(text: string, name = 'test'): Promise<KernelModule> {
  return loadModule(await watToWasm(text, `${name}.wat`), name);
}

/** The bytes of an example module. */
export async function exampleWasm(name: string): Promise<Uint8Array> {
  const text = readFileSync(new URL(`../../examples/kernel/${name}.wat`, import.meta.url), 'utf8');
  return watToWasm(text, `${name}.wat`);
}

/** Loads an example module. */
export async function example(name: string): Promise<KernelModule> {
  return loadModule(await exampleWasm(name), name);
}
