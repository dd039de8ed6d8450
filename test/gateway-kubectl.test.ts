// kubectl on Gateway API manifests, against the simulator and a real kube-apiserver
// with the CRDs installed, the same commands on both: `apply -f` (create, then a
// change: kubectl sends custom resources a JSON merge patch), a refused manifest,
// `api-resources` and `get` by plural and short name.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimCluster } from '../src/localfed/cluster.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { installGatewayCrds } from './helpers/gateway-api.ts';
import { ControlPlane, requireKubeTools } from './helpers/kube-control-plane.ts';

type Api = 'sim' | 'real';
interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let sim: SimCluster;
let cp: ControlPlane;
let dir: string;
const kubeconfigs: Partial<Record<Api, string>> = {};

function kubectl(api: Api, args: string[]): Promise<Run> {
  const config = kubeconfigs[api];
  if (!config) throw new Error(`no kubeconfig for ${api}`);
  return new Promise((resolve) => {
    execFile(
      requireKubeTools().kubectl,
      [`--kubeconfig=${config}`, ...args],
      { timeout: 30_000, env: { ...process.env, KUBECONFIG: '' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The same command on both servers. */
async function both(args: string[]): Promise<Record<Api, Run>> {
  const [s, r] = await Promise.all([kubectl('sim', args), kubectl('real', args)]);
  return { sim: s, real: r };
}

/** kubectl's columns, with the AGE column (the servers' own clocks) masked. */
function masked(table: string): string {
  const lines = table.trimEnd().split('\n');
  const age = (lines[0] ?? '').indexOf('AGE');
  if (age < 0) return table;
  return lines.map((l, i) => (i === 0 ? l : `${l.slice(0, age)}<age>`)).join('\n');
}

const NS = 'gw-kubectl';
const MANIFEST = (hostname: string, rules: string) => `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: fedgate-kubectl
spec:
  controllerName: fedgate.dev/gateway
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: ${NS}
spec:
  gatewayClassName: fedgate-kubectl
  listeners:
  - name: http
    port: 80
    protocol: HTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: ${NS}
spec:
  parentRefs:
  - name: edge
  hostnames: [${hostname}]
  rules:
${rules}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: echo
  namespace: ${NS}
spec:
  parentRefs:
  - name: edge
  rules:
  - matches:
    - method: { service: echo.Echo, method: Say }
    backendRefs:
    - { name: echo, port: 9000 }
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: from-routes
  namespace: ${NS}
spec:
  from:
  - { group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: other }
  to:
  - { group: "", kind: Service }
`;

const TWO_RULES = `  - matches: [{ path: { type: PathPrefix, value: /api } }]
    backendRefs: [{ name: api, port: 8080 }]
  - backendRefs: [{ name: web, port: 8080, weight: 3 }]`;
const ONE_RULE = `  - backendRefs: [{ name: web, port: 8080 }]`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-kubectl-'));
  sim = await SimCluster.create({ name: 'gw-kubectl', host: '127.223.0.2' });
  await sim.start();
  cp = await ControlPlane.start();
  await installGatewayCrds(cp);
  kubeconfigs.sim = await sim.writeKubeconfig(dir);
  kubeconfigs.real = cp.kubeconfig;
}, 180_000);

afterAll(async () => {
  await sim?.stop();
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('kubectl on Gateway API manifests', () => {
  it('apply -f creates, a changed manifest configures, and both servers hold the same route', async () => {
    const file = join(dir, 'gateway.yaml');
    await writeFile(file, MANIFEST('a.example', TWO_RULES));
    const created = await both(['apply', '-f', file]);
    expect(created.sim.code, created.sim.stderr).toBe(0);
    expect(created.sim.stdout).toBe(created.real.stdout);
    expect(created.sim.stdout).toContain('httproute.gateway.networking.k8s.io/web created');

    await writeFile(file, MANIFEST('b.example', ONE_RULE));
    const configured = await both(['apply', '-f', file]);
    expect(configured.sim.stdout).toBe(configured.real.stdout);
    expect(configured.sim.stdout).toContain('httproute.gateway.networking.k8s.io/web configured');
    expect(configured.sim.stdout).toContain(
      'gatewayclass.gateway.networking.k8s.io/fedgate-kubectl unchanged',
    );

    const got = await both(['get', 'httproute', 'web', '-n', NS, '-o', 'json']);
    const route = (r: Run) => JSON.parse(r.stdout) as KubeObject;
    expect(route(got.sim).spec).toEqual(route(got.real).spec);
    expect(route(got.sim).spec).toMatchObject({
      hostnames: ['b.example'],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          backendRefs: [{ group: '', kind: 'Service', name: 'web', port: 8080, weight: 1 }],
        },
      ],
    });
    expect(route(got.sim).metadata.generation).toBe(2);
    expect(route(got.real).metadata.generation).toBe(2);
  });

  it('a refused manifest gets the same error', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: bad, namespace: ${NS} }
spec:
  rules:
  - matches: [{ path: { type: Exact, value: relative } }]
`,
    );
    const r = await both(['apply', '-f', file]);
    expect(r.sim.code).toBe(1);
    expect(r.sim.stderr).toBe(r.real.stderr);
    expect(r.sim.stderr).toContain(
      "spec.rules[0].matches[0].path: Invalid value: value must be an absolute path and start with '/'",
    );
  });

  it('api-resources lists the kinds; get prints the CRD columns, by plural and short name', async () => {
    const resources = await both(['api-resources', '--api-group=gateway.networking.k8s.io']);
    expect(resources.sim.stdout).toBe(resources.real.stdout);
    for (const args of [
      ['get', 'httproutes', '-n', NS],
      ['get', 'grpcroutes', '-n', NS],
      ['get', 'gtw', '-n', NS],
      ['get', 'gc', 'fedgate-kubectl', '-o', 'wide'],
      ['get', 'refgrant', '-n', NS],
    ]) {
      const r = await both(args);
      expect(r.sim.code, r.sim.stderr).toBe(0);
      expect(masked(r.sim.stdout), args.join(' ')).toBe(masked(r.real.stdout));
    }
  });
});
