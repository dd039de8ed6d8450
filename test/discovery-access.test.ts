// What a member's API lets fedgate's discovery see: a token it does not know (401), one
// it knows without RBAC (403, on a real server), and a cluster that does not serve
// ServiceExport until its CRD is installed. Against both API servers where both can.
import { describe, expect, it } from 'vitest';
import { API_KINDS } from '../src/localfed/member.ts';
import {
  deploy,
  discoveryEnvs,
  RECOVERY_MS,
  serveServiceExport,
  waitSnapshot,
} from './helpers/discovery-checks.ts';
import { addressesOf, type DiscoveryEnv, member, WARN } from './helpers/discovery-env.ts';
import {
  namespace,
  readyEndpoints,
  service,
  serviceExport,
  slice,
} from './helpers/kube-objects.ts';
import { grantRead, READER_USER, readerToken, removeReader } from './helpers/rbac.ts';

let env: DiscoveryEnv;
const useEnv = discoveryEnvs((e) => {
  env = e;
});

describe.each(API_KINDS)('discovery on %s', (api) => {
  useEnv(api);

  // ---- 7. wrong credentials ---------------------------------------------------------------

  describe('wrong credentials', () => {
    it('report CLUSTER_UNAUTHORIZED naming the cluster, and readiness times out without it', async () => {
      const good = await env.cluster('alpha');
      const bad = await env.cluster('beta');
      await deploy(good, 'shop', 'web', readyEndpoints(1, 2));
      await deploy(bad, 'shop', 'web', readyEndpoints(2, 2));
      await env.breakToken(bad, 'not-the-right-token');
      const config = await env.config([{ cluster: good }, { cluster: bad }], {
        ...env.watch,
        startupTimeout: '3s',
      });
      const d = env.start(config);
      const readiness = await d.catalog.whenReady(config.watch.startupTimeout);
      expect(readiness).toEqual({ ready: false, missing: ['beta'], timedOut: true });

      const s = await waitSnapshot(
        d,
        (x) => x.clusters.get('beta')!.error !== undefined && x.clusters.get('alpha')!.syncedOnce,
        'the bad cluster to report its error',
      );
      const status = s.clusters.get('beta')!;
      expect(status.state).toBe('syncing');
      expect(status.syncedOnce).toBe(false);
      expect(status.error?.code).toBe('CLUSTER_UNAUTHORIZED');
      expect(status.error?.message).toMatch(/^cluster beta: /);
      expect(status.error?.message).toContain('401');
      expect(s.clusters.get('alpha')!.state).toBe('synced');
      // What the good cluster exports is served; nothing from the bad one.
      expect(s.services.get('shop/web')!.clusters.map((c) => c.cluster)).toEqual(['alpha']);
      expect(d.catalog.readiness()).toEqual({ ready: false, missing: ['beta'], timedOut: false });
      // An operator at the default level sees why, once, not once per retry.
      const warned = env.log
        .atLeast(WARN)
        .filter((e) => e.cluster === 'beta' && e.code === 'CLUSTER_UNAUTHORIZED');
      expect(warned).toHaveLength(1);
    });
  });

  // ---- 8. clusters without ServiceExport ---------------------------------------------------

  describe('a cluster without the ServiceExport resource', () => {
    it('federates annotated services, warns once, and the annotation works everywhere', async () => {
      // Its own cluster: the CRD gets installed in it below.
      const nocrd = await env.cluster('nocrd', { serviceExportCRD: false });
      const crd = await env.cluster('beta');
      await nocrd.apply(namespace('shop'));
      await nocrd.apply(service('shop', 'web', { annotations: { 'fedgate.io/federate': 'true' } }));
      await nocrd.apply(slice('shop', 'web', 'web-a', readyEndpoints(1, 2)));
      await nocrd.apply(service('shop', 'plain'));
      await nocrd.apply(slice('shop', 'plain', 'plain-a', readyEndpoints(2, 1)));
      await nocrd.apply(
        service('shop', 'off', { annotations: { 'fedgate.io/federate': 'false' } }),
      );
      await deploy(crd, 'shop', 'web', readyEndpoints(3, 1));
      await crd.apply(service('shop', 'anno', { annotations: { 'fedgate.io/federate': 'true' } }));
      await crd.apply(slice('shop', 'anno', 'anno-a', readyEndpoints(4, 1)));
      await crd.apply(service('shop', 'plain'));

      // Look for ServiceExport again often, so the check repeats many times here.
      const d = await env.startSynced(await env.config([{ cluster: nocrd }, { cluster: crd }]), {
        absentRecheckMs: 100,
      });
      let s = d.catalog.current();
      expect(s.clusters.get('nocrd')!.exportMode).toBe('annotation');
      expect(s.clusters.get('beta')!.exportMode).toBe('ServiceExport');
      expect([...s.services.keys()].sort()).toEqual(['shop/anno', 'shop/web']);
      expect(s.services.get('shop/web')!.clusters.map((c) => c.cluster)).toEqual(['beta', 'nocrd']);
      expect(addressesOf(s, 'shop/web', 'nocrd')).toEqual(['127.11.1.1', '127.11.1.2']);
      expect(addressesOf(s, 'shop/anno', 'beta')).toEqual(['127.11.4.1']);
      // Opted in by annotation: exported since the Service was created.
      const svc = (await nocrd.get('v1', 'Service', 'shop', 'web'))!;
      expect(member(s, 'shop/web', 'nocrd')!.member.exportedAt).toBe(
        Date.parse(svc.metadata.creationTimestamp!),
      );

      const warned = () => env.log.find(/does not serve ServiceExport/);
      expect(warned().map((e) => [e.cluster, e.level])).toEqual([['nocrd', WARN]]);

      // A reconnect, and many rechecks later: still the one warning.
      await nocrd.setFault('refuse');
      await waitSnapshot(d, (x) => x.clusters.get('nocrd')!.state === 'stale', 'nocrd stale');
      await nocrd.setFault('up');
      s = await waitSnapshot(
        d,
        (x) => x.clusters.get('nocrd')!.state === 'synced',
        'nocrd back in sync',
      );
      expect(s.clusters.get('nocrd')!.exportMode).toBe('annotation');
      expect(member(s, 'shop/web', 'nocrd')).toBeDefined();
      expect(warned()).toHaveLength(1);

      // The annotation is the export: removing it unexports, adding it exports.
      await nocrd.apply(service('shop', 'web'));
      await waitSnapshot(d, (x) => !member(x, 'shop/web', 'nocrd'), 'web unexported in nocrd');
      await nocrd.apply(
        service('shop', 'plain', { annotations: { 'fedgate.io/federate': 'true' } }),
      );
      s = await waitSnapshot(
        d,
        (x) => x.services.has('shop/plain'),
        'plain exported by annotation',
      );
      expect(s.services.get('shop/plain')!.clusters.map((c) => c.cluster)).toEqual(['nocrd']);

      // The CRD gets installed: ServiceExport is read there from now on.
      await serveServiceExport(nocrd);
      await nocrd.apply(serviceExport('shop', 'web'));
      s = await waitSnapshot(
        d,
        (x) =>
          x.clusters.get('nocrd')!.exportMode === 'ServiceExport' &&
          !!member(x, 'shop/web', 'nocrd'),
        'ServiceExport to be read in nocrd',
      );
      expect(member(s, 'shop/plain', 'nocrd')).toBeDefined();
      expect(env.log.find(/ServiceExport is now served/, 'nocrd')).toHaveLength(1);
      expect(warned()).toHaveLength(1);
    });
  });
});

