// deploy/ and docs/reference.md checked with what real clusters and tools use: the
// example overlay rendered by `kubectl kustomize`, every object validated against the
// Kubernetes schemas (kubernetes-models, plus @kubernetes/client-node's models for
// fields no schema allows), the member ClusterRole compared as a set, the example
// configuration through `fedgate check-config` laid out as the Deployment mounts it,
// the Dockerfile parsed (dockerfile-ast) and its entry command run against our CLI,
// make-kubeconfig.sh run against the Kubernetes API simulator, the dashboard's and
// the alerts' PromQL through promtool and their series against the metrics registry.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import * as k8sClient from '@kubernetes/client-node';
import * as promOperator from '@kubernetes-models/prometheus-operator';
import { Copy, DockerfileParser } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { init as lexerReady, parse as parseImports } from 'es-module-lexer';
import * as k8sModels from 'kubernetes-models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { DEFAULT_WRITEBACK_LEASE_NAMESPACE } from '../src/config/defaults.ts';
import { effectiveConfig } from '../src/config/load.ts';
import { configJsonSchema, configSchema } from '../src/config/schema.ts';
import { SimCluster } from '../src/localfed/cluster.ts';
import { makeClusterPki } from '../src/localfed/pki.ts';
import { EventJournal } from '../src/observe/events.ts';
import { Metrics } from '../src/observe/metrics.ts';
import * as annotations from '../src/watch/annotations.ts';
import { fedgate, ROOT } from './helpers/cli.ts';
import { requireKubeTools } from './helpers/kube-control-plane.ts';
import { requireTool } from './helpers/tools.ts';

const DEPLOY = join(ROOT, 'deploy');
const OVERLAY = join(DEPLOY, 'kubernetes/overlays/example');
const MEMBER_RBAC = join(DEPLOY, 'member-rbac');
const MAKE_KUBECONFIG = join(MEMBER_RBAC, 'make-kubeconfig.sh');
const DASHBOARD = join(DEPLOY, 'grafana/fedgate-dashboard.json');
const REFERENCE = join(ROOT, 'docs/reference.md');

// ---- small helpers -----------------------------------------------------------------

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((done, fail) => {
    execFile(
      command,
      args,
      { env: opts.env ?? process.env, cwd: opts.cwd ?? ROOT, timeout: opts.timeoutMs ?? 60_000 },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          fail(new Error(`${command} not found`));
          return;
        }
        if (err?.killed) {
          fail(new Error(`${command} ${args.join(' ')} timed out: ${stderr}`));
          return;
        }
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

type Json = Record<string, unknown>;

interface KubeObject extends Json {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
}

const obj = (v: unknown): Json => (v !== null && typeof v === 'object' ? (v as Json) : {});
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const at = (v: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((o, k) => (o as Record<string | number, unknown> | undefined)?.[k], v);
const idOf = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** Every file under dir, relative to ROOT. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(path)));
    else out.push(relative(ROOT, path));
  }
  return out.sort();
}

function yamlDocs(text: string, source: string): unknown[] {
  return parseAllDocuments(text).map((d, i) => {
    if (d.errors.length > 0) throw new Error(`${source} document ${i}: ${d.errors[0]!.message}`);
    return d.toJS();
  });
}

// ---- schemas: kubernetes-models, and client-node's models for unknown fields ----

interface ModelClass {
  new (data: unknown): { validate(): void };
  apiVersion: string;
  kind: string;
}

const MODELS = new Map<string, ModelClass>();
function collectModels(ns: unknown, seen = new Set<unknown>()): void {
  if (seen.has(ns)) return;
  seen.add(ns);
  for (const v of Object.values(ns as Json)) {
    const m = v as Partial<ModelClass>;
    if (typeof v === 'function' && typeof m.apiVersion === 'string' && typeof m.kind === 'string') {
      MODELS.set(`${m.apiVersion}/${m.kind}`, v as ModelClass);
    } else if (v !== null && typeof v === 'object') collectModels(v, seen);
  }
}
collectModels(k8sModels);
collectModels(promOperator);

/** Validates against the OpenAPI schema kubernetes-models bundles; the problems, or []. */
function schemaProblems(o: KubeObject): string[] {
  const Model = MODELS.get(`${o.apiVersion}/${o.kind}`);
  if (!Model) return [`no schema for ${o.apiVersion} ${o.kind}`];
  try {
    new Model(o).validate();
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

interface Attribute {
  baseName: string;
  type: string;
}
type ClientModel = { getAttributeTypeMap(): Attribute[] };
const CLIENT_MODELS = k8sClient as unknown as Record<string, ClientModel | undefined>;

/** client-node's model of a built-in kind, e.g. V1Deployment; undefined for custom resources. */
function clientModelName(o: KubeObject): string | undefined {
  const [group, version] = o.apiVersion.includes('/')
    ? (o.apiVersion.split('/') as [string, string])
    : ['', o.apiVersion];
  const v = version.charAt(0).toUpperCase() + version.slice(1);
  const g = group.split('.')[0]!;
  for (const name of [`${v}${o.kind}`, `${g.charAt(0).toUpperCase()}${g.slice(1)}${v}${o.kind}`]) {
    if (typeof CLIENT_MODELS[name]?.getAttributeTypeMap === 'function') return name;
  }
  return undefined;
}

/**
 * Fields the Kubernetes API does not have (a typo such as `readinesProbe`). The
 * OpenAPI schemas allow any extra field, and the API server drops them silently, so
 * this walks the object along client-node's generated models instead.
 */
function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const list = /^Array<(.+)>$/.exec(type);
  if (list) {
    if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) unknownFields(v, list[1]!, `${path}[${i}]`, out);
    }
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(obj(value))) unknownFields(v, map[1]!, `${path}.${k}`, out);
    return;
  }
  const model = CLIENT_MODELS[type];
  if (typeof model?.getAttributeTypeMap !== 'function' || typeof value !== 'object') return;
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value as Json)) {
    const t = attributes.get(k);
    if (t === undefined) out.push(`${path}.${k}`);
    else unknownFields(v, t, `${path}.${k}`, out);
  }
}

function validateObject(o: KubeObject): string[] {
  if (o.kind === 'Secret' && o.data) {
    // kustomize wraps Secret data at 70 columns; the API server's base64 decoding
    // skips the newlines (Go's encoding/base64), the schema's `byte` pattern does not.
    o = structuredClone(o);
    for (const [k, v] of Object.entries(obj(o.data)))
      obj(o.data)[k] = String(v).replace(/[\r\n]/g, '');
  }
  const problems = schemaProblems(o);
  const model = clientModelName(o);
  if (model) {
    const unknown: string[] = [];
    unknownFields(o, model, '', unknown);
    problems.push(...unknown.map((p) => `unknown field ${p.slice(1)}`));
  }
  return problems;
}

// ---- the rendered example overlay ---------------------------------------------------

