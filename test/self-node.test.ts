// Replicas of one configuration file, on nodes in different zones, each find their own
// zone from their Node (`self.node: ${NODE_NAME}`, the member's API) and keep that
// zone's traffic: two `fedgate start` processes in front of the local federation, the
// same requests through each, answered by the backends of each one's zone (the
// backends' JSON names their pod and zone). FEDGATE_ZONE wins over the Node; a Node
// that does not exist, or NODE_NAME unset, stops the start with a clear error; and a
// Node relabelled under a running fedgate (in this process) moves its traffic.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../src/config/load.ts';
import { Fedgate } from '../src/fedgate.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { CLI, start } from './helpers/cli.ts';
import { DiscoveryEnv, FAST_WATCH, LogCapture, launchFederation } from './helpers/discovery-env.ts';
import { freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

// alpha is 127.239/16, beta 127.240/16: the block is this test's own.
const ADDRESS_BLOCK = 239;
const SCENARIO = `
federation: { name: galaxy, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }, { name: us-east-b, nodes: 1 }]
  - name: beta
    region: eu-west
    zones: [{ name: eu-west-a, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha, beta], replicasPerZone: 2 }
`;
const WEB = 'web.shop.galaxy.svc.example.test';
const REQUESTS = 20;

const env = new DiscoveryEnv();
let fed: LocalFederation;
let file: string;
const running: Array<ReturnType<typeof start>> = [];

beforeAll(async () => {
  const dir = await env.dir();
  const launched = await launchFederation(SCENARIO, ADDRESS_BLOCK, dir);
  fed = launched.fed;
  const raw = parse(fed.fedgateConfig(launched.kubeconfigs)) as Record<string, unknown>;
  file = join(dir, 'fedgate.yaml');
  // One file for every replica, as one ConfigMap is: only the environment differs.
  await writeFile(
    file,
    stringify({
      ...raw,
      // The config's own keys are the last resort: the Node's labels win over them.
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the reference fedgate expands
      self: { node: '${NODE_NAME}', cluster: 'alpha', region: 'eu-west' },
      dns: { listen: ['127.0.0.1:0'] },
      http: { listen: ['127.0.0.1:0'] },
      health: { active: { enabled: false } },
      watch: FAST_WATCH,
    }),
  );
}, 60_000);

afterAll(async () => {
  for (const p of running) {
    if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await p.exited;
  }
  await fed?.stop();
  await env.cleanup();
});

/** A `fedgate start` of the shared file with `vars` in its environment, once ready. */
async function replica(vars: Record<string, string>, workers = 1) {
  const admin = await freePort();
  const adminFile = join(await env.dir(), `admin-${admin}.yaml`);
  const shared = parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(adminFile, stringify({ ...shared, admin: { listen: `127.0.0.1:${admin}` } }));
  const p = start(
    process.execPath,
    [CLI, 'start', '--workers', String(workers), '--config', adminFile],
    vars,
  );
  running.push(p);
  await waitFor(() => p.out().includes('fedgate: ready'), 30_000, 'fedgate to be ready');
  const http = /HTTP (http:\/\/127\.0\.0\.1:\d+)/.exec(p.out())?.[1];
  if (!http) throw new Error(`no HTTP address in: ${p.out()}`);
  return { http, admin: `http://127.0.0.1:${admin}`, proc: p };
}

/** The zones whose backends answered `n` requests through `proxy`. */
async function zonesAnswering(proxy: string, n: number): Promise<Map<string, number>> {
  const zones = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    // undici's request sends the Host it is given (fetch would not).
    // A connection each (reset), so worker processes share the requests.
    const res = await request(`${proxy}/`, { headers: { host: WEB }, reset: true });
    expect(res.statusCode).toBe(200);
    const body = (await res.body.json()) as { zone?: string; cluster?: string };
    const key = `${body.cluster}/${body.zone}`;
    zones.set(key, (zones.get(key) ?? 0) + 1);
  }
  return zones;
}

