/** Secure aggregation (SecAgg, SecAgg+); see docs/learn.md. */
export {};
