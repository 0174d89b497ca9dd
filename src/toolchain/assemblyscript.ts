/**
 * AssemblyScript → kernel-ready WebAssembly through the `asc` compiler API. Modules built here
 * import only the `genesis` namespace: the stub runtime (a bump allocator, no GC import) and
 * `--use abort=` (aborts trap instead of importing `env.abort`) keep `env` imports out.
 */
import { readFile } from 'node:fs/promises';
import { GenesisError } from '../core/index.ts';

/** Options of {@link compileAssemblyScript}. */
export interface AscOptions {
  /** Optimisation level 0–3 (default 3). */
  readonly optimizeLevel?: number;
  /** Extra asc flags. */
  readonly flags?: readonly string[];
}

/**
 * Compiles an AssemblyScript entry file (it may import the SDK with a relative path).
 * @throws {GenesisError} TOOLCHAIN_ASC with the compiler's diagnostics.
 */
export async function compileAssemblyScript(
  entryFile: string,
  options: AscOptions = {},
): Promise<Uint8Array> {
  const { default: asc } = await import('assemblyscript/asc');
  let binary: Uint8Array | undefined;
  let stderr = '';
  const argv = [
    entryFile,
    '--outFile',
    'out.wasm',
    `-O${options.optimizeLevel ?? 3}`,
    '--runtime',
    'stub',
    '--use',
    'abort=',
    '--noExportMemory',
    ...(options.flags ?? []),
  ];
  const result = await asc.main(argv, {
    readFile: async (name: string, baseDir: string) => {
      try {
        return await readFile(name.startsWith('/') ? name : `${baseDir}/${name}`, 'utf8');
      } catch {
        return null;
      }
    },
    writeFile: (name: string, contents: Uint8Array | string) => {
      if (name.endsWith('.wasm') && typeof contents !== 'string') binary = contents;
    },
    listFiles: () => [],
    stdout: { write: () => true } as never,
    stderr: {
      write: (s: string | Uint8Array) => {
        stderr += typeof s === 'string' ? s : Buffer.from(s).toString();
        return true;
      },
    } as never,
  });
  if (result.error !== null || binary === undefined) {
    throw new GenesisError(
      'TOOLCHAIN_ASC',
      `asc failed for ${entryFile}: ${stderr.trim() || String(result.error)}`,
      {
        cause: result.error,
      },
    );
  }
  return binary;
}