let rendered: KubeObject[] = [];
const one = (kind: string, name?: string): KubeObject => {
  const found = rendered.filter(
    (o) => o.kind === kind && (name === undefined || o.metadata.name === name),
  );
  if (found.length !== 1)
    throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0]!;
};
const deployment = () => one('Deployment', 'fedgate');
const podSpec = () => obj(at(deployment(), 'spec', 'template', 'spec'));
const container = () => arr(podSpec().containers)[0]!;

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'fedgate-deploy-'));
  const kubectl = requireKubeTools().kubectl;
  const r = await run(kubectl, ['kustomize', OVERLAY]);
  if (r.code !== 0) throw new Error(`kubectl kustomize ${OVERLAY} failed: ${r.stderr}`);
  rendered = yamlDocs(r.stdout, 'kubectl kustomize output') as KubeObject[];
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('deploy/kubernetes: the example overlay', () => {
  it('renders every object fedgate needs, in the fedgate namespace', () => {
    const kinds = rendered.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds).toEqual(
      expect.arrayContaining([
        'Namespace/fedgate',
        'ServiceAccount/fedgate',
        'Deployment/fedgate',
        'PodDisruptionBudget/fedgate',
        'Service/fedgate-dns',
        'Service/fedgate-http',
        'Service/fedgate-admin',
        'ServiceMonitor/fedgate',
        'PrometheusRule/fedgate',
        'ConfigMap/fedgate-dashboard',
      ]),
    );
    expect(
      rendered.some((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('fedgate-config')),
    ).toBe(true);
    expect(
      rendered.some((o) => o.kind === 'Secret' && o.metadata.name.startsWith('fedgate-clusters')),
    ).toBe(true);
    for (const o of rendered) {
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, idOf(o)).toBe('fedgate');
    }
  });

  it('validates against the Kubernetes schemas, with no unknown field', () => {
    const problems = rendered.flatMap((o) => validateObject(o).map((p) => `${idOf(o)}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('the unknown-field check does catch a typo', () => {
    const bad = structuredClone(deployment());
    const c = arr(at(bad, 'spec', 'template', 'spec', 'containers'))[0]!;
    c.readinesProbe = c.readinessProbe;
    expect(validateObject(bad)).toEqual([
      'unknown field spec.template.spec.containers[0].readinesProbe',
    ]);
  });

  it('runs at least two replicas spread over zones and nodes, with a PodDisruptionBudget', () => {
    const d = deployment();
    expect(Number(at(d, 'spec', 'replicas'))).toBeGreaterThanOrEqual(2);
    const labels = obj(at(d, 'spec', 'template', 'metadata', 'labels'));
    const spread = arr(podSpec().topologySpreadConstraints);
    expect(spread.map((s) => s.topologyKey).sort()).toEqual([
      'kubernetes.io/hostname',
      'topology.kubernetes.io/zone',
    ]);
    for (const s of spread) {
      expect(s.maxSkew).toBe(1);
      for (const [k, v] of Object.entries(obj(at(s, 'labelSelector', 'matchLabels')))) {
        expect(labels[k], `spread selector ${k}`).toBe(v);
      }
    }
    const pdb = one('PodDisruptionBudget', 'fedgate');
    const selector = obj(at(pdb, 'spec', 'selector', 'matchLabels'));
    expect(Object.keys(selector).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(selector)) expect(labels[k]).toBe(v);
    expect(at(pdb, 'spec', 'maxUnavailable')).toBe(1);
  });

  it('is locked down: non-root, read-only root, no privilege escalation, no capabilities, seccomp', () => {
    const pod = obj(podSpec().securityContext);
    const sc = obj(container().securityContext);
    expect(pod.runAsNonRoot ?? sc.runAsNonRoot).toBe(true);
    expect(Number(pod.runAsUser ?? sc.runAsUser)).toBeGreaterThan(0);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(at(sc, 'capabilities', 'drop')).toEqual(['ALL']);
    expect(at(sc, 'capabilities', 'add')).toBeUndefined();
    expect(at(pod, 'seccompProfile', 'type') ?? at(sc, 'seccompProfile', 'type')).toBe(
      'RuntimeDefault',
    );
    // fedgate never talks to the API of the cluster it runs in.
    expect(podSpec().automountServiceAccountToken).toBe(false);
    // Every volume is read-only configuration: nothing in src/ writes files at run time.
    for (const m of arr(container().volumeMounts)) expect(m.readOnly, String(m.name)).toBe(true);
  });

  it('sets resource requests and limits', () => {
    const res = obj(container().resources);
    for (const kind of ['requests', 'limits']) {
      expect(Object.keys(obj(res[kind])).sort(), kind).toEqual(['cpu', 'memory']);
    }
  });

  it('every Service targetPort is a containerPort of the pods it selects, with the same protocol', () => {
    const podLabels = obj(at(deployment(), 'spec', 'template', 'metadata', 'labels'));
    const ports = arr(container().ports);
    const problems: string[] = [];
    const services = rendered.filter((o) => o.kind === 'Service');
    expect(services.length).toBe(3);
    for (const svc of services) {
      for (const [k, v] of Object.entries(obj(at(svc, 'spec', 'selector')))) {
        if (podLabels[k] !== v)
          problems.push(`${idOf(svc)} selects ${k}=${String(v)}, not fedgate's pods`);
      }
      for (const p of arr(at(svc, 'spec', 'ports'))) {
        const target = p.targetPort ?? p.port;
        const protocol = p.protocol ?? 'TCP';
        const match = ports.find(
          (c) =>
            (typeof target === 'string' ? c.name === target : c.containerPort === target) &&
            (c.protocol ?? 'TCP') === protocol,
        );
        if (!match)
          problems.push(
            `${idOf(svc)} port ${String(p.name)}: no ${protocol} containerPort ${String(target)}`,
          );
      }
    }
    expect(problems).toEqual([]);
    const dns = one('Service', 'fedgate-dns');
    const http = one('Service', 'fedgate-http');
    const shape = (s: KubeObject) =>
      arr(at(s, 'spec', 'ports'))
        .map((p) => `${String(p.port)}/${String(p.protocol)}`)
        .sort();
    expect(at(dns, 'spec', 'type')).toBe('LoadBalancer');
    expect(shape(dns)).toEqual(['53/TCP', '53/UDP']);
    expect(at(http, 'spec', 'type')).toBe('LoadBalancer');
    expect(shape(http)).toEqual(['443/TCP', '80/TCP']);
    // fedgate places clients by their address: the load balancers must keep it.
    for (const s of [dns, http]) expect(at(s, 'spec', 'externalTrafficPolicy')).toBe('Local');
    expect(at(one('Service', 'fedgate-admin'), 'spec', 'type')).toBe('ClusterIP');
  });

  it('the ServiceMonitor scrapes /metrics on the admin Service, and the admin Service alone', () => {
    const sm = one('ServiceMonitor', 'fedgate');
    const selector = obj(at(sm, 'spec', 'selector', 'matchLabels'));
    const matched = rendered.filter(
      (o) =>
        o.kind === 'Service' &&
        Object.entries(selector).every(([k, v]) => o.metadata.labels?.[k] === v),
    );
    expect(matched.map((s) => s.metadata.name)).toEqual(['fedgate-admin']);
    const endpoints = arr(at(sm, 'spec', 'endpoints'));
    expect(endpoints.length).toBe(1);
    expect(endpoints[0]!.path).toBe('/metrics');
    const portNames = arr(at(matched[0], 'spec', 'ports')).map((p) => p.name);
    expect(portNames).toContain(endpoints[0]!.port);
  });

  it('ships the Grafana dashboard as a ConfigMap for the dashboard sidecar', async () => {
    const cm = one('ConfigMap', 'fedgate-dashboard');
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    const data = obj(cm.data);
    expect(Object.keys(data)).toEqual(['fedgate-dashboard.json']);
    expect(JSON.parse(String(data['fedgate-dashboard.json']))).toEqual(
      JSON.parse(await readFile(DASHBOARD, 'utf8')),
    );
  });
});

