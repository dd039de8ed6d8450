// fedgate's discovery when a member's API fails (refuse, hang, drop), when its watch
// history is compacted, and when fedgate stops: against the simulator and a real
// kube-apiserver (the member's relay carries the faults). Every wait is bounded.
import { setImmediate } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../src/catalog/model.ts';
import { API_KINDS, type FaultMode } from '../src/localfed/member.ts';
import { SimMember } from '../src/localfed/sim-member.ts';
import {
  deploy,
  discoveryEnvs,
  EXPORT_API,
  endpointsOf,
  RECOVERY_MS,
  SHORT_MS,
  SLICE_API,
  undeploy,
  waitSnapshot,
} from './helpers/discovery-checks.ts';
import {
  addressesOf,
  type DiscoveryEnv,
  member,
  realOf,
  SnapshotRecorder,
  simOf,
  WARN,
  watchFor,
} from './helpers/discovery-env.ts';
import { node, readyEndpoints, slice } from './helpers/kube-objects.ts';
import { sleep, waitFor } from './helpers/wait.ts';

/**
 * The watchdog's limit on a real member for the compaction test: short enough that quiet
 * watches are restarted routinely (bookmarks are ~60 s apart), longer than the relay holds
 * a watch while kube-apiserver restarts (about 4 s here), which would otherwise count as a
 * watch that never opened: an outage.
 */
const REAL_SILENCE = '20s';

let env: DiscoveryEnv;
const useEnv = discoveryEnvs((e) => {
  env = e;
});

