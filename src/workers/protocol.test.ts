import { deserialize, serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { clusterStatus } from '../../test/fixtures/catalog.ts';
import { endpoints, service } from '../../test/fixtures/services.ts';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { HealthStore } from '../health/store.ts';
import { Router, type RouterOptions, type TierShift } from '../routing/router.ts';
import type { Locality } from '../routing/types.ts';
import { CatalogMirror } from './mirror.ts';
import { applyDelta, snapshotDelta } from './protocol.ts';

const EAST_A = { region: 'us-east', zone: 'us-east-a' };
const EAST_B = { region: 'us-east', zone: 'us-east-b' };
const WEST = { region: 'eu-west', zone: 'eu-west-a' };

function web(key = 'shop/web'): FederatedService {
  return service(
    [
      { cluster: 'alpha', endpoints: [...endpoints(1, 2, EAST_A), ...endpoints(2, 2, EAST_B)] },
      { cluster: 'gamma', endpoints: endpoints(3, 2, WEST) },
    ],
    key,
  );
}

function snapshot(version: number, services: FederatedService[]): Snapshot {
  return {
    version,
    createdAt: version * 1000,
    services: new Map(services.map((s) => [s.key, s])),
    clusters: new Map([['alpha', clusterStatus('alpha')]]),
  };
}

/** What crosses the IPC channel with `serialization: 'advanced'`: a V8 structured clone. */
function overIpc<T>(value: T): T {
  return deserialize(serialize(value)) as T;
}

describe('snapshot deltas', () => {
  it('carry only the services that changed, and rebuild snapshots that keep the rest as they were', () => {
    const a = web('shop/a');
    const b = web('shop/b');
    const c = web('shop/c');
    const s1 = snapshot(1, [a, b]);
    const s2: Snapshot = {
      ...snapshot(2, []),
      services: new Map([
        ['shop/a', a],
        ['shop/c', c],
      ]),
    };

    const full = snapshotDelta(undefined, s1);
    expect(full.base).toBeUndefined();
    expect(full.changed.map((s) => s.key)).toEqual(['shop/a', 'shop/b']);
    const delta = snapshotDelta(s1, s2);
    expect(delta).toMatchObject({ base: 1, version: 2, removed: ['shop/b'] });
    expect(delta.changed.map((s) => s.key)).toEqual(['shop/c']);

    // The worker's side: whole first, then the delta, each through a structured clone.
    const w1 = applyDelta(undefined, overIpc(full))!;
    expect(w1.version).toBe(1);
    expect(w1.services.get('shop/a')).toEqual(a);
    expect(w1.clusters.get('alpha')).toEqual(clusterStatus('alpha'));
    const w2 = applyDelta(w1, overIpc(delta))!;
    expect([...w2.services.keys()].sort()).toEqual(['shop/a', 'shop/c']);
    // Unchanged: the very object the worker had (its plan and answer caches hold).
    expect(w2.services.get('shop/a')).toBe(w1.services.get('shop/a'));
    expect(w2.services.get('shop/c')).toEqual(c);
  });

  it('keep the services map itself when only cluster states changed', () => {
    const s1 = snapshot(1, [web()]);
    const s2: Snapshot = { ...s1, version: 2, clusters: new Map() };
    const w1 = applyDelta(undefined, snapshotDelta(undefined, s1))!;
    const w2 = applyDelta(w1, snapshotDelta(s1, s2))!;
    expect(w2.services).toBe(w1.services);
    expect(w2.clusters.size).toBe(0);
  });

  it('are refused when not against the snapshot held (one was missed)', () => {
    const s1 = snapshot(1, [web()]);
    const s2 = snapshot(2, [web()]);
    const s3 = snapshot(3, [web()]);
    const w1 = applyDelta(undefined, snapshotDelta(undefined, s1))!;
    expect(applyDelta(w1, snapshotDelta(s2, s3))).toBeUndefined();
    expect(applyDelta(undefined, snapshotDelta(s1, s2))).toBeUndefined();
  });
});

describe('CatalogMirror', () => {
  it('publishes each snapshot to subscribers in order, and says when it needs the whole one', () => {
    const mirror = new CatalogMirror();
    const seen: number[] = [];
    mirror.subscribe((s) => seen.push(s.version));
    const s1 = snapshot(1, [web()]);
    const s2 = snapshot(2, [web()]);
    expect(mirror.apply(snapshotDelta(undefined, s1))).toBe(true);
    expect(mirror.apply(snapshotDelta(s1, s2))).toBe(true);
    expect(mirror.apply(snapshotDelta(s1, s2))).toBe(false);
    expect(seen).toEqual([1, 2]);
    expect(mirror.current().version).toBe(2);
  });
});

describe('HealthStore mirrors', () => {
  it("take the primary's entries whole, versions included, and tell listeners what changed", () => {
    const primary = new HealthStore();
    const worker = new HealthStore();
    const moved: string[] = [];
    primary.watchVersions((svc) => moved.push(svc));
    const heard: string[] = [];
    worker.subscribe((_svc, id, h) => heard.push(`${id}=${h.check}`));

    primary.setCheck('shop/web', 'alpha/127.11.0.0', 'unhealthy', 'HTTP 503');
    primary.setEjection('shop/web', 'alpha/127.11.0.1', 9_000, 'consecutive-5xx');
    expect(moved).toEqual(['shop/web', 'shop/web']);
    worker.mirror(overIpc(primary.exportService('shop/web')!));
    expect(worker.serviceVersion('shop/web')).toBe(primary.serviceVersion('shop/web'));
    expect(worker.endpoints('shop/web')).toEqual(primary.endpoints('shop/web'));
    expect(heard.sort()).toEqual(['alpha/127.11.0.0=unhealthy', 'alpha/127.11.0.1=unknown']);

    // Forgetting bumps the version too (retain tells no listener, but the watch hears it).
    primary.retain('shop/web', new Set(['alpha/127.11.0.1']));
    expect(moved.at(-1)).toBe('shop/web');
    heard.length = 0;
    worker.mirror(primary.exportService('shop/web')!);
    expect(worker.endpoint('shop/web', 'alpha/127.11.0.0')).toBeUndefined();
    expect(worker.endpoints('shop/web')?.size).toBe(1);
    expect(heard).toEqual(['alpha/127.11.0.0=unknown']);
    // The same version again changes nothing.
    worker.mirror(primary.exportService('shop/web')!);
    expect(heard).toHaveLength(1);
    expect([...primary.services()]).toEqual(['shop/web']);
    expect(primary.exportService('shop/none')).toBeUndefined();
  });
});

describe('failovers with worker processes', () => {
  const OPTS: RouterOptions = {
    overprovisioning: 1.4,
    panicThreshold: 0.5,
    failoverOrder: {},
    localities: [],
    self: EAST_A,
  };

  it('are noted once, by the primary, however many workers route through the shift', () => {
    // The primary: its health store is the truth, its router notes shifts.
    const health = new HealthStore();
    const shifts: TierShift[] = [];
    const primary = new Router(OPTS, health, (s) => shifts.push(s));
    let svc = web();
    const planUsed = (key: string, locality: Locality | undefined) => {
      if (key === svc.key) primary.plan(svc, locality);
    };
    // Two workers: mirrors of the health, their own routers, telling the primary what they use.
    const workers = [0, 1].map(() => {
      const mirror = new HealthStore();
      const router = new Router(OPTS, mirror, undefined, (plan) =>
        planUsed(plan.service, overIpc(plan.locality)),
      );
      return { mirror, router };
    });
    const sync = () => {
      for (const w of workers) w.mirror.mirror(overIpc(health.exportService(svc.key)!));
    };
    const route = (times: number) => {
      for (let i = 0; i < times; i++) for (const w of workers) w.router.plan(svc, EAST_A);
    };

    route(5);
    expect(shifts).toEqual([]);
    // us-east-a fails its checks: both workers route the next request to the region.
    for (const id of ['alpha/127.11.0.0', 'alpha/127.11.0.1'])
      health.setCheck(svc.key, id, 'unhealthy', 'down');
    sync();
    route(5);
    expect(shifts.map((s) => `${s.from}→${s.to}`)).toEqual(['zone→region']);
    // A new snapshot with the same service changes no tier: nothing more is noted.
    svc = { ...svc };
    route(3);
    expect(shifts).toHaveLength(1);
    // It recovers: one failback.
    for (const id of ['alpha/127.11.0.0', 'alpha/127.11.0.1'])
      health.setCheck(svc.key, id, 'healthy');
    sync();
    route(5);
    expect(shifts.map((s) => `${s.from}→${s.to}`)).toEqual(['zone→region', 'region→zone']);
  });
});