// ---- the example configuration, as the pod sees it ----------------------------------

/** Writes the pod's view of the volumes under root: ConfigMaps and Secrets at their mountPaths. */
async function mountVolumes(
  root: string,
  missing: Record<string, Record<string, string>>,
): Promise<string[]> {
  const volumes = new Map(arr(podSpec().volumes).map((v) => [String(v.name), v]));
  const written: string[] = [];
  for (const m of arr(container().volumeMounts)) {
    const v = volumes.get(String(m.name));
    if (!v) throw new Error(`volumeMount ${String(m.name)} has no volume`);
    let files: Record<string, string>;
    if (v.configMap) {
      files = obj(one('ConfigMap', String(at(v, 'configMap', 'name'))).data) as Record<
        string,
        string
      >;
    } else if (v.secret) {
      const name = String(at(v, 'secret', 'secretName'));
      const secret = rendered.find((o) => o.kind === 'Secret' && o.metadata.name === name);
      if (secret) {
        files = Object.fromEntries(
          Object.entries(obj(secret.data)).map(([k, b64]) => [
            k,
            Buffer.from(String(b64), 'base64').toString('utf8'),
          ]),
        );
      } else if (missing[name]) {
        files = missing[name];
      } else throw new Error(`Secret ${name} is neither rendered nor made by the test`);
    } else throw new Error(`volume ${String(m.name)}: only configMap and secret volumes expected`);
    const dir = join(root, String(m.mountPath));
    await mkdir(dir, { recursive: true });
    for (const [k, text] of Object.entries(files)) {
      await writeFile(join(dir, k), text);
      written.push(join(String(m.mountPath), k));
    }
  }
  return written.sort();
}

/** The node the test's pod stands on: what `fieldRef: spec.nodeName` gives. */
const POD_NODE = 'node-us-east-a-1';

/**
 * The container's environment as the kubelet fills it: `value`s as they are, and the
 * downward API's spec.nodeName as POD_NODE (no other fieldRef is expected).
 */
function podEnv(): Record<string, string> {
  return Object.fromEntries(
    arr(container().env).map((e) => {
      const field = at(e, 'valueFrom', 'fieldRef', 'fieldPath');
      if (field === undefined) return [String(e.name), String(e.value)];
      if (field !== 'spec.nodeName')
        throw new Error(`env ${String(e.name)}: unexpected ${String(field)}`);
      return [String(e.name), POD_NODE];
    }),
  );
}

/** A certificate and key for the fedgate-tls Secret, which the overlay leaves to cert-manager. */
async function tlsSecret(): Promise<Record<string, string>> {
  const pki = await makeClusterPki('edge', ['fed.example.com']);
  return { 'tls.crt': pki.serverCert, 'tls.key': pki.serverKey };
}

