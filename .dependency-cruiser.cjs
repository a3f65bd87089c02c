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
  // The bridge translates kernel requests into core calls; the one errno mapping also knows
  // the error classes that cross the core (remote-error.ts, data/errors.ts: see below).
  bridge: ['base', 'observability', 'kernel', 'core'],
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
    name: 'only-cli-picks-a-remote',
    severity: 'error',
    comment: 'Remote implementations (src/remote/<kind>/) are chosen by the CLI alone; other layers see the Remote interface.',
    from: { path: '^src/', pathNot: '^src/(cli|remote)/' },
    to: { path: '^src/remote/[^/]+/' },
  },
  {
    name: 'remote-kinds-independent',
    severity: 'error',
    comment: 'One remote implementation never imports another (shared code lives in src/remote/*.ts).',
    from: { path: '^src/remote/([^/]+)/', pathNot: '^src/remote/webdav/' },
    to: { path: '^src/remote/[^/]+/', pathNot: '^src/remote/$1/' },
  },
  {
    name: 'remote-kinds-independent-webdav',
    severity: 'error',
    comment: 'WebDAV is HTTP plus methods: webdav/ reads through http/ (its client, range checks, errors) and imports no other kind.',
    from: { path: '^src/remote/webdav/' },
    to: { path: '^src/remote/[^/]+/', pathNot: '^src/remote/(webdav|http)/' },
  },
  {
    name: 'bridge-sees-errors-not-internals',
    severity: 'error',
    comment: 'The bridge may import from remote and data only the error classes the core lets through.',
    from: { path: '^src/bridge/' },
    to: { path: '^src/(remote|data|store)/', pathNot: '^src/(remote/remote-error|data/errors)[.]ts$' },
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
    to: { path: `^src/(${banned.join('|')})/`, ...(layer === 'bridge' ? { pathNot: '^src/(remote/remote-error|data/errors)[.]ts$' } : {}) },
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
