/**
 * The slice of the WebAssembly JS API the kernel uses, typed locally. The project compiles
 * without the DOM lib and @types/node 20 does not declare `WebAssembly`; declaring it globally
 * would leak into every other layer, so the kernel reads it from `globalThis` with these types.
 */

/** A compiled module. */
export interface WasmModule {
  readonly __brand?: 'WasmModule';
}
/** A linear memory. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
/** A global. */
export interface WasmGlobal {
  value: number | bigint;
}
/** An instance's exports. */
export type WasmExports = Readonly<Record<string, unknown>>;
/** An instance. */
export interface WasmInstance {
  readonly exports: WasmExports;
}

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: {
    new (bytes: Uint8Array): WasmModule;
    exports(m: WasmModule): { name: string; kind: string }[];
  };
  Instance: new (
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ) => WasmInstance;
  Memory: abstract new (...args: never[]) => WasmMemory;
  Global: abstract new (...args: never[]) => WasmGlobal;
}

/** The host's WebAssembly API. */
export const WA: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