describe('the example configuration', () => {
  it('passes fedgate check-config with the ConfigMap and Secrets mounted where the Deployment mounts them', async () => {
    const root = join(work, 'pod');
    const files = await mountVolumes(root, { 'fedgate-tls': await tlsSecret() });
    expect(files).toEqual([
      '/etc/fedgate/clusters/alpha.kubeconfig',
      '/etc/fedgate/clusters/beta.kubeconfig',
      '/etc/fedgate/clusters/gamma.kubeconfig',
      '/etc/fedgate/config.yaml',
      '/etc/fedgate/tls/tls.crt',
      '/etc/fedgate/tls/tls.key',
    ]);
    const r = await fedgate(
      ['check-config', join(root, 'etc/fedgate/config.yaml')],
      30_000,
      podEnv(),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const effective = parse(r.stdout) as Json;
    // self.node is the pod's NODE_NAME, as the downward API gives it.
    expect(obj(effective.self).node).toBe(POD_NODE);
    // The kubeconfigs check-config loaded are the Secret's, beside the config file.
    expect(arr(effective.clusters).map((c) => c.kubeconfig)).toEqual(
      ['alpha', 'beta', 'gamma'].map((c) => join(root, `etc/fedgate/clusters/${c}.kubeconfig`)),
    );
  });

  it('gives each replica its own zone: self.node is the pod’s NODE_NAME (spec.nodeName), read in a member whose reader role may get Nodes', async () => {
    const raw = obj(parse(await readFile(join(OVERLAY, 'config.yaml'), 'utf8')));
    const self = obj(raw.self);
    const variable = /^\$\{([A-Z_]+)\}$/.exec(String(self.node))?.[1];
    expect(variable).toBe('NODE_NAME');
    const env = arr(container().env).find((e) => e.name === variable);
    expect(at(env, 'valueFrom', 'fieldRef', 'fieldPath')).toBe('spec.nodeName');
    expect(arr(raw.clusters).map((c) => c.name)).toContain(self.cluster);
    // The member's reader ClusterRole lets fedgate get that Node.
    const reader = parseAllDocuments(
      await readFile(join(ROOT, 'deploy/member-rbac/fedgate-reader.yaml'), 'utf8'),
    )
      .map((d) => d.toJS() as Json)
      .find((d) => d.kind === 'ClusterRole');
    const nodes = arr(reader?.rules).find(
      (r) => Array.isArray(r.resources) && r.resources.includes('nodes'),
    );
    expect(nodes?.verbs).toContain('get');
    // One Deployment, spread over zones: no per-zone nodeSelector.
    expect(podSpec().nodeSelector).toBeUndefined();
    // Without the variable the file is refused, naming it.
    const root = join(work, 'pod-no-node');
    await mountVolumes(root, { 'fedgate-tls': await tlsSecret() });
    const { NODE_NAME: _, ...withoutNode } = podEnv();
    const r = await fedgate(['check-config', join(root, 'etc/fedgate/config.yaml')], 30_000, {
      ...withoutNode,
      NODE_NAME: '',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('self.node: environment variable NODE_NAME is not set');
  });

  it('is the file in deploy/ (the ConfigMap holds it unchanged)', async () => {
    const cm = rendered.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('fedgate-config'),
    )!;
    expect(obj(cm.data)['config.yaml']).toBe(await readFile(join(OVERLAY, 'config.yaml'), 'utf8'));
  });

  it('the probes use its admin listener, which listens beyond loopback', async () => {
    const config = configSchema.parse(parse(await readFile(join(OVERLAY, 'config.yaml'), 'utf8')));
    expect(config.admin.listen.host).toBe('0.0.0.0');
    const ports = arr(container().ports);
    for (const [probe, path] of [
      ['readinessProbe', '/readyz'],
      ['livenessProbe', '/healthz'],
    ] as const) {
      const get = obj(at(container(), probe, 'httpGet'));
      expect(get.path, probe).toBe(path);
      const port =
        typeof get.port === 'string'
          ? ports.find((p) => p.name === get.port)?.containerPort
          : get.port;
      expect(port, probe).toBe(config.admin.listen.port);
    }
    // And every listener in the config is a containerPort.
    const tcp = new Set(
      ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP').map((p) => p.containerPort),
    );
    const udp = new Set(ports.filter((p) => p.protocol === 'UDP').map((p) => p.containerPort));
    for (const l of config.dns.listen)
      expect(tcp.has(l.port) && udp.has(l.port), `dns ${l.port}`).toBe(true);
    for (const l of [
      ...config.http.listen,
      ...(config.http.tls?.listen ?? []),
      config.admin.listen,
    ]) {
      expect(tcp.has(l.port), `listener ${l.port}`).toBe(true);
    }
  });

  it('leaves the drain time to finish: terminationGracePeriodSeconds > preStop sleep + http.drainTimeout', async () => {
    const config = configSchema.parse(parse(await readFile(join(OVERLAY, 'config.yaml'), 'utf8')));
    const preStop = Number(at(container(), 'lifecycle', 'preStop', 'sleep', 'seconds') ?? 0);
    const grace = Number(podSpec().terminationGracePeriodSeconds);
    expect(grace * 1000).toBeGreaterThan(preStop * 1000 + config.http.drainTimeout);
  });
});

// ---- every file in deploy/ -----------------------------------------------------------

/** Files the describe blocks named after them check. */
const CHECKED_ELSEWHERE = [
  'deploy/Dockerfile',
  'deploy/fedgate.schema.json', // docs/reference.md, and src/config/load.test.ts
  'deploy/grafana/fedgate-dashboard.json',
  'deploy/member-rbac/make-kubeconfig.sh',
  'deploy/README.md', // its links and paths, with the docs' below
];

describe('every file in deploy/', () => {
  it('is checked by one of these tests', async () => {
    const unchecked: string[] = [];
    const problems: string[] = [];
    for (const file of await filesUnder(DEPLOY)) {
      const text = await readFile(join(ROOT, file), 'utf8');
      if (CHECKED_ELSEWHERE.includes(file)) continue;
      if (!/\.ya?ml$|\.kubeconfig$/.test(file)) {
        unchecked.push(file);
        continue;
      }
      for (const [i, doc] of yamlDocs(text, file).entries()) {
        const o = doc as KubeObject;
        if (o?.kind === 'Kustomization') continue; // rendered above or below
        if (o?.kind === 'Config' && o.apiVersion === 'v1') {
          // A kubeconfig: client-node loads it as fedgate does.
          const kc = new k8sClient.KubeConfig();
          try {
            kc.loadFromString(text);
            if (!kc.getCurrentCluster()) problems.push(`${file}: no current cluster`);
          } catch (e) {
            problems.push(`${file}: ${(e as Error).message}`);
          }
        } else if ('federation' in obj(o)) {
          // fedgate's configuration: the schema here, check-config above.
          const r = configSchema.safeParse(o);
          if (!r.success) problems.push(`${file}: ${r.error.message}`);
        } else if (o?.apiVersion && o.kind) {
          problems.push(...validateObject(o).map((p) => `${file} ${idOf(o)}: ${p}`));
        } else unchecked.push(`${file} document ${i}`);
      }
    }
    expect(problems).toEqual([]);
    expect(unchecked).toEqual([]);
  });

  it('every kustomization renders', async () => {
    const kubectl = requireKubeTools().kubectl;
    const dirs = (await filesUnder(DEPLOY))
      .filter((f) => f.endsWith('/kustomization.yaml'))
      .map((f) => dirname(f));
    expect(dirs.length).toBeGreaterThanOrEqual(4);
    for (const dir of dirs) {
      const r = await run(kubectl, ['kustomize', join(ROOT, dir)]);
      expect(r.stderr, dir).toBe('');
      expect(r.code, dir).toBe(0);
    }
  });
});

// ---- member RBAC ---------------------------------------------------------------------

async function memberObjects(): Promise<KubeObject[]> {
  const r = await run(requireKubeTools().kubectl, ['kustomize', MEMBER_RBAC]);
  if (r.code !== 0) throw new Error(r.stderr);
  return yamlDocs(r.stdout, 'kubectl kustomize deploy/member-rbac') as KubeObject[];
}

/** A role's rules as sorted "group resource verb" lines; no names, no URLs. */
function grants(role: KubeObject | undefined): string[] {
  const granted = new Set<string>();
  for (const rule of arr(role?.rules)) {
    expect(rule.resourceNames, 'resourceNames').toBeUndefined();
    expect(rule.nonResourceURLs, 'nonResourceURLs').toBeUndefined();
    for (const group of arr(rule.apiGroups) as unknown as string[])
      for (const resource of arr(rule.resources) as unknown as string[])
        for (const verb of arr(rule.verbs) as unknown as string[])
          granted.add(`${group || 'core'} ${resource} ${verb}`);
  }
  return [...granted].sort();
}

describe('deploy/member-rbac', () => {
  it('the reader ClusterRole grants exactly get, list and watch on the four resources fedgate reads', async () => {
    const role = (await memberObjects()).find(
      (o) => o.kind === 'ClusterRole' && o.metadata.name === 'fedgate-reader',
    );
    expect(role?.aggregationRule).toBeUndefined();
    const expected = new Set<string>();
    for (const [group, resource] of [
      ['core', 'services'],
      ['core', 'nodes'],
      ['discovery.k8s.io', 'endpointslices'],
      ['multicluster.x-k8s.io', 'serviceexports'],
    ])
      for (const verb of ['get', 'list', 'watch']) expected.add(`${group} ${resource} ${verb}`);
    expect(grants(role)).toEqual([...expected].sort());
  });

  it('the writer roles grant exactly what the write-back writes: export status, imports, Gateway API status, and the Lease in its namespace', async () => {
    const objects = await memberObjects();
    const writer = objects.find(
      (o) => o.kind === 'ClusterRole' && o.metadata.name === 'fedgate-writer',
    );
    expect(writer?.aggregationRule).toBeUndefined();
    const expected: string[] = [];
    const add = (group: string, resources: string[], verbs: string[]) => {
      for (const r of resources) for (const v of verbs) expected.push(`${group} ${r} ${v}`);
    };
    const GW = 'gateway.networking.k8s.io';
    add('multicluster.x-k8s.io', ['serviceexports/status'], ['update', 'patch']);
    add(
      'multicluster.x-k8s.io',
      ['serviceimports'],
      ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    );
    add('multicluster.x-k8s.io', ['serviceimports/status'], ['update', 'patch']);
    add(
      GW,
      ['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants'],
      ['get', 'list', 'watch'],
    );
    add(
      GW,
      ['gatewayclasses/status', 'gateways/status', 'httproutes/status', 'grpcroutes/status'],
      ['get', 'update', 'patch'],
    );
    add('core', ['namespaces'], ['get', 'list', 'watch']);
    expect(grants(writer)).toEqual(expected.sort());
    // The Lease: a namespaced Role, in the namespace writeBack.lease defaults to.
    const roles = objects.filter((o) => o.kind === 'Role');
    expect(roles.map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).toEqual([
      `${DEFAULT_WRITEBACK_LEASE_NAMESPACE}/fedgate-lease`,
    ]);
    expect(grants(roles[0])).toEqual([
      'coordination.k8s.io leases create',
      'coordination.k8s.io leases get',
      'coordination.k8s.io leases update',
    ]);
    expect(objects.filter((o) => o.kind === 'ClusterRole').length).toBe(2);
    // Both bind the reader's ServiceAccount: one kubeconfig per member does both.
    const sa = objects.find((o) => o.kind === 'ServiceAccount');
    for (const b of objects.filter((o) => o.kind.endsWith('Binding'))) {
      expect(b.subjects, idOf(b)).toEqual([
        { kind: 'ServiceAccount', name: sa?.metadata.name, namespace: sa?.metadata.namespace },
      ]);
    }
  });

  it('grants reading Secrets (HTTPS Gateway listeners) only in a file applied apart', async () => {
    expect(
      (await memberObjects()).some((o) => o.metadata.name === 'fedgate-gateway-tls-secrets'),
    ).toBe(false);
    const text = await readFile(join(MEMBER_RBAC, 'gateway-tls-secrets.yaml'), 'utf8');
    const docs = yamlDocs(text, 'gateway-tls-secrets.yaml') as KubeObject[];
    const role = docs.find((o) => o.kind === 'ClusterRole');
    expect(grants(role)).toEqual(['core secrets list', 'core secrets watch']);
    const binding = docs.find((o) => o.kind === 'ClusterRoleBinding');
    expect(binding?.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'fedgate-reader', namespace: 'fedgate-reader' },
    ]);
  });

  it('binds it to the ServiceAccount whose long-lived token Secret make-kubeconfig.sh reads', async () => {
    const objects = await memberObjects();
    const binding = objects.find(
      (o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === 'fedgate-reader',
    )!;
    const role = objects.find(
      (o) => o.kind === 'ClusterRole' && o.metadata.name === 'fedgate-reader',
    )!;
    const sa = objects.find((o) => o.kind === 'ServiceAccount')!;
    const secret = objects.find((o) => o.kind === 'Secret')!;
    const ns = objects.find((o) => o.kind === 'Namespace')!;
    expect(at(binding, 'roleRef')).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: role.metadata.name,
    });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace },
    ]);
    expect(sa.metadata.namespace).toBe(ns.metadata.name);
    expect(secret.type).toBe('kubernetes.io/service-account-token');
    expect(secret.metadata.annotations?.['kubernetes.io/service-account.name']).toBe(
      sa.metadata.name,
    );
    // The script's defaults name them.
    const script = await readFile(MAKE_KUBECONFIG, 'utf8');
    expect(script).toContain(`namespace=${secret.metadata.namespace}\n`);
    expect(script).toContain(`secret=${secret.metadata.name}\n`);
    for (const o of objects) expect(validateObject(o), idOf(o)).toEqual([]);
  });
});

