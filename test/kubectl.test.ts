// kubectl, built from the same Kubernetes release as the real kube-apiserver, against
// both API servers (the simulator and a real one): discovery, server-side printing,
// create, get -o json, watch, delete, label (merge patch), apply (strategic merge
// patch) and strict field validation.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { API_KINDS, type MemberCluster } from '../src/localfed/member.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { requireKubeTools } from './helpers/kube-control-plane.ts';
import { startMember } from './helpers/members.ts';
import { waitFor } from './helpers/wait.ts';

/** The release tools/kube builds kube-apiserver and kubectl from. */
const KUBE_VERSION = 'v1.37.2';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

/** The kubectl built beside kube-apiserver (scripts/ensure-kube-tools.sh); fails if missing. */
function kubectlBinary(): string {
  return requireKubeTools().kubectl;
}

function run(args: string[], timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      kubectlBinary(),
      args,
      { timeout: timeoutMs, env: { ...process.env, KUBECONFIG: '' } },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new Error(`${kubectlBinary()} is missing: ${err.message}`));
          return;
        }
        if (err?.killed) {
          reject(new Error(`kubectl ${args.join(' ')} timed out after ${timeoutMs} ms: ${stderr}`));
          return;
        }
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const OBJECTS = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata:
  name: web
  namespace: shop
`;

/** Every endpoint localfed runs listens on loopback, which kube-apiserver refuses in a slice. */
const SLICE = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
  - addresses: ["127.10.0.1"]
    conditions: { ready: true }
    zone: zone-a
  - addresses: ["127.10.0.2"]
    conditions: { ready: false }
ports:
  - name: http
    port: 8080
`;

