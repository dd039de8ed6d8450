// Two `fedgate start` processes with writeBack on, in front of the local federation:
// one leads (the Lease names it) and writes ServiceExport conditions and ServiceImports;
// it is killed outright (SIGKILL: no release) and the other takes over within the
// lease's duration. Every write either one makes is counted from the members' own
// watches (a resourceVersion change per write): nothing is written twice, and a change
// made while nobody leads is written by the new leader.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../src/config/load.ts';
import { Fedgate } from '../src/fedgate.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { requireKubeTools } from '../src/localfed/kube-tools.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { CLI, start } from './helpers/cli.ts';
import { run } from './helpers/deploy-real.ts';
import { DiscoveryEnv, FAST_WATCH, LogCapture, launchFederation } from './helpers/discovery-env.ts';
import { freePort } from './helpers/ports.ts';
import { promtoolCheckMetrics } from './helpers/prometheus.ts';
import { sleep, waitFor } from './helpers/wait.ts';
import { WriteLog } from './helpers/write-log.ts';

// alpha (127.224/16) runs shop/web's pods; beta (127.225/16) has only objects made
// here, so nothing of it listens beyond its API server (on a free port).
const ADDRESS_BLOCK = 224;
const SCENARIO = `
federation: { name: galaxy, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }]
  - name: beta
    region: eu-west
    zones: [{ name: eu-west-a, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha], replicasPerZone: 1 }
`;
const LEASE = { duration: '3s', renewDeadline: '2s', retryPeriod: '500ms' };
const EDGES = [
  { region: 'us-east', addresses: ['127.224.255.1'] },
  { region: 'eu-west', addresses: ['127.224.255.2'] },
];

const env = new DiscoveryEnv();
let fed: LocalFederation;
let kubeconfigs: Record<string, string>;
let dir: string;

async function fedgateConfig(
  identity: string,
  adminPort: number,
  writeBack: Record<string, unknown> = { enabled: true },
): Promise<string> {
  const raw = parse(fed.fedgateConfig(kubeconfigs)) as Record<string, unknown>;
  const file = join(dir, `${identity}.yaml`);
  await writeFile(
    file,
    stringify({
      ...raw,
      dns: {
        listen: ['127.0.0.1:0'],
        rrl: { enabled: false },
        addressing: 'proxy',
        proxyAddresses: EDGES,
      },
      http: { listen: ['127.0.0.1:0'] },
      admin: { listen: `127.0.0.1:${adminPort}` },
      health: { active: { enabled: false } },
      watch: FAST_WATCH,
      writeBack: { identity, lease: LEASE, skipServiceImports: ['beta'], ...writeBack },
    }),
  );
  return file;
}

async function metric(adminPort: number, name: string): Promise<number | undefined> {
  const text = await fetch(`http://127.0.0.1:${adminPort}/metrics`)
    .then((r) => r.text())
    .catch(() => '');
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

const condition = (obj: KubeObject | undefined, type: string) =>
  ((obj?.status as { conditions?: Record<string, unknown>[] } | undefined)?.conditions ?? []).find(
    (c) => c.type === type,
  );

beforeAll(async () => {
  dir = await env.dir();
  ({ fed, kubeconfigs } = await launchFederation(SCENARIO, ADDRESS_BLOCK, dir));
  // beta exports shop/web on another port (a port conflict with alpha's older export),
  // and exports shop/ghost, which has no Service there.
  // The Lease's namespace, as deploy/member-rbac makes it in a real member.
  await fed
    .cluster('alpha')
    .apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fedgate-reader' } });
  const beta = fed.cluster('beta');
  await beta.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  await beta.apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { ports: [{ name: 'http', port: 81, targetPort: 8080 }], selector: { app: 'web' } },
  });
  for (const name of ['web', 'ghost']) {
    await beta.apply({
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ServiceExport',
      metadata: { name, namespace: 'shop' },
    });
  }
}, 60_000);

afterAll(async () => {
  await fed?.stop();
  await env.cleanup();
});

