// check-config, config-schema and start, run as a user runs them.
import { Resolver } from 'node:dns/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SimCluster } from '../src/localfed/cluster.ts';
import { makeClusterPki } from '../src/localfed/pki.ts';
import { CLI, fedgate, start } from './helpers/cli.ts';
import { waitFor } from './helpers/wait.ts';

let dir: string;
let sim: SimCluster;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-config-cli-'));
  sim = await SimCluster.create({ name: 'alpha', host: '127.0.0.1', port: 0 });
  await sim.start();
  await sim.writeKubeconfig(dir);
  sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  sim.apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { ports: [{ name: 'http', port: 80 }] },
  });
  sim.apply({
    apiVersion: 'multicluster.x-k8s.io/v1alpha1',
    kind: 'ServiceExport',
    metadata: { name: 'web', namespace: 'shop' },
  });
});

afterAll(async () => {
  await sim?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const config = (moreClusters = '', more = '') => `federation: { name: galaxy, domain: example.test }
admin: { listen: "127.0.0.1:0" }
watch: { startupTimeout: 5s }
${more}
clusters:
  - { name: alpha, kubeconfig: alpha.kubeconfig, region: us-east }
${moreClusters}`;
const GOOD = config();

describe('fedgate check-config', () => {
  it('prints the effective configuration with every default', async () => {
    const file = join(dir, 'good.yaml');
    await writeFile(file, GOOD);
    const r = await fedgate(['check-config', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const eff = parse(r.stdout) as Record<string, Record<string, unknown>>;
    expect(eff.federation!.clustersetZone).toBe('clusterset.local');
    expect(eff.dns!.ttl).toBe('5s');
    expect(eff.watch!.startupTimeout).toBe('5s');
    expect((eff.clusters as unknown as { kubeconfig: string }[])[0]!.kubeconfig).toBe(
      join(dir, 'alpha.kubeconfig'),
    );
  });

  it('exits 2 naming the path of the bad field', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      config('  - { name: beta, kubeconfig: missing.kubeconfig }', 'routing: { picker: fastest }'),
    );
    const r = await fedgate(['check-config', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    // Schema problems come first; the file checks run once the shape is right.
    expect(r.stderr).toContain('routing.picker: ');
    await writeFile(file, config('  - { name: beta, kubeconfig: missing.kubeconfig }'));
    const r2 = await fedgate(['check-config', file]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(
      `clusters[1].kubeconfig: file not found: ${join(dir, 'missing.kubeconfig')}`,
    );
  });

  it('exits 2 naming the backend TLS profile and file: a key not of its certificate, a CA that does not parse', async () => {
    const a = await makeClusterPki('a', ['a.example']);
    const b = await makeClusterPki('b', ['b.example']);
    await writeFile(
      join(dir, 'ca.pem'),
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    );
    await writeFile(join(dir, 'client.crt'), a.serverCert);
    await writeFile(join(dir, 'other.key'), b.serverKey);
    const file = join(dir, 'tls.yaml');
    await writeFile(
      file,
      config(
        '',
        'routing: { backendTLS: { mesh: { caFiles: [ca.pem], hostname: web.internal, clientCertificate: { certFile: client.crt, keyFile: other.key } } } }',
      ),
    );
    const r = await fedgate(['check-config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `routing.backendTLS.mesh.caFiles[0]: ${join(dir, 'ca.pem')}: certificate 1 does not parse`,
    );
    expect(r.stderr).toContain(
      `routing.backendTLS.mesh.clientCertificate: the key in ${join(dir, 'other.key')} does not belong to the certificate in ${join(dir, 'client.crt')}`,
    );
  });

  it('exits 2 for a file that does not exist, and for a missing argument', async () => {
    const r = await fedgate(['check-config', join(dir, 'nope.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('file not found');
    expect((await fedgate(['check-config'])).code).toBe(2);
  });
});

describe('fedgate config-schema', () => {
  it('prints a JSON Schema', async () => {
    const r = await fedgate(['config-schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { title: string; required: string[] };
    expect(schema.title).toBe('fedgate configuration');
    expect(schema.required).toEqual(['federation', 'clusters']);
  });
});

describe('fedgate start', () => {
  it('exits 2 on a bad config before starting anything', async () => {
    const file = join(dir, 'bad-start.yaml');
    await writeFile(file, 'federation: { name: galaxy }\n');
    const r = await fedgate(['start', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('federation.domain: required');
  });

  it('syncs, serves /readyz, /catalog and DNS, and stops on SIGTERM', async () => {
    const file = join(dir, 'start.yaml');
    await writeFile(
      file,
      config('', 'dns: { listen: ["127.0.0.1:0"] }\nhttp: { listen: ["127.0.0.1:0"] }'),
    );
    const p = start(process.execPath, [CLI, 'start', '--config', file]);
    try {
      await waitFor(() => /ready, 1 federated service/.test(p.out()), 20_000, 'fedgate ready');
      const admin = /admin (http:\/\/127\.0\.0\.1:\d+)/.exec(p.out())?.[1];
      expect(admin).toBeDefined();
      const ready = await fetch(`${admin}/readyz`);
      expect(ready.status).toBe(200);
      const catalog = (await (await fetch(`${admin}/catalog`)).json()) as {
        services: { key: string }[];
        clusters: Record<string, { state: string }>;
      };
      expect(catalog.services.map((s) => s.key)).toEqual(['shop/web']);
      expect(catalog.clusters.alpha!.state).toBe('synced');
      const metrics = await fetch(`${admin}/metrics`);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const exposition = await metrics.text();
      expect(exposition).toContain('fedgate_cluster_up{cluster="alpha",state="synced"} 1');
      expect(exposition).toMatch(/^fedgate_catalog_version [1-9]/m);
      // DNS is up on the address it printed, and answers for the federation's zones.
      const dns = /DNS 127\.0\.0\.1:(\d+)/.exec(p.out())?.[1];
      expect(dns).toBeDefined();
      const resolver = new Resolver({ timeout: 2000, tries: 1 });
      resolver.setServers([`127.0.0.1:${dns}`]);
      const soa = await resolver.resolveSoa('example.test');
      expect(soa.hostmaster).toBe('hostmaster.example.test');
      await expect(resolver.resolve4('example.com')).rejects.toMatchObject({ code: 'EREFUSED' });
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).toBe(0);
    expect(p.out()).not.toMatch(/"level":50/);
  });
});
