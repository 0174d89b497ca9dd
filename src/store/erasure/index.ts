/** Reed-Solomon erasure coding (owned by the erasure-coding work; see docs/store.md). */
export {};
