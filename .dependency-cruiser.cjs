// Layer boundaries (STYLE.md): a layer imports only from the layers below it, and no cycles.
// Order: base → observability → kernel | remote | store → data → core → bridge → cli
const layers = ['base', 'observability', 'kernel', 'remote', 'store', 'data', 'core', 'bridge', 'cli'];
const allowed = {
  base: [],
  observability: ['base'],
  kernel: ['base', 'observability'],
  remote: ['base', 'observability'],
  store: ['base', 'observability'],
  data: ['base', 'observability', 'remote', 'store'],
  core: ['base', 'observability', 'remote', 'store', 'data'],
  bridge: ['base', 'observability', 'kernel', 'remote', 'store', 'data', 'core'],
  cli: ['base', 'observability', 'kernel', 'remote', 'store', 'data', 'core', 'bridge'],
};
const forbidden = [
  {
    name: 'no-circular',
    severity: 'error',
    comment: 'Import cycles hide initialisation order bugs.',
    from: {},
    to: { circular: true },
  },
  {
    name: 'base-node-builtins-only',
    severity: 'error',
    comment: 'src/base uses node builtins only.',
    from: { path: '^src/base/' },
    to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'] },
  },
  {
    name: 'no-unresolvable',
    severity: 'error',
    from: {},
    to: { couldNotResolve: true },
  },
];
for (const layer of layers) {
  const ok = new Set([layer, ...allowed[layer]]);
  const banned = layers.filter((l) => !ok.has(l));
  if (banned.length === 0) continue;
  forbidden.push({
    name: `layer-${layer}`,
    severity: 'error',
    comment: `src/${layer} may import only from: ${[...ok].join(', ')}`,
    from: { path: `^src/${layer}/` },
    to: { path: `^src/(${banned.join('|')})/` },
  });
}
module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