describe.each(API_KINDS)('discovery on %s', (api) => {
  useEnv(api);

  // ---- 5. API failures: fail static, then catch up -----------------------------------------

  describe.each(['refuse', 'hang', 'drop'] as const)('an API that goes %s', (mode: FaultMode) => {
    it('leaves the cluster stale with its endpoints kept, then catches up on everything', async () => {
      const alpha = await env.cluster('alpha');
      const beta = await env.cluster('beta');
      await deploy(alpha, 'shop', 'web', readyEndpoints(1, 3));
      await deploy(alpha, 'shop', 'gone', readyEndpoints(2, 1));
      await deploy(beta, 'shop', 'web', readyEndpoints(3, 2));
      await deploy(beta, 'shop', 'solo', readyEndpoints(4, 1));
      const d = await env.startSynced(
        await env.config(
          [
            { cluster: alpha, region: 'r1' },
            { cluster: beta, region: 'r2' },
          ],
          watchFor(api, mode === 'hang'),
        ),
      );
      const s0 = d.catalog.current();
      const synced0 = s0.clusters.get('alpha')!;
      expect(synced0.state).toBe('synced');
      expect(synced0.lastSyncAt).toBeTypeOf('number');
      const rec = new SnapshotRecorder(d.catalog);

      await alpha.setFault(mode);
      const s1 = await waitSnapshot(
        d,
        (x) => x.clusters.get('alpha')!.state === 'stale',
        `alpha to go stale (${mode})`,
        RECOVERY_MS,
      );
      const status = s1.clusters.get('alpha')!;
      expect(status.error?.code).toBe('CLUSTER_UNREACHABLE');
      expect(status.error?.message).toContain('cluster alpha');
      expect(status.syncedOnce).toBe(true);
      expect(status.lastSyncAt).toBeGreaterThanOrEqual(synced0.lastSyncAt!);
      expect(status.lastSyncAt).toBeLessThanOrEqual(Date.now());
      // Fail static: the endpoints stay, marked stale.
      const web = member(s1, 'shop/web', 'alpha')!.member;
      expect(web.sync.state).toBe('stale');
      expect(web.sync.lastSyncAt).toBe(status.lastSyncAt);
      expect(addressesOf(s1, 'shop/web', 'alpha')).toEqual(addressesOf(s0, 'shop/web', 'alpha'));
      expect(member(s1, 'shop/gone', 'alpha')?.member.sync.state).toBe('stale');
      // The other cluster is untouched; a service only there is the very same object.
      expect(s1.clusters.get('beta')!.state).toBe('synced');
      expect(member(s1, 'shop/web', 'beta')!.member.sync.state).toBe('synced');
      expect(s1.services.get('shop/solo')).toBe(s0.services.get('shop/solo'));
      expect(env.log.find(/member API failing/, 'alpha').length).toBeGreaterThanOrEqual(1);

      // Changes while the API is down, straight to the server behind it.
      await alpha.apply(
        slice('shop', 'web', 'web-a', [
          ...readyEndpoints(1, 4),
          { address: '127.11.1.5', conditions: { ready: false } },
        ]),
      );
      await undeploy(alpha, 'shop', 'gone');
      await deploy(alpha, 'shop', 'fresh', readyEndpoints(9, 2));
      const afterChanges = new SnapshotRecorder(d.catalog);

      await alpha.setFault('up');
      const s2 = await waitSnapshot(
        d,
        (x) =>
          x.clusters.get('alpha')!.state === 'synced' &&
          addressesOf(x, 'shop/web', 'alpha').length === 5 &&
          !x.services.has('shop/gone') &&
          x.services.has('shop/fresh'),
        `alpha to catch up after ${mode}`,
        RECOVERY_MS,
      );
      expect(s2.clusters.get('alpha')!.error).toBeUndefined();
      expect(endpointsOf(s2, 'shop/web', 'alpha')).toEqual([
        ...readyEndpoints(1, 4).map((e) => ({
          address: e.address,
          ready: true,
          serving: true,
          terminating: false,
          zone: undefined,
          region: 'r1',
        })),
        {
          address: '127.11.1.5',
          ready: false,
          serving: false,
          terminating: false,
          zone: undefined,
          region: 'r1',
        },
      ]);
      expect(addressesOf(s2, 'shop/fresh', 'alpha')).toEqual(['127.11.9.1', '127.11.9.2']);
      expect([...s2.services.keys()].sort()).toEqual(['shop/fresh', 'shop/solo', 'shop/web']);
      for (const svc of s2.services.values()) {
        for (const m of svc.clusters) expect(m.sync.state).toBe('synced');
      }
      expect(addressesOf(s2, 'shop/web', 'beta')).toEqual(addressesOf(s0, 'shop/web', 'beta'));
      expect(env.log.find(/member API back in sync/, 'alpha').length).toBeGreaterThanOrEqual(1);
      // Never, on the way, did web lose its alpha endpoints.
      for (const x of rec.snapshots) {
        expect(addressesOf(x, 'shop/web', 'alpha').length).toBeGreaterThanOrEqual(3);
      }
      // Once the changes were made, alpha counts as synced only with all of them.
      // (Not checked for 'drop': its lists keep working while every watch is cut,
      // so what "synced" means for a moment there depends on which cut came first.)
      for (const x of mode === 'drop' ? [] : afterChanges.snapshots) {
        if (x.clusters.get('alpha')!.state !== 'synced') continue;
        expect(addressesOf(x, 'shop/web', 'alpha')).toEqual(addressesOf(s2, 'shop/web', 'alpha'));
        expect([...x.services.keys()].sort()).toEqual(['shop/fresh', 'shop/solo', 'shop/web']);
      }
    });
  });

  // ---- 6. compaction: 410, relist ------------------------------------------------------------

  describe.each(['refuse', 'drop'] as const)(
    'changes and compaction during an outage (%s)',
    (mode) => {
      it('end in a relist: nothing lost, nothing duplicated, and watching resumes', async () => {
        const alpha = await env.cluster('alpha');
        for (let i = 0; i < 5; i++) await deploy(alpha, 'shop', `s${i}`, readyEndpoints(i, 2));
        // Small pages, so the relists page through continue tokens.
        const d = await env.startSynced(
          await env.config([{ cluster: alpha }], { ...env.watch, pageSize: 2 }),
        );
        expect([...d.catalog.current().services.keys()].sort()).toEqual([
          'shop/s0',
          'shop/s1',
          'shop/s2',
          'shop/s3',
          'shop/s4',
        ]);

        await alpha.setFault(mode);
        await waitSnapshot(d, (x) => x.clusters.get('alpha')!.state === 'stale', 'alpha stale');
        // Changes, then the history is dropped: whatever watch fedgate opens next
        // starts from a revision that is gone.
        await alpha.apply(slice('shop', 's0', 's0-a', readyEndpoints(0, 3)));
        await alpha.apply(slice('shop', 's0', 's0-b', readyEndpoints(0, 1, 4)));
        await undeploy(alpha, 'shop', 's1');
        await alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 's2');
        await alpha.remove(SLICE_API, 'EndpointSlice', 'shop', 's3-a');
        await alpha.apply(slice('shop', 's3', 's3-b', readyEndpoints(3, 1, 7)));
        for (let i = 1; i <= 9; i++)
          await alpha.apply(slice('shop', 's4', 's4-a', readyEndpoints(4, 1, i)));
        await deploy(alpha, 'shop', 's5', readyEndpoints(5, 2));
        await alpha.compact();

        const rec = new SnapshotRecorder(d.catalog);
        await alpha.setFault('up');
        const expected = {
          'shop/s0': ['127.11.0.1', '127.11.0.2', '127.11.0.3', '127.11.0.4'],
          'shop/s3': ['127.11.3.7'],
          'shop/s4': ['127.11.4.9'],
          'shop/s5': ['127.11.5.1', '127.11.5.2'],
        };
        const actual = (x: Snapshot) =>
          Object.fromEntries(
            [...x.services.keys()].sort().map((k) => [k, addressesOf(x, k, 'alpha')]),
          );
        const s = await waitSnapshot(
          d,
          (x) =>
            x.clusters.get('alpha')!.state === 'synced' &&
            JSON.stringify(actual(x)) === JSON.stringify(expected),
          'alpha to relist after compaction',
          RECOVERY_MS,
        );
        expect(actual(s)).toEqual(expected);
        // Synced means the catalog holds what the cluster says: never before the
        // relist is done. (With 'drop' lists work throughout, so fedgate may be in
        // sync for a moment before the API is "up" again; only refuse is checked.)
        if (mode === 'refuse') {
          for (const x of rec.snapshots) {
            if (x.clusters.get('alpha')!.state === 'synced') expect(actual(x)).toEqual(expected);
          }
        }
        // Exact counts: no endpoint listed twice, none from a deleted slice.
        for (const svc of s.services.values()) {
          const eps = svc.clusters[0]!.endpoints;
          expect(new Set(eps.map((e) => e.addresses[0])).size).toBe(eps.length);
        }

        // The watch goes on from the relist: live changes arrive.
        await alpha.apply(slice('shop', 's5', 's5-a', readyEndpoints(5, 3)));
        await alpha.remove(SLICE_API, 'EndpointSlice', 'shop', 's0-b');
        await waitSnapshot(
          d,
          (x) =>
            addressesOf(x, 'shop/s5', 'alpha').length === 3 &&
            addressesOf(x, 'shop/s0', 'alpha').length === 3,
          'live changes after the relist',
        );
        expect(env.log.atLeast(50)).toEqual([]);
      });
    },
  );

  // ---- 12. stopping ------------------------------------------------------------------------------

  describe('stopping', () => {
    it.each(['hang', 'refuse'] as const)(
      'stops promptly and quietly while the API is down (%s)',
      async (mode) => {
        const alpha = await env.cluster('alpha');
        await deploy(alpha, 'shop', 'web', readyEndpoints(1, 2));
        const d = await env.startSynced(
          await env.config([{ cluster: alpha }], watchFor(api, mode === 'hang')),
        );
        await alpha.setFault(mode);
        await waitSnapshot(
          d,
          (x) => x.clusters.get('alpha')!.state === 'stale',
          'alpha stale',
          RECOVERY_MS,
        );
        const logged = env.log.entries.length;
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          d.stop().then(() => 'stopped'),
          new Promise((resolve) => {
            timer = setTimeout(() => resolve('still running'), 10_000);
          }),
        ]);
        clearTimeout(timer);
        expect(outcome).toBe('stopped');
        const rec = new SnapshotRecorder(d.catalog);
        await alpha.setFault('up');
        // Only the simulator can count its open watches; on both, nothing more is heard.
        if (alpha instanceof SimMember) {
          const sim = alpha.sim;
          await waitFor(() => sim.api.openWatches === 0, SHORT_MS, 'no watches');
        } else {
          await sleep(1000);
        }
        expect(env.log.atLeast(WARN, logged)).toEqual([]);
        expect(rec.count).toBe(0);
      },
    );
  });
});