describe.each(API_KINDS)('kubectl on %s', (api) => {
  let c: MemberCluster;
  let dir: string;
  let kubeconfigPath: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-kubectl-'));
    c = await startMember(api, 'kubectl');
    kubeconfigPath = await c.writeKubeconfig(dir);
  });

  afterAll(async () => {
    await c?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** kubectl against the member, with its own kubeconfig and discovery cache. */
  function kubectl(...args: string[]): Promise<Run> {
    return run(['--kubeconfig', kubeconfigPath, '--cache-dir', join(dir, 'cache'), ...args]);
  }

  async function manifest(name: string, text: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  // Without the built kubectl every test here fails saying so (never skips).
  it("is the kubectl of the real API server's release", async () => {
    const version = await run(['version', '--client', '-o', 'json']);
    expect(version.code, `kubectl version --client failed: ${version.stderr}`).toBe(0);
    expect(JSON.parse(version.stdout).clientVersion.gitVersion).toBe(KUBE_VERSION);
  });

  it('get svc -A prints the kubernetes Service in the server-side table', async () => {
    const r = await kubectl('get', 'svc', '-A');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^NAMESPACE\s+NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/,
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^default\s+kubernetes\s+ClusterIP\s+127\.255\.0\.1\s+<none>\s+443\/TCP\s+\d+s$/,
      ),
    );
  });

  it('create -f creates a Namespace and a ServiceExport', async () => {
    const r = await kubectl('create', '-f', await manifest('objects.yaml', OBJECTS));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'namespace/shop created',
      'serviceexport.multicluster.x-k8s.io/web created',
    ]);
    expect(
      await c.get('multicluster.x-k8s.io/v1alpha1', 'ServiceExport', 'shop', 'web'),
    ).toBeDefined();

    const again = await kubectl('create', '-f', join(dir, 'objects.yaml'));
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('AlreadyExists');
  });

  it('create -f of an EndpointSlice with loopback addresses: refused by kube-apiserver, taken by the simulator', async () => {
    const r = await kubectl('create', '-f', await manifest('slice.yaml', SLICE));
    if (api === 'real') {
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toEqual([
        'The EndpointSlice "web-abc" is invalid: ',
        '* endpoints[0].addresses[0]: Invalid value: "127.10.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
        '* endpoints[1].addresses[0]: Invalid value: "127.10.0.2": may not be in the loopback range (127.0.0.0/8, ::1/128)',
      ]);
      // A real member stores such a slice past the API (src/localfed/loopback-slices.ts).
      await c.apply(parse(SLICE) as KubeObject);
    } else {
      // The simulator does not check endpoint addresses: it takes what localfed runs on.
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('endpointslice.discovery.k8s.io/web-abc created');
    }
    expect(await c.get('discovery.k8s.io/v1', 'EndpointSlice', 'shop', 'web-abc')).toBeDefined();
  });

  it('get endpointslices -o json returns them as the API stores them', async () => {
    const r = await kubectl('get', 'endpointslices', '-n', 'shop', '-o', 'json');
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as {
      kind: string;
      items: { metadata: { name: string; uid: string }; endpoints: unknown[]; ports: unknown[] }[];
    };
    expect(list.kind).toBe('List');
    expect(list.items.map((i) => i.metadata.name)).toEqual(['web-abc']);
    const [s] = list.items;
    expect(s!.metadata.uid).toBeTruthy();
    expect(s!.endpoints).toEqual([
      { addresses: ['127.10.0.1'], conditions: { ready: true }, zone: 'zone-a' },
      { addresses: ['127.10.0.2'], conditions: { ready: false } },
    ]);
    expect(s!.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);

    const exports = await kubectl('get', 'serviceexports', '-n', 'shop', '-o', 'json');
    expect(
      JSON.parse(exports.stdout).items.map((i: { metadata: { name: string } }) => i.metadata.name),
    ).toEqual(['web']);
    // The table shows the columns the server defines.
    const table = await kubectl('get', 'endpointslices', '-n', 'shop');
    expect(table.stdout).toMatch(/^NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE\n/);
    expect(table.stdout).toMatch(/web-abc\s+IPv4\s+8080\s+127\.10\.0\.1,127\.10\.0\.2\s+\d+s/);
  });

  it('get -w prints a line when something changes', async () => {
    const child = spawn(
      kubectlBinary(),
      [
        '--kubeconfig',
        kubeconfigPath,
        '--cache-dir',
        join(dir, 'cache'),
        'get',
        'endpointslices',
        '-n',
        'shop',
        '-w',
      ],
      { env: { ...process.env, KUBECONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(child);
    let out = '';
    let err = '';
    let spawnError: Error | undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e.code === 'ENOENT' ? new Error(`${kubectlBinary()} is missing`) : e;
    });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    // Whole lines only: a line kubectl is still writing may have come in part.
    const lines = () =>
      out
        .slice(0, out.lastIndexOf('\n') + 1)
        .split('\n')
        .filter((l) => l.trim() !== '');
    await waitFor(
      () => spawnError ?? lines().some((l) => l.startsWith('web-abc')),
      15_000,
      'the initial watch output',
    ).catch((e: Error) => {
      throw new Error(`${e.message} (kubectl stderr: ${err})`);
    });
    if (spawnError) throw spawnError;
    const before = lines().length;

    await c.apply({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-def', namespace: 'shop' },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.10.9.9'] }],
      ports: [{ port: 9090 }],
    });
    await waitFor(() => lines().some((l) => l.startsWith('web-def')), 10_000, 'the new slice line');
    expect(lines().length).toBe(before + 1);
    expect(lines().at(-1)).toMatch(/^web-def\s+IPv4\s+9090\s+127\.10\.9\.9\s+\d+s$/);
    expect(child.exitCode).toBeNull();
    child.kill('SIGKILL');
    await c.remove('discovery.k8s.io/v1', 'EndpointSlice', 'shop', 'web-def');
  });

  it('label patches an object (JSON merge patch)', async () => {
    const r = await kubectl('label', 'endpointslice', 'web-abc', '-n', 'shop', 'team=edge');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('endpointslice.discovery.k8s.io/web-abc labeled');
    expect(
      (await c.get('discovery.k8s.io/v1', 'EndpointSlice', 'shop', 'web-abc'))?.metadata.labels,
    ).toEqual({ 'kubernetes.io/service-name': 'web', team: 'edge' });
  });

  it('apply creates, then patches (strategic for built-ins, merge for the CRD), then is unchanged', async () => {
    const v1 = `apiVersion: v1
kind: Service
metadata: { name: applied, namespace: shop, labels: { v: "1" } }
spec:
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata: { name: applied, namespace: shop }
`;
    const first = await kubectl('apply', '-f', await manifest('apply-1.yaml', v1));
    expect(first.stderr).toBe('');
    expect(first.stdout).toContain('service/applied created');
    expect(first.stdout).toContain('serviceexport.multicluster.x-k8s.io/applied created');
    const applied = await c.get('v1', 'Service', 'shop', 'applied');
    const clusterIP = (applied?.spec as { clusterIP?: string } | undefined)?.clusterIP;
    expect(clusterIP).toMatch(/^127\./);
    const v2 = v1
      .replace('labels: { v: "1" }', 'labels: { v: "2" }')
      .replace(
        'ports: [{ name: http, port: 80, targetPort: 8080 }]',
        'ports: [{ name: http, port: 80, targetPort: 9090 }, { name: admin, port: 9000 }]',
      )
      .replace(
        'metadata: { name: applied, namespace: shop }\n',
        'metadata: { name: applied, namespace: shop, labels: { team: edge } }\n',
      );
    const second = await kubectl('apply', '-f', await manifest('apply-2.yaml', v2));
    expect(second.stderr).toBe('');
    expect(second.stdout).toContain('service/applied configured');
    expect(second.stdout).toContain('serviceexport.multicluster.x-k8s.io/applied configured');
    const svc = (await c.get('v1', 'Service', 'shop', 'applied'))!;
    expect(svc.metadata.labels).toEqual({ v: '2' });
    expect((svc.spec as { clusterIP: string }).clusterIP).toBe(clusterIP);
    expect((svc.spec as { ports: unknown[] }).ports).toEqual([
      { name: 'http', port: 80, targetPort: 9090, protocol: 'TCP' },
      { name: 'admin', port: 9000, targetPort: 9000, protocol: 'TCP' },
    ]);
    expect(
      (await c.get('multicluster.x-k8s.io/v1alpha1', 'ServiceExport', 'shop', 'applied'))?.metadata
        .labels,
    ).toEqual({ team: 'edge' });
    const third = await kubectl('apply', '-f', await manifest('apply-3.yaml', v2));
    expect(third.stdout).toContain('service/applied unchanged');
    expect(third.stdout).toContain('serviceexport.multicluster.x-k8s.io/applied unchanged');
  });

  it('delete says deleted, and get then answers NotFound', async () => {
    const del = await kubectl('delete', 'serviceexport', 'web', '-n', 'shop');
    expect(del.code).toBe(0);
    expect(del.stdout.trim()).toBe(
      'serviceexport.multicluster.x-k8s.io "web" deleted from shop namespace',
    );
    expect(
      await c.get('multicluster.x-k8s.io/v1alpha1', 'ServiceExport', 'shop', 'web'),
    ).toBeUndefined();

    const get = await kubectl('get', 'serviceexport', 'web', '-n', 'shop');
    expect(get.code).toBe(1);
    expect(get.stdout).toBe('');
    expect(get.stderr.trim()).toBe(
      'Error from server (NotFound): serviceexports.multicluster.x-k8s.io "web" not found',
    );
  });

  it('an unknown field in the YAML is a strict decoding error, and nothing is created', async () => {
    const path = await manifest(
      'bad.yaml',
      `apiVersion: v1
kind: Service
metadata:
  name: bad
  namespace: shop
spec:
  ports:
    - port: 80
  bogus: 1
`,
    );
    const r = await kubectl('create', '-f', path);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('strict decoding error');
    expect(r.stderr).toContain('unknown field "spec.bogus"');
    expect(await c.get('v1', 'Service', 'shop', 'bad')).toBeUndefined();
  });

  it('a wrong token is Unauthorized', async () => {
    const yaml = c.kubeconfig().replace(c.token, 'wrong-token');
    const path = await manifest('wrong.kubeconfig', yaml);
    const r = await run([
      '--kubeconfig',
      path,
      '--cache-dir',
      join(dir, 'cache-wrong'),
      'get',
      'svc',
      '-A',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: You must be logged in to the server');
    expect(r.stderr).toContain('provide credentials');
  });
});