describe('one elected replica writes back', () => {
  it('one leads and writes; killed, the other takes over within the lease, and nothing is written twice or lost', async () => {
    const writes = new WriteLog();
    await writes.watch(
      'alpha',
      kubeconfigs.alpha ?? '',
      'serviceexports',
      '/apis/multicluster.x-k8s.io/v1alpha1/serviceexports',
    );
    await writes.watch(
      'beta',
      kubeconfigs.beta ?? '',
      'serviceexports',
      '/apis/multicluster.x-k8s.io/v1alpha1/serviceexports',
    );
    await writes.watch(
      'alpha',
      kubeconfigs.alpha ?? '',
      'serviceimports',
      '/apis/multicluster.x-k8s.io/v1alpha1/serviceimports',
    );
    await writes.watch(
      'beta',
      kubeconfigs.beta ?? '',
      'serviceimports',
      '/apis/multicluster.x-k8s.io/v1alpha1/serviceimports',
    );
    await writes.watch(
      'alpha',
      kubeconfigs.alpha ?? '',
      'leases',
      '/apis/coordination.k8s.io/v1/leases',
    );
    const ports = { one: await freePort(), two: await freePort() };
    const procs = {
      one: start(process.execPath, [
        CLI,
        'start',
        '--config',
        await fedgateConfig('one', ports.one),
      ]),
      two: start(process.execPath, [
        CLI,
        'start',
        '--config',
        await fedgateConfig('two', ports.two),
      ]),
    };
    const alpha = fed.cluster('alpha');
    const beta = fed.cluster('beta');
    const lease = () =>
      alpha.get('coordination.k8s.io/v1', 'Lease', 'fedgate-reader', 'fedgate-writer');
    const holder = async () =>
      String(
        ((await lease())?.spec as { holderIdentity?: string } | undefined)?.holderIdentity ?? '',
      );
    try {
      for (const p of Object.values(procs)) {
        await waitFor(() => p.out().includes('fedgate: ready'), 30_000, 'fedgate to be ready');
      }
      // ---- one leader, the Lease names it, and its gauge says so
      const first = (await waitFor(holder, 15_000, 'a lease holder')) as 'one' | 'two';
      const second = first === 'one' ? 'two' : 'one';
      await waitFor(
        async () => (await metric(ports[first], 'fedgate_writeback_leader')) === 1,
        10_000,
        'the leader gauge',
      );
      expect(await metric(ports[second], 'fedgate_writeback_leader')).toBe(0);
      expect(await metric(ports[first], 'fedgate_writeback_leader_transitions_total')).toBe(1);

      // ---- ServiceExport conditions on every member
      const exportOf = (m: typeof alpha, name: string) =>
        m.get('multicluster.x-k8s.io/v1alpha1', 'ServiceExport', 'shop', name);
      await waitFor(
        async () => condition(await exportOf(beta, 'ghost'), 'Valid'),
        15_000,
        'conditions on shop/ghost',
      );
      // Each member's export is written on its own: wait for both.
      for (const [member, name] of [
        [alpha, 'alpha'],
        [beta, 'beta'],
      ] as const) {
        await waitFor(
          async () => condition(await exportOf(member, 'web'), 'Conflict')?.status === 'True',
          15_000,
          `the Conflict condition on ${name}`,
        );
      }
      const alphaWeb = await exportOf(alpha, 'web');
      const betaWeb = await exportOf(beta, 'web');
      const ghost = await exportOf(beta, 'ghost');
      expect(condition(alphaWeb, 'Valid')).toMatchObject({
        status: 'True',
        reason: 'Valid',
        observedGeneration: 1,
      });
      expect(condition(alphaWeb, 'Ready')).toMatchObject({ status: 'True', reason: 'Exported' });
      for (const obj of [alphaWeb, betaWeb]) {
        expect(condition(obj, 'Conflict')).toMatchObject({
          status: 'True',
          reason: 'PortConflict',
        });
        expect(String(condition(obj, 'Conflict')?.message)).toContain('beta has port http 81/TCP');
      }
      expect(condition(ghost, 'Valid')).toMatchObject({
        status: 'False',
        reason: 'NoService',
        observedGeneration: 1,
      });
      expect(condition(ghost, 'Ready')).toMatchObject({ status: 'False', reason: 'Failed' });
      for (const c of (ghost?.status as { conditions?: Record<string, unknown>[] } | undefined)
        ?.conditions ?? []) {
        expect(typeof c.lastTransitionTime).toBe('string');
      }

      // ---- ServiceImports: alpha gets one with fedgate's us-east edge; beta opted out
      const importOf = (m: typeof alpha, name: string) =>
        m.get('multicluster.x-k8s.io/v1alpha1', 'ServiceImport', 'shop', name);
      const imported = await waitFor(
        () => importOf(alpha, 'web'),
        15_000,
        'the ServiceImport in alpha',
      );
      expect(imported.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('fedgate');
      expect(imported.spec).toEqual({
        type: 'ClusterSetIP',
        ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
        sessionAffinity: 'None',
        ips: ['127.224.255.1'],
      });
      expect(imported.status).toEqual({ clusters: [{ cluster: 'alpha' }, { cluster: 'beta' }] });
      expect(await beta.list('multicluster.x-k8s.io/v1alpha1', 'ServiceImport')).toEqual([]);

      // kubectl shows them.
      const kubectl = requireKubeTools().kubectl;
      const shown = await run(kubectl, [
        '--kubeconfig',
        kubeconfigs.alpha ?? '',
        'get',
        'serviceimports',
        '-n',
        'shop',
      ]);
      expect(shown.stdout).toMatch(/^NAME\s+TYPE\s+IP\s+AGE\n/);
      expect(shown.stdout).toMatch(/web\s+ClusterSetIP\s+\["127\.224\.255\.1"\]/);
      const yaml = await run(kubectl, [
        '--kubeconfig',
        kubeconfigs.beta ?? '',
        'get',
        'serviceexport',
        'ghost',
        '-n',
        'shop',
        '-o',
        'yaml',
      ]);
      expect(yaml.stdout).toContain('reason: NoService');

      // ---- settled: the written state, and how many writes made it
      await sleep(1500);
      const objects = [
        'alpha/serviceexports/shop/web',
        'beta/serviceexports/shop/web',
        'beta/serviceexports/shop/ghost',
        'alpha/serviceimports/shop/web',
      ];
      const settled = Object.fromEntries(objects.map((k) => [k, writes.count(k)]));
      // One status write per ServiceExport; a create and a status write for the import.
      expect(settled).toEqual({
        'alpha/serviceexports/shop/web': 1,
        'beta/serviceexports/shop/web': 1,
        'beta/serviceexports/shop/ghost': 1,
        'alpha/serviceimports/shop/web': 2,
      });

      // ---- the leader is killed outright: no release, its lease must expire
      process.kill(-(procs[first].child.pid ?? 0), 'SIGKILL');
      const killedAt = Date.now();
      // While nobody leads, shop/ghost gets its Service in beta: the next leader must write it.
      await beta.apply({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'ghost', namespace: 'shop' },
        spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }], selector: { app: 'ghost' } },
      });
      // Within the lease's duration (3 s) plus a renewal try, with room for a loaded machine.
      await waitFor(async () => (await holder()) === second, 15_000, `${second} to take the lease`);
      const tookMs = Date.now() - killedAt;
      const taken = (await lease())?.spec as { leaseTransitions: number };
      expect(taken.leaseTransitions).toBe(1);
      await waitFor(
        async () => (await metric(ports[second], 'fedgate_writeback_leader')) === 1,
        10_000,
        'the new leader gauge',
      );
      await waitFor(
        async () => condition(await exportOf(beta, 'ghost'), 'Valid')?.status === 'True',
        15_000,
        'the new leader to write what changed meanwhile',
      );
      // shop/ghost is now a service: alpha gets its ServiceImport (beta exports it).
      // (Created, then its status written: wait for both.)
      await waitFor(
        async () => (await importOf(alpha, 'ghost'))?.status,
        15_000,
        'the ghost import and its status',
      );
      expect((await importOf(alpha, 'ghost'))?.status).toEqual({ clusters: [{ cluster: 'beta' }] });
      await sleep(1500);
      // Nothing the first leader wrote was written again; only what changed was written.
      expect(Object.fromEntries(objects.map((k) => [k, writes.count(k)]))).toEqual({
        ...settled,
        // Valid, Ready and Ready's message (now with ghost's Service) in one status write.
        'beta/serviceexports/shop/ghost': 2,
      });
      expect(writes.count('alpha/serviceimports/shop/ghost')).toBe(2);
      // What the new leader says it wrote: the ghost export's status and its import.
      const text = await fetch(`http://127.0.0.1:${ports[second]}/metrics`).then((r) => r.text());
      const written = text
        .split('\n')
        .filter((l) => l.startsWith('fedgate_writeback_writes_total{'))
        .map((l) => l.replace(/^fedgate_writeback_writes_total/, ''))
        .sort();
      expect(written).toEqual([
        '{cluster="alpha",resource="serviceimports",verb="create"} 1',
        '{cluster="alpha",resource="serviceimports",verb="update_status"} 1',
        '{cluster="beta",resource="serviceexports",verb="update_status"} 1',
      ]);
      console.log(`takeover ${tookMs} ms after SIGKILL (lease duration 3 s)`);
      expect(writes.broken).toEqual([]);
      // The write-back's series pass promtool's lint like the rest.
      const lint = await promtoolCheckMetrics(text);
      expect({ code: lint.code, stdout: lint.stdout, stderr: lint.stderr }).toEqual({
        code: 0,
        stdout: '',
        stderr: '',
      });

      // ---- the last export goes: fedgate's ServiceImport goes with it
      await beta.remove('multicluster.x-k8s.io/v1alpha1', 'ServiceExport', 'shop', 'ghost');
      await waitFor(
        async () => (await importOf(alpha, 'ghost')) === undefined,
        15_000,
        'the ghost import deleted',
      );
    } catch (e) {
      for (const [name, p] of Object.entries(procs)) {
        console.log(
          `---- ${name}\n${p
            .out()
            .split('\n')
            .filter((l) => !l.includes('"level":30') || l.includes('lead'))
            .slice(-40)
            .join('\n')}`,
        );
      }
      throw e;
    } finally {
      await writes.stop();
      for (const p of Object.values(procs)) {
        if (p.child.exitCode === null && p.child.signalCode === null) {
          process.kill(-(p.child.pid ?? 0), 'SIGKILL');
        }
      }
    }
  }, 120_000);

  it('a reload that turns writeBack on starts campaigning, and one that turns it off releases the lease', async () => {
    const adminPort = await freePort();
    const file = await fedgateConfig('three', adminPort, { enabled: false });
    const log = new LogCapture('info');
    const fedgate = await Fedgate.start(loadConfig(file), log.logger);
    const alpha = fed.cluster('alpha');
    const holder = async () =>
      String(
        (
          (await alpha.get('coordination.k8s.io/v1', 'Lease', 'fedgate-reader', 'fedgate-writer'))
            ?.spec as { holderIdentity?: string } | undefined
        )?.holderIdentity ?? '',
      );
    try {
      await fedgate.whenReady();
      expect(fedgate.writeBack).toBeUndefined();
      await fedgateConfig('three', adminPort, { enabled: true });
      expect(await fedgate.reloadFile(file, 'test')).toMatchObject({ ok: true });
      // The lease the first test's replicas left expires; then this one takes it.
      // The Lease says so once written; the replica, once the write has answered.
      await waitFor(
        async () => (await holder()) === 'three' && fedgate.writeBack?.stats().leading === true,
        20_000,
        'the reloaded replica to lead',
      );
      await fedgateConfig('three', adminPort, { enabled: false });
      expect(await fedgate.reloadFile(file, 'test')).toMatchObject({ ok: true });
      await waitFor(async () => (await holder()) === '', 10_000, 'the lease released');
      expect(fedgate.writeBack).toBeUndefined();
    } finally {
      await fedgate.stop();
    }
  }, 60_000);

  it('a member lacking a service’s namespace gets its ServiceImport once the namespace is made, with no failure counted', async () => {
    const beta = fed.cluster('beta');
    const alpha = fed.cluster('alpha');
    // cart/basket is exported from beta only; alpha has no namespace cart.
    await beta.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cart' } });
    await beta.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'basket', namespace: 'cart' },
      spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }], selector: { app: 'basket' } },
    });
    await beta.apply({
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ServiceExport',
      metadata: { name: 'basket', namespace: 'cart' },
    });
    const importOf = (name: string, ns: string) =>
      alpha.get('multicluster.x-k8s.io/v1alpha1', 'ServiceImport', ns, name);
    const log = new LogCapture('debug');
    const fedgate = await Fedgate.start(
      loadConfig(await fedgateConfig('four', await freePort())),
      log.logger,
    );
    try {
      await fedgate.whenReady();
      await waitFor(() => fedgate.writeBack?.stats().leading === true, 20_000, 'four to lead');
      // Its other imports are written; cart/basket's create is refused (no namespace).
      await waitFor(async () => importOf('web', 'shop'), 15_000, 'the shop/web import');
      await waitFor(
        () => log.find(/not there to write/).length > 0,
        15_000,
        'the refused create, logged',
      );
      expect(await importOf('basket', 'cart')).toBeUndefined();
      expect(fedgate.writeBack?.stats().failures).toBe(0);
      // The namespace is made: the import follows on the next try (5 s later at most).
      await alpha.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cart' } });
      const made = await waitFor(async () => importOf('basket', 'cart'), 15_000, 'cart/basket');
      expect((made?.spec as { type?: string } | undefined)?.type).toBe('ClusterSetIP');
      expect(fedgate.writeBack?.stats().failures).toBe(0);
    } finally {
      await fedgate.stop();
    }
  }, 60_000);
});