// A routine 410: a quiet watch restarted by the watchdog resumes from the last
// resourceVersion it saw, meets the compaction, gets 410 and relists at once; the cluster
// is never stale. On a real member compact() restarts kube-apiserver behind the relay's
// drain (src/localfed/README.md, Compaction): open watches end cleanly, the watches that
// follow are held until it is ready again, then resume and meet the 410 the same way.
// (client-node meets a real 410 in test/informer.test.ts.)
describe.each(API_KINDS)('a watch resumed past a compaction (%s)', (api) => {
  useEnv(api);
  it('gets 410 and relists, exactly and without calling the cluster stale', async () => {
    // Bookmarks far apart (a real kube-apiserver's are ~60 s apart anyway): the watchdog
    // restarts quiet watches routinely, each resuming from the last resourceVersion it
    // saw (not an outage).
    const alpha = await env.cluster('alpha', api === 'sim' ? { bookmarkIntervalMs: 600_000 } : {});
    const ZONE = 'topology.kubernetes.io/zone';
    await alpha.apply(node('n1', { [ZONE]: 'z1' }));
    const onN1 = (third: number, count: number) =>
      readyEndpoints(third, count).map((e) => ({ ...e, nodeName: 'n1' }));
    for (let i = 0; i < 3; i++) await deploy(alpha, 'shop', `s${i}`, onN1(i, 2));
    // The simulator counts the 410s its store gives; on a real member they are counted on
    // fedgate's side only (relists.expired below).
    let storeExpired = 0;
    if (api === 'sim') {
      const store = simOf(alpha).store;
      const changesSince = store.changesSince.bind(store);
      store.changesSince = (rev: number) => {
        try {
          return changesSince(rev);
        } catch (e) {
          storeExpired++;
          throw e;
        }
      };
    }
    const watches = (): { open: number; started: number } =>
      api === 'sim'
        ? { open: simOf(alpha).api.openWatches, started: Number.NaN }
        : realOf(alpha).relayWatches;
    const d = await env.startSynced(
      await env.config([{ cluster: alpha }], {
        ...env.watch,
        silenceLimit: api === 'sim' ? '1s' : REAL_SILENCE,
        pageSize: 2,
      }),
    );
    const rec = new SnapshotRecorder(d.catalog);
    const relists = () => {
      const stats = [...d.watchers[0]!.watchStats().values()];
      return {
        expired: stats.reduce((n, s) => n + s.relists.expired, 0),
        error: stats.reduce((n, s) => n + s.relists.error, 0),
      };
    };
    await waitFor(() => watches().open === 4, SHORT_MS, 'four open watches');
    if (api === 'real') {
      // The watchdog's routine restarts hold on kube-apiserver too: every watch restarted
      // at least once, each resuming where it was, no relist.
      const started = watches().started;
      await waitFor(
        () => watches().started >= started + 4,
        RECOVERY_MS,
        'every watch restarted by the watchdog',
      );
      expect(relists()).toEqual({ expired: 0, error: 0 });
    } else {
      // Best effort: strike while some watch is between restarts, so it misses the
      // changes outright. Every watch resumes past the compaction anyway.
      const deadline = Date.now() + 5000;
      while (watches().open === 4 && Date.now() < deadline) await setImmediate();
    }
    await alpha.apply(slice('shop', 's0', 's0-a', onN1(0, 3)));
    await alpha.remove(EXPORT_API, 'ServiceExport', 'shop', 's1');
    await deploy(alpha, 'shop', 's3', onN1(3, 1));
    await alpha.apply(node('n1', { [ZONE]: 'z2' }));
    await alpha.compact();

    const expected = {
      'shop/s0': ['127.11.0.1', '127.11.0.2', '127.11.0.3'],
      'shop/s2': ['127.11.2.1', '127.11.2.2'],
      'shop/s3': ['127.11.3.1'],
    };
    const actual = (x: Snapshot) =>
      Object.fromEntries([...x.services.keys()].sort().map((k) => [k, addressesOf(x, k, 'alpha')]));
    const s = await waitSnapshot(
      d,
      (x) =>
        JSON.stringify(actual(x)) === JSON.stringify(expected) &&
        endpointsOf(x, 'shop/s0', 'alpha').every((e) => e.zone === 'z2'),
      'the changes to arrive',
      RECOVERY_MS,
    );
    for (const svc of s.services.values()) {
      expect(svc.clusters[0]!.endpoints.every((e) => e.locality.zone === 'z2')).toBe(true);
    }
    // Every kind's watch resumes from before the compaction: four 410s, four relists.
    await waitFor(() => relists().expired >= 4, SHORT_MS, 'every watch to meet the compaction');
    if (api === 'sim') expect(storeExpired).toBeGreaterThanOrEqual(4);
    await waitFor(() => watches().open === 4, SHORT_MS, 'watching again');
    await alpha.apply(slice('shop', 's2', 's2-a', onN1(2, 1)));
    const after = await waitSnapshot(
      d,
      (x) => addressesOf(x, 'shop/s2', 'alpha').length === 1,
      'a live change after the relists',
    );
    expect(actual(after)).toEqual({ ...expected, 'shop/s2': ['127.11.2.1'] });
    // A 410 is routine: the cluster never went stale, nothing was logged as failing.
    for (const x of rec.snapshots) expect(x.clusters.get('alpha')!.state).toBe('synced');
    expect(env.log.atLeast(WARN)).toEqual([]);
    // The metrics' counters saw it the same way: relists for expiry, none for errors.
    expect(relists().expired).toBeGreaterThanOrEqual(4);
    expect(relists().error).toBe(0);
    expect(d.watchers[0]!.watchStats().get('endpointslices')!.events.MODIFIED).toBeGreaterThan(0);
  });
});