describe('deploy/member-rbac/make-kubeconfig.sh', () => {
  const READER_TOKEN = `eyJhbGciOiJSUzI1NiJ9.${randomBytes(24).toString('base64url')}.${randomBytes(16).toString('base64url')}`;
  let sim: SimCluster;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let kubectl: string;

  /** A Secret as the token controller leaves it; `data` overrides. */
  async function secretFixture(file: string, data?: Record<string, string>): Promise<string> {
    const path = join(dir, file);
    await writeFile(
      path,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'fedgate-reader-token',
          namespace: 'fedgate-reader',
          annotations: { 'kubernetes.io/service-account.name': 'fedgate-reader' },
        },
        type: 'kubernetes.io/service-account-token',
        data: data ?? {
          token: Buffer.from(READER_TOKEN).toString('base64'),
          'ca.crt': Buffer.from(sim.caCert).toString('base64'),
          namespace: Buffer.from('fedgate-reader').toString('base64'),
        },
      }),
    );
    return path;
  }

  const script = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    run('bash', [MAKE_KUBECONFIG, ...args], { env: { ...env, ...extra } });

  beforeAll(async () => {
    kubectl = requireKubeTools().kubectl;
    dir = await mkdtemp(join(tmpdir(), 'fedgate-make-kubeconfig-'));
    sim = await SimCluster.create({
      name: 'alpha',
      host: '127.0.0.1',
      port: 0,
      token: READER_TOKEN,
    });
    await sim.start();
    // The operator's own kubeconfig: the member's real server and CA, but a token the
    // API server refuses, so only the ServiceAccount's token can make the check pass.
    const admin = parse(sim.kubeconfig()) as Json;
    arr(admin.contexts)[0]!.name = 'kind-alpha';
    admin['current-context'] = 'kind-alpha';
    obj(arr(admin.users)[0]!.user).token = 'the-operators-own-token';
    await writeFile(join(dir, 'admin.kubeconfig'), stringify(admin), { mode: 0o600 });
    // The simulator serves no Secrets (src/localfed/README.md): this kubectl stands in
    // for `get secret` only, rendering a real Secret object with the real kubectl
    // (`label --local`, which prints without a server); everything else is kubectl.
    const bin = join(dir, 'bin');
    await mkdir(bin);
    await writeFile(
      join(bin, 'kubectl'),
      `#!${process.execPath}
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const args = process.argv.slice(2);
const real = ${JSON.stringify(kubectl)};
const get = args.indexOf('get');
if (get >= 0 && /^secrets?$/.test(args[get + 1] || '')) {
  let ns = 'default';
  let output;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-n' || a === '--namespace') ns = args[++i];
    else if (a.startsWith('--namespace=')) ns = a.slice(12);
    else if (a === '-o' || a === '--output') output = args[++i];
    else if (a.startsWith('--output=')) output = a.slice(9);
  }
  fs.appendFileSync(process.env.SHIM_LOG, JSON.stringify(args) + '\\n');
  const secret = JSON.parse(fs.readFileSync(process.env.SHIM_SECRET, 'utf8'));
  const name = args[get + 2];
  if (secret.metadata.namespace !== ns || secret.metadata.name !== name) {
    process.stderr.write('Error from server (NotFound): secrets "' + name + '" not found\\n');
    process.exit(1);
  }
  const r = spawnSync(real, ['label', '--local', '-f', process.env.SHIM_SECRET, 'shim=1', ...(output ? ['-o', output] : [])], { stdio: 'inherit' });
  process.exit(r.status === null ? 1 : r.status);
}
const r = spawnSync(real, args, { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
`,
    );
    await chmod(join(bin, 'kubectl'), 0o755);
    env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      KUBECONFIG: join(dir, 'admin.kubeconfig'),
      HOME: dir, // kubectl's discovery cache
      SHIM_LOG: join(dir, 'shim.log'),
      SHIM_SECRET: await secretFixture('secret.json'),
    };
    sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
    sim.apply({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'web-1',
        namespace: 'shop',
        labels: { 'kubernetes.io/service-name': 'web' },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.10.0.1'], conditions: { ready: true }, zone: 'us-east-a' }],
      ports: [{ name: 'http', port: 8080 }],
    });
  });

  afterAll(async () => {
    await sim?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the API simulator has no token controller to fill the token Secret, which is why `get secret` is stood in for', async () => {
    await writeFile(join(dir, 'sim.kubeconfig'), sim.kubeconfig());
    const r = await run(
      kubectl,
      ['get', 'secret', 'fedgate-reader-token', '--namespace', 'default'],
      { env: { ...process.env, HOME: dir, KUBECONFIG: join(dir, 'sim.kubeconfig') } },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('secrets "fedgate-reader-token" not found');
  });

  it('writes a kubeconfig with the ServiceAccount token, the context CA and server, owner-only', async () => {
    await writeFile(env.SHIM_LOG!, '');
    const out = join(dir, 'out/alpha.kubeconfig');
    const r = await script(['kind-alpha', 'alpha', out]);
    expect(r.stderr).toContain(`wrote ${out}`);
    expect(r.code).toBe(0);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const kc = parse(await readFile(out, 'utf8')) as Json;
    expect(kc['current-context']).toBe('alpha');
    expect(kc.clusters).toEqual([
      {
        name: 'alpha',
        cluster: {
          server: sim.url,
          'certificate-authority-data': Buffer.from(sim.caCert).toString('base64'),
        },
      },
    ]);
    expect(kc.users).toEqual([{ name: 'alpha-fedgate-reader', user: { token: READER_TOKEN } }]);
    expect(kc.contexts).toEqual([
      { name: 'alpha', context: { cluster: 'alpha', user: 'alpha-fedgate-reader' } },
    ]);
    // It asked for the Secret deploy/member-rbac makes, in the context it was given.
    const asked = (await readFile(env.SHIM_LOG!, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string[]);
    expect(asked.length).toBeGreaterThan(0);
    for (const a of asked) {
      expect(a.slice(0, 6)).toEqual([
        '--context',
        'kind-alpha',
        '--namespace',
        'fedgate-reader',
        'get',
        'secret',
      ]);
      expect(a[6]).toBe('fedgate-reader-token');
    }
  });

  it('the kubeconfig it wrote lists EndpointSlices on the member cluster and passes check-config', async () => {
    const out = join(dir, 'out/alpha.kubeconfig');
    const r = await run(
      kubectl,
      ['--kubeconfig', out, 'get', 'endpointslices.discovery.k8s.io', '-A', '-o', 'json'],
      {
        env: { ...process.env, HOME: dir },
      },
    );
    expect(r.stderr).toBe('');
    const items = arr(obj(JSON.parse(r.stdout)).items) as KubeObject[];
    expect(items.map((s) => `${s.metadata.namespace}/${s.metadata.name}`)).toContain('shop/web-1');
    const config = join(dir, 'out/fedgate.yaml');
    await writeFile(
      config,
      'federation: { name: galaxy, domain: example.test }\nclusters:\n  - { name: alpha, kubeconfig: alpha.kubeconfig }\n',
    );
    const check = await fedgate(['check-config', config]);
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
  });

  it('its kubeconfigs stand in for the example placeholders: the example config passes check-config with them', async () => {
    const root = join(work, 'pod-real');
    await mountVolumes(root, { 'fedgate-tls': await tlsSecret() });
    for (const c of ['alpha', 'beta', 'gamma']) {
      const r = await script(['kind-alpha', c, join(root, `etc/fedgate/clusters/${c}.kubeconfig`)]);
      expect(r.code, r.stderr).toBe(0);
    }
    const r = await fedgate(
      ['check-config', join(root, 'etc/fedgate/config.yaml')],
      30_000,
      podEnv(),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('writes to standard output with -', async () => {
    const r = await script(['kind-alpha', 'beta', '-']);
    expect(r.code, r.stderr).toBe(0);
    expect(obj(arr((parse(r.stdout) as Json).users)[0]).name).toBe('beta-fedgate-reader');
  });

  it('prints its usage, and exits 2 on a usage error', async () => {
    const help = await script(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: make-kubeconfig\.sh \[OPTIONS\] CONTEXT CLUSTER OUTPUT/);
    const none = await script([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('expected CONTEXT CLUSTER OUTPUT, got 0 argument(s)');
    const badName = await script(['kind-alpha', 'Alpha_1', join(dir, 'x')]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain(
      "CLUSTER must be a DNS label (lower-case letters, digits and -, at most 63): 'Alpha_1'",
    );
    const badOption = await script(['--bogus', 'kind-alpha', 'alpha', join(dir, 'x')]);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toContain('unknown option --bogus');
  });

  it('says what is wrong: an unknown context, a missing Secret, a Secret without a token', async () => {
    const out = join(dir, 'err/alpha.kubeconfig');
    const noContext = await script(['nope', 'alpha', out]);
    expect(noContext.code).toBe(1);
    expect(noContext.stderr).toContain("no context 'nope' in your kubeconfig");
    const noSecret = await script(['-n', 'elsewhere', 'kind-alpha', 'alpha', out]);
    expect(noSecret.code).toBe(1);
    expect(noSecret.stderr).toContain(
      "no Secret elsewhere/fedgate-reader-token in context 'kind-alpha': apply deploy/member-rbac there first",
    );
    const noToken = await script(['--wait', '1', 'kind-alpha', 'alpha', out], {
      SHIM_SECRET: await secretFixture('tokenless.json', {}),
    });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain(
      'Secret fedgate-reader/fedgate-reader-token has no token after 1s: does ServiceAccount fedgate-reader/fedgate-reader exist?',
    );
    await expect(stat(out)).rejects.toThrow();
  });

  it('writes nothing when the new kubeconfig cannot read the cluster', async () => {
    const out = join(dir, 'err/unreachable.kubeconfig');
    const r = await script(['--server', 'https://127.0.0.1:1', 'kind-alpha', 'alpha', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'the new kubeconfig cannot list /api/v1/services on https://127.0.0.1:1',
    );
    await expect(stat(out)).rejects.toThrow();
    expect((await readdir(dirname(out))).filter((f) => f.includes('kubeconfig'))).toEqual([]);
  });

  it('passes shellcheck', async () => {
    const shellcheck = requireTool('shellcheck', 'test/deploy.test.ts');
    const r = await run(shellcheck, [MAKE_KUBECONFIG]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

// ---- the image ------------------------------------------------------------------------

describe('deploy/Dockerfile', () => {
  let text: string;
  beforeAll(async () => {
    text = await readFile(join(DEPLOY, 'Dockerfile'), 'utf8');
  });

  it('lints clean (dockerfile-utils)', () => {
    expect(lintDockerfile(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual(
      [],
    );
  });

  it('is multi-stage, its final stage Node 24 slim pinned by version, running as a non-root user', () => {
    const df = DockerfileParser.parse(text);
    const froms = df.getFROMs();
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) {
      expect(from.getImageName()).toBe('node');
      expect(from.getImageTag()).toMatch(/^24\.\d+\.\d+-(bookworm-|trixie-)?slim$/);
    }
    const final = froms.at(-1)!;
    expect(final.getBuildStage()).toBeNull();
    const finalLine = final.getRange().start.line;
    const after = df.getInstructions().filter((i) => i.getRange().start.line >= finalLine);
    const users = after.filter((i) => i.getKeyword() === 'USER');
    expect(users.length).toBe(1);
    const user = users[0]!.getArgumentsContent()!.split(':')[0]!;
    expect(['root', '0', '']).not.toContain(user);
    // What the final stage copies from the other stages is only node_modules.
    const fromStage = after
      .filter((i): i is Copy => i instanceof Copy)
      .filter((c) => c.getFromFlag() !== null)
      .map((c) => `${c.getFromFlag()!.getValue()}: ${c.getArgumentsContent()}`);
    expect(fromStage).toEqual(['deps: /app/node_modules ./node_modules']);
  });

  it('installs production dependencies only, from the lockfile', () => {
    const df = DockerfileParser.parse(text);
    const runs = df.getInstructions().filter((i) => i.getKeyword() === 'RUN');
    const installs = runs.filter((r) =>
      /\bnpm (ci|install|i)\b/.test(r.getArgumentsContent() ?? ''),
    );
    expect(installs.length).toBe(1);
    const args = installs[0]!.getArguments().map((a) => a.getValue());
    expect(args.slice(0, 2)).toEqual(['npm', 'ci']);
    expect(args).toContain('--omit=dev');
  });

  it("its entry command is a fedgate command with options the CLI accepts, reading the Deployment's config file", async () => {
    const df = DockerfileParser.parse(text);
    const json = (keyword: string) => {
      const found = df.getInstructions().filter((i) => i.getKeyword() === keyword);
      expect(found.length, keyword).toBe(1);
      return (found[0] as unknown as { getJSONStrings(): { getJSONValue(): string }[] })
        .getJSONStrings()
        .map((s) => s.getJSONValue());
    };
    const argv = [...json('ENTRYPOINT'), ...json('CMD')];
    expect(argv.slice(0, 2)).toEqual(['node', 'src/cli.ts']);
    const [command, ...options] = argv.slice(2);
    expect(command).toBe('start');
    // The Deployment runs the image's command as it is.
    expect(container().command).toBeUndefined();
    expect(container().args).toBeUndefined();
    // The config path is where the config volume puts config.yaml.
    const configAt = options[options.indexOf('--config') + 1]!;
    const mount = arr(container().volumeMounts).find((m) => m.name === 'config')!;
    expect(configAt).toBe(join(String(mount.mountPath), 'config.yaml'));
    // The CLI takes exactly these options: with a config file that is not there it
    // gets as far as loading it (an unknown option or command would fail earlier).
    const missing = join(work, 'no-such-dir/config.yaml');
    const r = await fedgate([command!, ...options.map((o) => (o === configAt ? missing : o))]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${missing}: invalid configuration`);
    expect(r.stderr).toContain('file not found');
    const help = await fedgate([command!, '--help']);
    expect(help.stdout).toMatch(/^fedgate start --config FILE/);
  });

  it('exposes every port the Deployment declares', () => {
    const df = DockerfileParser.parse(text);
    const exposed = df
      .getInstructions()
      .filter((i) => i.getKeyword() === 'EXPOSE')
      .flatMap((i) => i.getArguments().map((a) => a.getValue()));
    const declared = arr(container().ports).map(
      (p) => `${String(p.containerPort)}/${String(p.protocol ?? 'TCP').toLowerCase()}`,
    );
    expect([...exposed].sort()).toEqual([...declared].sort());
  });

  it('copies what fedgate runs: every package the CLI imports is a production dependency', async () => {
    await lexerReady();
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const seen = new Set<string>();
    const packages = new Set<string>();
    const queue = [join(ROOT, 'src/cli.ts')];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      // es-module-lexer reads TypeScript; type-only imports are gone at run time.
      const [imports] = parseImports(await readFile(file, 'utf8'));
      for (const i of imports) {
        const spec = 'specifier' in i ? i.specifier : undefined;
        if (typeof spec !== 'string' || ('typeOnly' in i && i.typeOnly)) continue;
        if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
        else if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        else
          packages.add(
            spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!,
          );
      }
    }
    const reached = [...seen].map((f) => relative(ROOT, f));
    expect(reached.every((f) => f.startsWith('src/') && !f.endsWith('.test.ts'))).toBe(true);
    expect(reached).toContain('src/fedgate.ts');
    expect([...packages].filter((p) => !(p in pkg.dependencies))).toEqual([]);
  });

  it('builds from a context holding only package.json, the lockfile and src (.dockerignore)', async () => {
    const lines = (await readFile(join(ROOT, '.dockerignore'), 'utf8'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    expect(lines).toEqual(expect.arrayContaining(['!package.json', '!package-lock.json', '!src']));
  });
});

// ---- dashboard and alerts ----------------------------------------------------------

/** fedgate's registry as /metrics serves it: name → type. */
async function registeredSeries(): Promise<Map<string, string>> {
  const metrics = new Metrics({
    discovery: {
      catalog: {
        current: () => ({ version: 0, createdAt: 0, services: new Map(), clusters: new Map() }),
        onPropagation: () => () => {},
      },
      watchers: [],
      health: {
        active: {
          results: () => new Map(),
          stats: () => ({
            targets: 0,
            inFlight: 0,
            queued: 0,
            effectiveIntervalMs: 5000,
            probes: 0,
            passed: 0,
            failed: 0,
            exhausted: 0,
          }),
        },
        store: { endpoints: () => undefined },
      },
    },
    journal: new EventJournal(),
  });
  const all = await metrics.registry.getMetricsAsJSON();
  return new Map(all.map((m) => [m.name, String(m.type)]));
}

/** Series names in a PromQL expression, histogram suffixes folded to the histogram. */
function seriesIn(expr: string, registered: Map<string, string>): string[] {
  return [...expr.matchAll(/\b(?:fedgate|process|nodejs)_[a-z0-9_]+/g)].map(([name]) => {
    const base = name.replace(/_(bucket|count|sum)$/, '');
    return base !== name && registered.get(base) === 'histogram' ? base : name;
  });
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
}

async function dashboardPanels(): Promise<Panel[]> {
  const d = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[] };
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

async function prometheusRules(): Promise<Json> {
  const rule = parse(
    await readFile(join(DEPLOY, 'kubernetes/base/prometheusrule.yaml'), 'utf8'),
  ) as KubeObject;
  return obj(rule.spec);
}

/** Grafana's variables as Prometheus would see them once Grafana filled them in. */
const fillVariables = (expr: string) =>
  expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$job', 'fedgate-admin')
    .replaceAll('$service', '.*')
    .replaceAll('$cluster', '.*');

describe('deploy/grafana/fedgate-dashboard.json', () => {
  it('is a dashboard: unique panel ids, on the 24-column grid, each query with a refId', async () => {
    const panels = await dashboardPanels();
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type !== 'row') expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.refId, p.title).toMatch(/^[A-Z]$/);
    }
  });

  it('covers what to watch: every fedgate_* series but the catalog internals', async () => {
    const registered = await registeredSeries();
    const used = new Set(
      (await dashboardPanels()).flatMap((p) =>
        (p.targets ?? []).flatMap((t) => seriesIn(t.expr, registered)),
      ),
    );
    const fedgateSeries = [...registered.keys()].filter((n) => n.startsWith('fedgate_'));
    expect(fedgateSeries.filter((n) => !used.has(n))).toEqual([]);
  });

  it('every series the dashboard and the alerts query exists in fedgate_* metrics (src/observe/metrics.ts)', async () => {
    const registered = await registeredSeries();
    const exprs = [
      ...(await dashboardPanels()).flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...arr((await prometheusRules()).groups).flatMap((g) =>
        arr(g.rules).map((r) => String(r.expr)),
      ),
    ];
    const unknown = exprs.flatMap((e) =>
      seriesIn(e, registered)
        .filter((n) => !registered.has(n))
        .map((n) => `${n} in ${e}`),
    );
    expect(unknown).toEqual([]);
  });

  it('every query and alert is valid PromQL (promtool check rules)', async () => {
    const promtool = requireTool('promtool', 'test/deploy.test.ts');
    const panels = (await dashboardPanels()).filter((p) => p.targets);
    const dashboardGroup = {
      name: 'fedgate-dashboard',
      rules: panels.flatMap((p) =>
        (p.targets ?? []).map((t) => ({
          record: `fedgate_dashboard:panel_${p.id}_${t.refId}`,
          expr: fillVariables(t.expr),
        })),
      ),
    };
    const file = join(work, 'rules.yaml');
    await writeFile(
      file,
      stringify({ groups: [dashboardGroup, ...arr((await prometheusRules()).groups)] }),
    );
    const r = await run(promtool, ['check', 'rules', file]);
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.code).toBe(0);
  });
});

describe('docs/', () => {
  it('operate.md explains every alert the PrometheusRule ships', async () => {
    const operate = await readFile(join(ROOT, 'docs/operate.md'), 'utf8');
    const alerts = arr((await prometheusRules()).groups).flatMap((g) =>
      arr(g.rules).map((r) => String(r.alert)),
    );
    expect(alerts.length).toBeGreaterThan(5);
    expect(alerts.filter((a) => !operate.includes(`| \`${a}\` |`))).toEqual([]);
  });

  it('links only to files that exist', async () => {
    const broken: string[] = [];
    for (const doc of [
      'docs/deploy.md',
      'docs/operate.md',
      'docs/reference.md',
      'deploy/README.md',
    ]) {
      const text = await readFile(join(ROOT, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        await stat(join(ROOT, dirname(doc), target!)).catch(() => broken.push(`${doc}: ${target}`));
      }
      for (const [, path] of text.matchAll(/`((?:deploy|src|test|scripts)\/[\w./-]+)`/g)) {
        await stat(join(ROOT, path!)).catch(() => broken.push(`${doc}: ${path}`));
      }
    }
    expect(broken).toEqual([]);
  });
});

// ---- docs/reference.md ------------------------------------------------------------

/** Every field path of the configuration's JSON Schema: dns.rrl.slip, clusters[].name, routing.services.<key>.picker. */
function schemaPaths(node: unknown, path = '', out = new Set<string>()): Set<string> {
  const n = obj(node);
  for (const alt of [...arr(n.anyOf), ...arr(n.oneOf)]) schemaPaths(alt, path, out);
  for (const [k, v] of Object.entries(obj(n.properties))) {
    const p = path ? `${path}.${k}` : k;
    out.add(p);
    schemaPaths(v, p, out);
  }
  if (n.additionalProperties && typeof n.additionalProperties === 'object') {
    out.add(`${path}.<key>`);
    schemaPaths(n.additionalProperties, `${path}.<key>`, out);
  }
  if (n.items) schemaPaths(n.items, `${path}[]`, out);
  return out;
}

const normalize = (path: string) => path.replace(/<[^>]+>/g, '<key>');

/**
 * The effective configuration of the smallest config, for defaults; with `items`,
 * of one with an item in each list, for the defaults of list items' fields.
 */
function effectiveDefaults(items: boolean): Json {
  const config = configSchema.parse({
    federation: { name: 'galaxy', domain: 'example.test' },
    clusters: [{ name: 'alpha', kubeconfig: 'alpha.kubeconfig' }],
    ...(items
      ? {
          localities: [{ cidr: '127.0.0.0/8', region: 'r' }],
          dns: {
            proxyAddresses: [{ region: 'r', addresses: ['127.192.2.1'] }],
            nameServers: [{ name: 'ns1.example.test' }],
          },
        }
      : {}),
  });
  return effectiveConfig(config) as unknown as Json;
}

function valueAt(root: unknown, path: string): unknown {
  let v: unknown = root;
  for (const part of path.split('.')) {
    const m = /^([^[]+)(\[\])?$/.exec(part);
    if (!m || m[1]!.startsWith('<')) return undefined;
    v = obj(v)[m[1]!];
    if (m[2]) v = Array.isArray(v) ? v[0] : undefined;
  }
  return v;
}

describe('docs/reference.md', () => {
  let reference: string;
  let rows: { path: string; defaultText: string }[];
  beforeAll(async () => {
    reference = await readFile(REFERENCE, 'utf8');
    // The configuration section's tables: | `path` | type | default | meaning |
    const start = reference.indexOf('\n## Configuration file');
    expect(start).toBeGreaterThan(0);
    const end = reference.indexOf('\n## ', start + 1);
    const section = reference.slice(start, end < 0 ? undefined : end);
    rows = [...section.matchAll(/^\| `([^`]+)` \| [^|]* \| ([^|]*) \|/gm)].map(([, path, def]) => ({
      path: path!,
      defaultText: def!.trim(),
    }));
  });

  it('documents every field of the configuration schema (deploy/fedgate.schema.json), and no other', async () => {
    const file = JSON.parse(await readFile(join(DEPLOY, 'fedgate.schema.json'), 'utf8')) as Json;
    // The file is the generated schema (src/config/load.test.ts checks that too).
    expect(file).toEqual(JSON.parse(JSON.stringify(configJsonSchema())));
    const paths = [...schemaPaths(file)].map(normalize);
    const documented = new Set(rows.map((r) => normalize(r.path)));
    expect(paths.filter((p) => !documented.has(p))).toEqual([]);
    expect([...documented].filter((p) => !paths.includes(p))).toEqual([]);
  });

  it('states each default as the effective configuration has it', () => {
    const smallest = effectiveDefaults(false);
    const withItems = effectiveDefaults(true);
    const wrong: string[] = [];
    for (const { path, defaultText } of rows) {
      const literal = /^`([^`]*)`$/.exec(defaultText);
      if (!literal) continue; // required, optional, or described in words
      const actual = valueAt(path.includes('[]') ? withItems : smallest, path);
      if (actual === undefined) {
        wrong.push(`${path}: documented default ${defaultText}, but the field has none`);
        continue;
      }
      const documented = parse(literal[1]!) as unknown;
      if (JSON.stringify(documented) !== JSON.stringify(actual)) {
        wrong.push(
          `${path}: documented ${JSON.stringify(documented)}, effective ${JSON.stringify(actual)}`,
        );
      }
    }
    expect(wrong).toEqual([]);
  });

  it('documents every fedgate.io/ annotation, label and environment variable fedgate reads', async () => {
    const names = new Set<string>(Object.values(annotations).filter((v) => typeof v === 'string'));
    for (const file of await filesUnder(join(ROOT, 'src'))) {
      if (file.endsWith('.test.ts') || file.startsWith('src/localfed/')) continue;
      const text = await readFile(join(ROOT, file), 'utf8');
      for (const [m] of text.matchAll(/fedgate\.io\/[a-z0-9-]+/g)) names.add(m);
      for (const [m] of text.matchAll(/\bFEDGATE_[A-Z_]+\b/g)) names.add(m);
    }
    expect([...names].filter((n) => n.startsWith('fedgate.io/')).length).toBeGreaterThanOrEqual(4);
    expect([...names].filter((n) => !reference.includes(`\`${n}\``))).toEqual([]);
  });
});
