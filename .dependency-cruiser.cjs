/**
 * Layer rules, checked by `npm test` (npm run deps). Two rules:
 *  1. A module may import another layer only through that layer's `index.ts`.
 *  2. Imports go one way: a layer may import only layers of a lower rank (see ARCHITECTURE.md).
 * The kernel and core import no other layer; the kernel imports Node built-ins only.
 */
const RANKS = {
  kernel: 0,
  core: 0,
  toolchain: 1,
  hal: 1,
  trust: 1,
  store: 2,
  dtn: 3,
  learn: 3,
  fabric: 4,
  evolve: 5,
  twin: 5,
  dashboard: 6,
  cli: 7,
};
const layers = Object.keys(RANKS);

const forbidden = [
  {
    name: 'no-reaching-into-layer-internals',
    comment: 'Import another layer only through its index.ts',
    severity: 'error',
    from: { path: '^src/([^/]+)/' },
    to: { path: '^src/([^/]+)/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
  },
  {
    name: 'unknown-layer',
    comment: 'Every folder under src/ must be a layer listed in .dependency-cruiser.cjs',
    severity: 'error',
    from: { path: `^src/(?!(${layers.join('|')})/)` },
    to: {},
  },
  {
    name: 'kernel-node-builtins-only',
    comment: 'The kernel (the TCB) depends on Node built-ins only',
    severity: 'error',
    from: { path: '^src/kernel/' },
    to: { dependencyTypesNot: ['core', 'local'] },
  },
  {
    name: 'no-circular',
    severity: 'error',
    from: { path: '^src/' },
    to: { circular: true },
  },
];
for (const layer of layers) {
  const allowed = layers.filter((l) => RANKS[l] < RANKS[layer]);
  forbidden.push({
    name: `layer-order-${layer}`,
    comment: `${layer} may import only: ${allowed.join(', ') || '(no other layer)'}`,
    severity: 'error',
    from: { path: `^src/${layer}/` },
    to: { path: '^src/([^/]+)/', pathNot: [`^src/${layer}/`, ...allowed.map((l) => `^src/${l}/`)] },
  });
}

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '\\.test\\.ts$' },
  },
};