// Counting open watches needs the simulator: kube-apiserver does not say which are fedgate's.
describe('stopping (simulator, counting open watches)', () => {
  useEnv('sim');

  it('closes every watch, publishes nothing more and logs no error', async () => {
    const alpha = await env.cluster('alpha');
    const sim = simOf(alpha);
    await deploy(alpha, 'shop', 'web', readyEndpoints(1, 2));
    const config = await env.config([{ cluster: alpha }]);
    const d = await env.startSynced(config);
    await waitFor(() => sim.api.openWatches === 4, SHORT_MS, 'four open watches');
    const rec = new SnapshotRecorder(d.catalog);
    const final = d.catalog.current();
    const logged = env.log.entries.length;

    await d.stop();
    await waitFor(() => sim.api.openWatches === 0, SHORT_MS, 'the watches to close');

    // A second fedgate sees the next changes: by then the stopped one would have too.
    const witness = await env.startSynced(config);
    await waitFor(() => sim.api.openWatches === 4, SHORT_MS, "the witness's watches");
    await alpha.apply(slice('shop', 'web', 'web-a', readyEndpoints(1, 5)));
    await deploy(alpha, 'shop', 'api', readyEndpoints(2, 1));
    await waitSnapshot(
      witness,
      (x) => addressesOf(x, 'shop/web', 'alpha').length === 5 && x.services.has('shop/api'),
      'the witness to see the changes',
    );
    expect(rec.count).toBe(0);
    expect(d.catalog.current()).toBe(final);
    expect(sim.api.openWatches).toBe(4);
    await witness.stop();
    await waitFor(() => sim.api.openWatches === 0, SHORT_MS, "the witness's watches to close");
    expect(env.log.atLeast(WARN, logged)).toEqual([]);
  });
});