// The simulator knows one token and authorizes everything it accepts: a token the server
// knows but no RBAC rule names exists only on a real server.
describe('discovery on real: a token without RBAC', () => {
  useEnv('real');

  it("reports CLUSTER_FORBIDDEN with the server's reason, once, and syncs when granted", async () => {
    const alpha = await env.cluster('alpha');
    try {
      await deploy(alpha, 'shop', 'web', readyEndpoints(1, 2));
      await env.breakToken(alpha, await readerToken(alpha));
      const config = await env.config([{ cluster: alpha }], { ...env.watch, startupTimeout: '3s' });
      const d = env.start(config);
      const readiness = await d.catalog.whenReady(config.watch.startupTimeout);
      expect(readiness).toEqual({ ready: false, missing: ['alpha'], timedOut: true });
      const s = await waitSnapshot(
        d,
        (x) => x.clusters.get('alpha')?.error !== undefined,
        'alpha to report its error',
      );
      const status = s.clusters.get('alpha');
      expect(status?.state).toBe('syncing');
      expect(status?.error?.code).toBe('CLUSTER_FORBIDDEN');
      // fedgate passes on the reason kube-apiserver gives, naming the user and the verb.
      expect(status?.error?.message).toMatch(
        new RegExp(
          `^cluster alpha: not allowed to list /.+ \\(403 Forbidden: \\S+ is forbidden: User "${READER_USER}" cannot list resource "\\S+" in API group "\\S*" at the cluster scope\\); apply deploy/member-rbac`,
        ),
      );
      expect(s.services.size).toBe(0);
      const warned = () =>
        env.log
          .atLeast(WARN)
          .filter((e) => e.cluster === 'alpha' && e.code === 'CLUSTER_FORBIDDEN');
      expect(warned()).toHaveLength(1);

      // Granted what deploy/member-rbac grants, the next retry lists: no restart needed.
      await grantRead(alpha);
      const synced = await waitSnapshot(
        d,
        (x) => x.clusters.get('alpha')?.state === 'synced' && x.services.has('shop/web'),
        'alpha to sync once granted',
        RECOVERY_MS,
      );
      expect(addressesOf(synced, 'shop/web', 'alpha')).toEqual(['127.11.1.1', '127.11.1.2']);
      expect(synced.clusters.get('alpha')?.error).toBeUndefined();
      expect(warned()).toHaveLength(1);
    } finally {
      await removeReader(alpha);
    }
  });
});
