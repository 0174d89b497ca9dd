/**
 * Public door of the toolchain: turning sources into kernel-ready modules. WAT through wabt,
 * Asyncify through Binaryen (preemptible domains), AssemblyScript through asc.
 */
export { type AscOptions, compileAssemblyScript } from './assemblyscript.ts';
export { makePreemptible, type PreemptibleOptions } from './asyncify.ts';
export { watToWasm } from './wat.ts';
