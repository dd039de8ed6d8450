// End to end: fedgate's discovery (watchers per member cluster → catalog) against both
// API servers, the simulator and a real kube-apiserver, over HTTPS through kubeconfigs,
// as fedgate runs in production. Every wait is bounded. Also: discovery-access (401,
// 403, no ServiceExport), discovery-faults (outages, compaction, stopping),
// discovery-localfed (a whole local federation).
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../src/catalog/model.ts';
import { API_KINDS, type MemberCluster } from '../src/localfed/member.ts';
import {
  deploy,
  discoveryEnvs,
  EXPORT_API,
  endpointsOf,
  SHORT_MS,
  SLICE_API,
  waitSnapshot,
} from './helpers/discovery-checks.ts';
import {
  addressesOf,
  type DiscoveryEnv,
  member,
  SnapshotRecorder,
  WARN,
} from './helpers/discovery-env.ts';
import {
  type EndpointSpec,
  namespace,
  node,
  readyEndpoints,
  service,
  serviceExport,
  slice,
} from './helpers/kube-objects.ts';
import { sleep, waitFor } from './helpers/wait.ts';

let env: DiscoveryEnv;
const useEnv = discoveryEnvs((e) => {
  env = e;
});

describe.each(API_KINDS)('discovery on %s', (api) => {
  useEnv(api);

  // ---- 1. export and unexport ----------------------------------------------------------

  describe('exporting', () => {
    it('federates a service exactly while its ServiceExport exists, never an unexported one', async () => {
      const alpha = await env.cluster('alpha');
      await alpha.apply(namespace('shop'));
      await alpha.apply(service('shop', 'web'));
      await alpha.apply(slice('shop', 'web', 'web-a', readyEndpoints(1, 2)));
      await alpha.apply(service('shop', 'internal'));
      await alpha.apply(slice('shop', 'internal', 'internal-a', readyEndpoints(2, 2)));
      // An ExternalName service has no endpoints: exported or not, it is never federated.
      await alpha.apply({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'ext', namespace: 'shop' },
        spec: { type: 'ExternalName', externalName: 'db.example.com' },
      });
      await alpha.apply(serviceExport('shop', 'ext'));
      const d = await env.startSynced(await env.config([{ cluster: alpha, region: 'r1' }]));
      const rec = new SnapshotRecorder(d.catalog);

      expect(d.catalog.current().services.size).toBe(0);
      expect(d.catalog.current().clusters.get('alpha')).toMatchObject({
        state: 'synced',
        exportMode: 'ServiceExport',
      });

      await alpha.apply(serviceExport('shop', 'web'));
      let s = await waitSnapshot(d, (x) => x.services.has('shop/web'), 'web to be federated');
      expect([...s.services.keys()]).toEqual(['shop/web']);
      expect(addressesOf(s, 'shop/web', 'alpha')).toEqual(['127.11.1.1', '127.11.1.2']);
      const exported = (await alpha.get(EXPORT_API, 'ServiceExport', 'shop', 'web'))!;
      expect(member(s, 'shop/web', 'alpha')!.member.exportedAt).toBe(
        Date.parse(exported.metadata.creationTimestamp!),
      );

      await alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 'web');
      s = await waitSnapshot(d, (x) => !x.services.has('shop/web'), 'web to be unexported');
      expect(s.services.size).toBe(0);

      // Exported again, then its Service deleted: an export without a Service federates nothing.
      await alpha.apply(serviceExport('shop', 'web'));
      await waitSnapshot(d, (x) => x.services.has('shop/web'), 'web to be federated again');
      await alpha.remove('v1', 'Service', 'shop', 'web');
      s = await waitSnapshot(d, (x) => !x.services.has('shop/web'), 'web to go with its Service');
      expect(s.services.size).toBe(0);

      // The unexported services never appeared in any snapshot.
      for (const snap of rec.snapshots) {
        expect(snap.services.has('shop/internal')).toBe(false);
        expect(snap.services.has('shop/ext')).toBe(false);
        expect(snap.services.has('default/kubernetes')).toBe(false);
      }
      expect(rec.count).toBeGreaterThanOrEqual(4);
    });
  });

  // ---- 3. endpoint conditions ------------------------------------------------------------

  describe('endpoint conditions', () => {
    it('follow the EndpointSlice, with the API defaults for missing conditions', async () => {
      const alpha = await env.cluster('alpha');
      const eps = (list: EndpointSpec[]) => slice('shop', 'web', 'web-a', list);
      await deploy(alpha, 'shop', 'web', []);
      await alpha.apply(
        eps([
          { address: '127.11.0.1' }, // no conditions at all
          { address: '127.11.0.2', conditions: { ready: false } },
          { address: '127.11.0.3', conditions: { ready: false, serving: true, terminating: true } },
          { address: '127.11.0.4', conditions: { serving: false } },
          { address: '127.11.0.5', conditions: { ready: true, serving: true, terminating: false } },
          { address: '127.11.0.6', conditions: { terminating: true } },
        ]),
      );
      const d = await env.startSynced(await env.config([{ cluster: alpha }]));
      const state = (s: Snapshot) =>
        Object.fromEntries(
          endpointsOf(s, 'shop/web', 'alpha').map((e) => [
            e.address,
            [e.ready, e.serving, e.terminating],
          ]),
        );
      let s = await waitSnapshot(d, (x) => addressesOf(x, 'shop/web', 'alpha').length === 6, 'web');
      expect(state(s)).toEqual({
        '127.11.0.1': [true, true, false],
        '127.11.0.2': [false, false, false],
        '127.11.0.3': [false, true, true],
        '127.11.0.4': [true, false, false],
        '127.11.0.5': [true, true, false],
        '127.11.0.6': [true, true, true],
      });

      await alpha.apply(
        eps([
          { address: '127.11.0.1', conditions: { ready: false } },
          { address: '127.11.0.2', conditions: { ready: true } },
          { address: '127.11.0.3' },
          { address: '127.11.0.4', conditions: { ready: false, serving: true } },
          { address: '127.11.0.5', conditions: { ready: false, serving: true, terminating: true } },
          {
            address: '127.11.0.6',
            conditions: { ready: false, serving: false, terminating: true },
          },
        ]),
      );
      s = await waitSnapshot(
        d,
        (x) => state(x)['127.11.0.6']?.[1] === false,
        'the condition changes to arrive',
      );
      expect(state(s)).toEqual({
        '127.11.0.1': [false, false, false],
        '127.11.0.2': [true, true, false],
        '127.11.0.3': [true, true, false],
        '127.11.0.4': [false, true, false],
        '127.11.0.5': [false, true, true],
        '127.11.0.6': [false, false, true],
      });
    });
  });

  // ---- 4. locality from node labels ------------------------------------------------------

  describe('endpoint locality', () => {
    it('comes from the endpoint zone, else its node labels, else the configured region', async () => {
      const alpha = await env.cluster('alpha');
      const beta = await env.cluster('beta');
      const ZONE = 'topology.kubernetes.io/zone';
      const REGION = 'topology.kubernetes.io/region';
      await alpha.apply(node('n1', { [ZONE]: 'z1', [REGION]: 'r1' }));
      await alpha.apply(node('n2', { [ZONE]: 'z2' }));
      await alpha.apply(node('n3', {}));
      await deploy(alpha, 'shop', 'web', [
        { address: '127.11.0.1', nodeName: 'n1' },
        { address: '127.11.0.2', nodeName: 'n2' },
        { address: '127.11.0.3', nodeName: 'n3' },
        { address: '127.11.0.4' },
        { address: '127.11.0.5', nodeName: 'n1', zone: 'ez' },
        { address: '127.11.0.6', nodeName: 'ghost' },
      ]);
      await beta.apply(node('m1', { [ZONE]: 'bz' }));
      await deploy(beta, 'shop', 'web', [{ address: '127.12.0.1', nodeName: 'm1' }]);
      const d = await env.startSynced(
        await env.config([{ cluster: alpha, region: 'conf' }, { cluster: beta }]),
      );
      const loc = (s: Snapshot, cluster = 'alpha') =>
        Object.fromEntries(
          endpointsOf(s, 'shop/web', cluster).map((e) => [e.address, [e.region, e.zone]]),
        );
      let s = await waitSnapshot(d, (x) => Object.keys(loc(x)).length === 6, 'web endpoints');
      expect(loc(s)).toEqual({
        '127.11.0.1': ['r1', 'z1'],
        '127.11.0.2': ['conf', 'z2'],
        '127.11.0.3': ['conf', undefined],
        '127.11.0.4': ['conf', undefined],
        '127.11.0.5': ['r1', 'ez'],
        '127.11.0.6': ['conf', undefined],
      });
      // No configured region and no region label: no region.
      expect(loc(s, 'beta')).toEqual({ '127.12.0.1': [undefined, 'bz'] });

      // Relabelled nodes move their endpoints; the endpoint's own zone still wins.
      await alpha.apply(node('n1', { [ZONE]: 'z9', [REGION]: 'r9' }));
      await alpha.apply(node('n2', { [ZONE]: 'z2', [REGION]: 'r2' }));
      s = await waitSnapshot(
        d,
        (x) => loc(x)['127.11.0.1']?.[1] === 'z9' && loc(x)['127.11.0.2']?.[0] === 'r2',
        'relabelled nodes',
      );
      expect(loc(s)).toMatchObject({
        '127.11.0.1': ['r9', 'z9'],
        '127.11.0.2': ['r2', 'z2'],
        '127.11.0.5': ['r9', 'ez'],
      });

      // A node that appears after its endpoints, one that loses its labels, one that goes.
      await alpha.apply(node('ghost', { [ZONE]: 'zg' }));
      await alpha.apply(node('n1', {}));
      await alpha.remove('v1', 'Node', undefined, 'n2');
      s = await waitSnapshot(
        d,
        (x) =>
          loc(x)['127.11.0.6']?.[1] === 'zg' &&
          loc(x)['127.11.0.1']?.[1] === undefined &&
          loc(x)['127.11.0.2']?.[1] === undefined,
        'node additions, relabels and deletions',
      );
      expect(loc(s)).toEqual({
        '127.11.0.1': ['conf', undefined],
        '127.11.0.2': ['conf', undefined],
        '127.11.0.3': ['conf', undefined],
        '127.11.0.4': ['conf', undefined],
        '127.11.0.5': ['conf', 'ez'],
        '127.11.0.6': ['conf', 'zg'],
      });
    });
  });

  describe('a quiet cluster', () => {
    it(
      'keeps its four watches open on BOOKMARKs alone: no relist, no snapshot, no warning',
      async () => {
        const alpha = await env.cluster('alpha');
        await deploy(alpha, 'shop', 'web', readyEndpoints(1, 2));
        const d = await env.startSynced(await env.config([{ cluster: alpha }]));
        const rec = new SnapshotRecorder(d.catalog);
        const watcher = d.watchers[0];
        if (!watcher) throw new Error('no watcher for alpha');
        // A write fedgate does not watch moves the revision on.
        await alpha.apply(namespace('elsewhere'));
        // On a real member the first bookmark comes about a minute after a watch opens:
        // one on each watch shows the watches outlived that, not cut by the watchdog.
        await waitFor(
          () => [...watcher.watchStats().values()].every((s) => s.events.BOOKMARK >= 1),
          api === 'real' ? 150_000 : SHORT_MS,
          'a BOOKMARK on each of the four watches',
          200,
        );
        expect(watcher.watchStats().size).toBe(4);
        for (const s of watcher.watchStats().values()) {
          expect(s.relists).toEqual({ expired: 0, error: 0 });
        }
        expect(rec.count).toBe(0);
        expect(d.catalog.current().clusters.get('alpha')?.state).toBe('synced');
        expect(env.log.atLeast(WARN)).toEqual([]);
      },
      api === 'real' ? 180_000 : 60_000,
    );
  });

  // ---- 9. no-op updates ----------------------------------------------------------------------

  describe('updates that change nothing fedgate reads', () => {
    it('publish no snapshot', async () => {
      const alpha = await env.cluster('alpha');
      const ZONE = 'topology.kubernetes.io/zone';
      await alpha.apply(node('n1', { [ZONE]: 'z1' }));
      await alpha.apply(node('n2', { [ZONE]: 'z2' }));
      const onNode = (third: number, nodeName: string, count = 2): EndpointSpec[] =>
        readyEndpoints(third, count).map((e) => ({ ...e, nodeName }));
      // web's endpoints carry their own zone: their node's zone is not theirs.
      const webEndpoints = onNode(1, 'n1').map((e) => ({ ...e, zone: 'wz' }));
      await deploy(alpha, 'shop', 'web', webEndpoints);
      await deploy(alpha, 'shop', 'api', onNode(2, 'n2'));
      const d = await env.startSynced(await env.config([{ cluster: alpha }]));
      const rec = new SnapshotRecorder(d.catalog);

      /**
       * Runs the no-ops, then a real change to api on the same watch (so it is
       * read after them), and checks that exactly one snapshot came, for api.
       */
      const round = async (
        what: string,
        noops: () => Promise<unknown>,
        change: () => Promise<unknown>,
        done: Check,
      ) => {
        const count = rec.count;
        const prev = d.catalog.current();
        const version = prev.version;
        await noops();
        await change();
        const s = await waitSnapshot(d, done, `${what}: the real change`);
        expect(rec.count, `${what}: snapshots published`).toBe(count + 1);
        expect(s.version).toBe(version + 1);
        expect(s.services.get('shop/web'), `${what}: web unchanged`).toBe(
          prev.services.get('shop/web'),
        );
        expect(s.services.get('shop/api')).not.toBe(prev.services.get('shop/api'));
      };
      type Check = (s: Snapshot) => unknown;

      await round(
        'Service',
        async () => {
          await alpha.apply(service('shop', 'web')); // identical
          await alpha.apply(service('shop', 'web', { labels: { tier: 'front' } }));
          await alpha.apply(
            service('shop', 'web', {
              labels: { tier: 'front' },
              annotations: { 'example.com/owner': 'team-a' },
            }),
          );
          const web = (await alpha.get('v1', 'Service', 'shop', 'web'))!;
          await alpha.apply({ ...web, status: { conditions: [] } });
        },
        () =>
          alpha.apply(
            service('shop', 'api', {
              ports: [
                { name: 'http', port: 80 },
                { name: 'grpc', port: 9090 },
              ],
            }),
          ),
        (s) => s.services.get('shop/api')!.ports.length === 2,
      );

      await round(
        'EndpointSlice',
        async () => {
          await alpha.apply(slice('shop', 'web', 'web-a', webEndpoints)); // identical
          await alpha.apply(
            slice('shop', 'web', 'web-a', webEndpoints, { labels: { extra: 'x' } }),
          );
          const web = (await alpha.get(SLICE_API, 'EndpointSlice', 'shop', 'web-a'))!;
          await alpha.apply({
            ...web,
            metadata: { ...web.metadata, annotations: { 'example.com/note': 'n' } },
            endpoints: (web.endpoints as object[]).map((e, i) => ({
              ...e,
              targetRef: { kind: 'Pod', namespace: 'shop', name: `web-${i}` },
            })),
          });
        },
        () => alpha.apply(slice('shop', 'api', 'api-a', onNode(2, 'n2', 3))),
        (s) => addressesOf(s, 'shop/api', 'alpha').length === 3,
      );

      await round(
        'Node',
        async () => {
          await alpha.apply(node('n1', { [ZONE]: 'z1' })); // identical
          await alpha.apply(node('n1', { [ZONE]: 'z1', 'kubernetes.io/arch': 'arm64' }));
          await alpha.apply({
            ...(await alpha.get('v1', 'Node', undefined, 'n1'))!,
            status: { conditions: [{ type: 'Ready', status: 'False' }] },
          });
        },
        () => alpha.apply(node('n2', { [ZONE]: 'z7' })),
        (s) => endpointsOf(s, 'shop/api', 'alpha').every((e) => e.zone === 'z7'),
      );

      // A zone change on web's node reaches the catalog, but changes none of web's
      // endpoints (their own zone wins): web is merged again and found equal.
      await round(
        'Node zone under endpoints with their own',
        () => alpha.apply(node('n1', { [ZONE]: 'z5' })),
        () => alpha.apply(node('n2', { [ZONE]: 'z8' })),
        (s) => endpointsOf(s, 'shop/api', 'alpha').every((e) => e.zone === 'z8'),
      );
      expect(endpointsOf(d.catalog.current(), 'shop/web', 'alpha').map((e) => e.zone)).toEqual([
        'wz',
        'wz',
      ]);

      await round(
        'ServiceExport',
        async () => {
          await alpha.apply(serviceExport('shop', 'web')); // identical
          await alpha.apply({
            ...serviceExport('shop', 'web'),
            metadata: { name: 'web', namespace: 'shop', labels: { seen: 'yes' } },
          });
          await alpha.apply({
            ...(await alpha.get(EXPORT_API, 'ServiceExport', 'shop', 'web'))!,
            // A whole metav1.Condition: the CRD's schema requires each field.
            status: {
              conditions: [
                {
                  type: 'Valid',
                  status: 'True',
                  reason: 'Exported',
                  message: 'exported',
                  lastTransitionTime: '2026-01-01T00:00:00Z',
                },
              ],
            },
          });
        },
        () => alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 'api'),
        (s) => !s.services.has('shop/api'),
      );
    });
  });

  // ---- 11. one service from two clusters -----------------------------------------------------

  describe('merging', () => {
    it('unions ports and clusters, and settles a type conflict by the oldest export', async () => {
      const alpha = await env.cluster('alpha');
      const beta = await env.cluster('beta');
      for (const c of [alpha, beta]) await c.apply(namespace('shop'));
      await alpha.apply(
        service('shop', 'web', {
          headless: true,
          ports: [
            { name: 'http', port: 80 },
            { name: 'admin', port: 8081 },
          ],
        }),
      );
      await alpha.apply(slice('shop', 'web', 'web-a', readyEndpoints(1, 2)));
      await beta.apply(
        service('shop', 'web', {
          ports: [
            { name: 'http', port: 80 },
            { name: 'metrics', port: 9090 },
            { name: 'admin', port: 8082 },
          ],
        }),
      );
      await beta.apply(slice('shop', 'web', 'web-a', readyEndpoints(2, 3)));
      // beta exported first: it decides the type. The API server stamps creation
      // times to the second, so the second export waits for the next second.
      await beta.apply(serviceExport('shop', 'web'));
      await nextSecond();
      await alpha.apply(serviceExport('shop', 'web'));
      const d = await env.startSynced(
        await env.config([
          { cluster: alpha, region: 'r1' },
          { cluster: beta, region: 'r2', weight: 3 },
        ]),
      );
      let s = d.catalog.current();
      let web = s.services.get('shop/web')!;
      expect(web.clusters.map((c) => [c.cluster, c.weight, c.exportedAt])).toEqual([
        ['alpha', 1, await exportedAt(alpha, 'shop', 'web')],
        ['beta', 3, await exportedAt(beta, 'shop', 'web')],
      ]);
      expect(addressesOf(s, 'shop/web', 'alpha')).toEqual(['127.11.1.1', '127.11.1.2']);
      expect(addressesOf(s, 'shop/web', 'beta')).toEqual([
        '127.11.2.1',
        '127.11.2.2',
        '127.11.2.3',
      ]);
      expect(web.type).toBe('ClusterSetIP');
      const portsOf = (w: typeof web) =>
        w.ports.map((p) => `${p.name}:${p.port}`).sort((a, b) => a.localeCompare(b));
      // The union by name; admin differs and the older export's number stands.
      expect(portsOf(web)).toEqual(['admin:8082', 'http:80', 'metrics:9090']);
      expect(web.conflicts.map((c) => [c.field, c.clusters])).toEqual([
        ['type', ['alpha']],
        ['ports', ['alpha']],
      ]);
      expect(web.conflicts[0]!.reason).toContain('beta');

      // beta exports anew: now alpha's export is the older one and wins the type and the port.
      await beta.remove(EXPORT_API, 'ServiceExport', 'shop', 'web');
      await waitSnapshot(
        d,
        (x) => x.services.get('shop/web')?.clusters.length === 1,
        'beta to leave',
      );
      await nextSecond();
      await beta.apply(serviceExport('shop', 'web'));
      s = await waitSnapshot(
        d,
        (x) =>
          x.services.get('shop/web')?.type === 'Headless' &&
          x.services.get('shop/web')?.clusters.length === 2,
        'alpha to win as the oldest export',
      );
      web = s.services.get('shop/web')!;
      expect(portsOf(web)).toEqual(['admin:8081', 'http:80', 'metrics:9090']);
      expect(web.conflicts.map((c) => [c.field, c.clusters])).toEqual([
        ['type', ['beta']],
        ['ports', ['beta']],
      ]);

      // Agreement ends the conflicts (clusterIP is immutable: beta's Service is
      // replaced); unexporting one cluster leaves the other alone.
      await beta.remove('v1', 'Service', 'shop', 'web');
      await beta.apply(
        service('shop', 'web', {
          headless: true,
          ports: [
            { name: 'http', port: 80 },
            { name: 'admin', port: 8081 },
          ],
        }),
      );
      s = await waitSnapshot(
        d,
        (x) =>
          x.services.get('shop/web')?.conflicts.length === 0 &&
          x.services.get('shop/web')?.clusters.length === 2,
        'the conflicts to clear',
      );
      expect(portsOf(s.services.get('shop/web')!)).toEqual(['admin:8081', 'http:80']);
      await alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 'web');
      s = await waitSnapshot(
        d,
        (x) => x.services.get('shop/web')?.clusters.length === 1,
        'alpha to leave',
      );
      expect(s.services.get('shop/web')!.clusters[0]!.cluster).toBe('beta');
    });
  });
});

/** Waits until the wall clock enters the next second. */
async function nextSecond(): Promise<void> {
  await sleep(1000 - (Date.now() % 1000) + 20);
}

/** When the API server says the service's ServiceExport was created (ms). */
async function exportedAt(c: MemberCluster, ns: string, name: string): Promise<number> {
  const e = await c.get(EXPORT_API, 'ServiceExport', ns, name);
  const created = e?.metadata.creationTimestamp;
  if (created === undefined) throw new Error(`${c.name}: no ServiceExport ${ns}/${name}`);
  return Date.parse(created);
}
