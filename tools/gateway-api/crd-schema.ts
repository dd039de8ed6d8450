// Writes src/localfed/gateway-crd-schema.json from the Gateway API CRDs (Go module
// sigs.k8s.io/gateway-api), per release channel (standard, experimental): per kind and
// served version, the field tree with the defaults the CRDs declare. The simulator
// prunes unknown fields and fills defaults from the channel its scenario names, as
// kube-apiserver does from a CRD's structural schema.
//
//   node tools/gateway-api/crd-schema.ts [CRD_DIR]
//
// CRD_DIR (holding standard/ and experimental/) defaults to config/crd of the module
// version named below, found with `go mod download -json` (so the module cache or the
// Go proxy).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const MODULE = 'sigs.k8s.io/gateway-api@v1.6.3';
const KINDS: Record<string, string> = {
  gatewayclasses: 'v1',
  gateways: 'v1',
  httproutes: 'v1',
  grpcroutes: 'v1',
  referencegrants: 'v1beta1',
};
const CHANNELS = ['standard', 'experimental'] as const;
const OUT = new URL('../../src/localfed/gateway-crd-schema.json', import.meta.url).pathname;

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  default?: unknown;
  nullable?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
}

/**
 * The trimmed node: fields (p), list items (i), default (d), nullable (n), and a list's
 * uniqueness: the keys of a list-type map (k), or a list-type set (s).
 */
interface Node {
  p?: Record<string, Node>;
  i?: Node;
  d?: unknown;
  n?: true;
  k?: string[];
  s?: true;
}

function trim(s: Schema): Node {
  const out: Node = {};
  if (s.default !== undefined) out.d = s.default;
  if (s.nullable) out.n = true;
  if (s['x-kubernetes-list-type'] === 'map') out.k = s['x-kubernetes-list-map-keys'] ?? [];
  if (s['x-kubernetes-list-type'] === 'set') out.s = true;
  if (s.properties && !s['x-kubernetes-preserve-unknown-fields']) {
    out.p = {};
    for (const [k, v] of Object.entries(s.properties)) out.p[k] = trim(v);
  }
  if (s.items) out.i = trim(s.items);
  return out;
}

function crdDir(): string {
  const given = process.argv[2];
  if (given) return given;
  const info = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', MODULE], { encoding: 'utf8' }),
  ) as { Dir: string };
  return join(info.Dir, 'config/crd');
}

/** One channel's kinds, from the CRDs in `dir`. */
function channel(dir: string): Record<string, Node> {
  const out: Record<string, Node> = {};
  for (const [plural, version] of Object.entries(KINDS)) {
    const file = join(dir, `gateway.networking.k8s.io_${plural}.yaml`);
    const crd = parse(readFileSync(file, 'utf8'));
    const v = crd.spec.versions.find((x: { name: string }) => x.name === version);
    out[crd.spec.names.kind] = trim(v.schema.openAPIV3Schema);
  }
  return out;
}

const dir = crdDir();
const channels = Object.fromEntries(CHANNELS.map((c) => [c, channel(join(dir, c))]));
writeFileSync(OUT, `${JSON.stringify({ module: MODULE, channels })}\n`);
// In the repository's JSON style, so `biome check` passes on it as written.
const biome = new URL('../../node_modules/.bin/biome', import.meta.url).pathname;
execFileSync(biome, ['format', '--write', OUT], { stdio: 'ignore' });
console.log(`wrote ${OUT}`);