async function explainSelf(admin: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${admin}/debug/explain?host=${WEB}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe('self.node: each replica routes from its own Node’s zone', () => {
  it('two replicas of one file, on nodes in us-east-a and us-east-b, each keep their zone’s traffic', async () => {
    const a = await replica({ NODE_NAME: 'alpha-us-east-a-1' });
    const b = await replica({ NODE_NAME: 'alpha-us-east-b-1' });
    expect([...(await zonesAnswering(a.http, REQUESTS))]).toEqual([['alpha/us-east-a', REQUESTS]]);
    expect([...(await zonesAnswering(b.http, REQUESTS))]).toEqual([['alpha/us-east-b', REQUESTS]]);
    // Where self came from: the Node's labels, not the config's eu-west.
    const explained = await explainSelf(a.admin);
    expect(explained.self).toEqual({ region: 'us-east', zone: 'us-east-a' });
    expect(explained.selfFrom).toMatchObject({
      region: 'node',
      zone: 'node',
      node: 'alpha/alpha-us-east-a-1',
    });
    expect(a.proc.out()).toContain(
      'self: us-east/us-east-a (region from node alpha/alpha-us-east-a-1',
    );
  }, 90_000);

  it('FEDGATE_ZONE wins over the Node: the replica on us-east-a serves from us-east-b, in its worker processes', async () => {
    // With worker processes: they serve from the locality the primary resolved.
    const c = await replica({ NODE_NAME: 'alpha-us-east-a-1', FEDGATE_ZONE: 'us-east-b' }, 2);
    expect([...(await zonesAnswering(c.http, REQUESTS))]).toEqual([['alpha/us-east-b', REQUESTS]]);
    const explained = await explainSelf(c.admin);
    expect(explained.self).toEqual({ region: 'us-east', zone: 'us-east-b' });
    expect(explained.selfFrom).toMatchObject({ region: 'node', zone: 'env' });
  }, 60_000);

  it('a Node the member does not have stops the start (SELF_NODE_UNAVAILABLE: exit 1) naming the Node and its cluster', async () => {
    const p = start(process.execPath, [CLI, 'start', '--workers', '1', '--config', file], {
      NODE_NAME: 'alpha-nowhere-9',
    });
    running.push(p);
    expect(await p.exited).toBe(1);
    expect(p.out()).toContain('Node "alpha-nowhere-9" in cluster alpha: no such Node');
  }, 30_000);

  it('NODE_NAME unset is a configuration error naming the variable (exit 2)', async () => {
    const p = start(process.execPath, [CLI, 'start', '--workers', '1', '--config', file], {
      NODE_NAME: '',
    });
    running.push(p);
    expect(await p.exited).toBe(2);
    expect(p.out()).toContain('self.node: environment variable NODE_NAME is not set');
  }, 30_000);

  // Last: it relabels a Node of the shared federation.
  it('a relabelled Node moves the running replica, as a reload would', async () => {
    const env = { NODE_NAME: 'alpha-us-east-a-1' };
    const logs = new LogCapture('info');
    const admin = await freePort();
    const config = {
      ...loadConfig(file, env),
      admin: { listen: { host: '127.0.0.1', port: admin } },
    };
    const g = await Fedgate.start(config, logs.logger, { env });
    try {
      await g.whenReady();
      expect(g.config.self).toMatchObject({ region: 'us-east', zone: 'us-east-a' });
      const before = g.addresses().http[0] ?? '';
      expect([...(await zonesAnswering(before, REQUESTS))]).toEqual([
        ['alpha/us-east-a', REQUESTS],
      ]);
      const alpha = fed.cluster('alpha');
      const node = await alpha.get('v1', 'Node', undefined, 'alpha-us-east-a-1');
      if (!node) throw new Error('no Node alpha-us-east-a-1');
      const labels = {
        ...(node.metadata.labels ?? {}),
        'topology.kubernetes.io/zone': 'us-east-b',
      };
      await alpha.apply({ ...node, metadata: { ...node.metadata, labels } });
      await waitFor(() => g.config.self.zone === 'us-east-b', 15_000, 'self to follow the Node');
      expect(g.discovery.router.self).toMatchObject({ region: 'us-east', zone: 'us-east-b' });
      expect(g.selfFrom?.from.zone).toBe('node');
      expect(logs.find(/^configuration reloaded/).at(-1)).toMatchObject({
        trigger: 'node labels',
        settings: ['self.zone'],
      });
      const explained = await explainSelf(`http://127.0.0.1:${admin}`);
      expect(explained.self).toEqual({ region: 'us-east', zone: 'us-east-b' });
      // And the proxy routes from there.
      const proxy = g.addresses().http[0] ?? '';
      expect([...(await zonesAnswering(proxy, REQUESTS))]).toEqual([['alpha/us-east-b', REQUESTS]]);
    } finally {
      await g.stop();
    }
  }, 60_000);
});
