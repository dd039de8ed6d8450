// The layering of docs/architecture.md ("Layering: who may import whom") as rules:
// `npm run deps` fails on an import cycle or on a module importing a layer above its
// own. Type imports count: they say what a module knows about.

/** Test files: sources outside the layering (they may reach anything). */
const TESTS = '\\.test\\.ts$';

/**
 * The layers, lowest first. A module may import its own group and the layers below
 * its rank, never a higher rank, nor another group of the same rank (`peers`
 * names the exceptions, one way only). A half rank comes after its row's others:
 * the table's "then".
 */
const LAYERS = [
  { group: 'base', rank: 0, path: '^src/(errors|host-port|netblock|staged-change|v8-flags)\\.ts$' },
  { group: 'cli-support', rank: 1, path: '^src/cli-support\\.ts$' },
  { group: 'config', rank: 1, path: '^src/config/' },
  { group: 'netguard', rank: 1, path: '^src/netguard/' },
  { group: 'sinks', rank: 1, path: '^src/observe/(log|exhaustion)\\.ts$' },
  { group: 'watch', rank: 2, path: '^src/watch/' },
  { group: 'catalog', rank: 3, path: '^src/catalog/' },
  { group: 'routing', rank: 4, path: '^src/routing/' },
  // Gateway API routes compiled and matched: pure, like routing/, its peer.
  { group: 'gateway', rank: 4, path: '^src/gateway/' },
  { group: 'health', rank: 5, path: '^src/health/' },
  // One elected replica writes status back to the members: reads catalog/ and watch/.
  { group: 'writeback', rank: 5, path: '^src/writeback/' },
  { group: 'dns', rank: 6, path: '^src/dns/' },
  {
    group: 'proxy',
    rank: 6,
    path: '^src/proxy/',
    // Host headers resolve by DNS's name schemes (a pure module that imports nothing).
    peers: '^src/dns/names\\.ts$',
  },
  { group: 'observe', rank: 7, path: '^src/observe/(?!(log|exhaustion)\\.ts$)' },
  { group: 'workers', rank: 8, path: '^src/workers/' },
  { group: 'discovery', rank: 8, path: '^src/discovery(-gateway|-slots)?\\.ts$' },
  { group: 'reload', rank: 9, path: '^src/reload\\.ts$' },
  // Compiles Gateway API routes as objects and services change; fedgate.ts runs it.
  { group: 'gateway-feed', rank: 9, path: '^src/gateway-feed\\.ts$' },
  // This replica's locality: the Node read at start and reload, followed through discovery.
  { group: 'self-locality', rank: 9, path: '^src/self-locality\\.ts$' },
  { group: 'fedgate', rank: 9.5, path: '^src/fedgate\\.ts$' },
  { group: 'commands', rank: 10, path: '^src/(fedgate-commands|demo)\\.ts$' },
  { group: 'cli', rank: 10.5, path: '^src/cli\\.ts$' },
];

const anyOf = (paths) => paths.map((p) => `(${p})`).join('|');

const layerRules = LAYERS.flatMap((layer) => {
  const above = LAYERS.filter(
    (l) => l.rank > layer.rank || (l.rank === layer.rank && l.group !== layer.group),
  );
  if (above.length === 0) return [];
  return {
    name: `layer-${layer.group}`,
    comment: `${layer.group} (layer ${layer.rank}) imports no higher layer and no peer`,
    severity: 'error',
    from: { path: layer.path, pathNot: TESTS },
    to: {
      path: anyOf(above.map((l) => l.path)),
      ...(layer.peers ? { pathNot: layer.peers } : {}),
    },
  };
});

export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle: the modules in it are one layer in disguise',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'health-reads-routing-types-only',
      comment: 'health/ knows routing/ only by the HealthView it implements (routing/types.ts)',
      severity: 'error',
      from: { path: '^src/health/', pathNot: TESTS },
      to: { path: '^src/routing/', pathNot: '^src/routing/types\\.ts$' },
    },
    {
      name: 'localfed-beside-the-stack',
      comment: 'Only the command files import localfed/',
      severity: 'error',
      from: {
        path: '^src/',
        pathNot: `^src/(localfed/|fedgate-commands\\.ts|demo\\.ts|cli\\.ts)|${TESTS}`,
      },
      to: { path: '^src/localfed/' },
    },
    {
      name: 'localfed-reads-little',
      comment:
        'localfed/ takes errors, cli-support, host-port, the logger and the annotation names, nothing else',
      severity: 'error',
      from: { path: '^src/localfed/', pathNot: TESTS },
      to: {
        path: '^src/',
        pathNot:
          '^src/(localfed/|(errors|cli-support|host-port)\\.ts$|observe/log\\.ts$|watch/annotations\\.ts$)',
      },
    },
    {
      name: 'src-not-tests',
      comment: 'Shipped code never imports test or benchmark code',
      severity: 'error',
      from: { path: '^src/', pathNot: TESTS },
      to: { path: `^(test|bench)/|${TESTS}` },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // TypeScript 7 has no compiler API for dependency-cruiser: swc parses the sources.
    parser: 'swc',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
