import { describe, expect, it } from 'vitest';
import { endpoints, service } from '../../test/fixtures/services.ts';
import type { Snapshot } from '../catalog/model.ts';
import { HealthStore } from '../health/store.ts';
import { primaryTier, Router, type RouterOptions, type TierShift, tierScopeOf } from './router.ts';

const OPTS: RouterOptions = {
  overprovisioning: 1.4,
  panicThreshold: 0.5,
  failoverOrder: {},
  localities: [
    { cidr: '127.1.0.0/16', region: 'us-east', zone: 'us-east-a' },
    { cidr: '127.3.0.0/16', region: 'eu-west', zone: 'eu-west-a' },
  ],
  self: { region: 'us-east', zone: 'us-east-b' },
};
const EAST_A = { region: 'us-east', zone: 'us-east-a' };
const EAST_B = { region: 'us-east', zone: 'us-east-b' };
const WEST = { region: 'eu-west', zone: 'eu-west-a' };

function world(key: string) {
  return service(
    [
      { cluster: 'alpha', endpoints: [...endpoints(1, 4, EAST_A), ...endpoints(2, 4, EAST_B)] },
      { cluster: 'gamma', endpoints: endpoints(3, 4, WEST) },
    ],
    key,
  );
}

describe('Router', () => {
  it('locates clients by the table, else as this replica, else nowhere', () => {
    const router = new Router(OPTS, new HealthStore());
    expect(router.locate('127.3.0.9')).toEqual({
      locality: WEST,
      source: 'table',
      prefixLength: 16,
    });
    expect(router.locate('127.192.2.1')).toEqual({ locality: OPTS.self, source: 'self' });
    const bare = new Router({ ...OPTS, self: {} }, new HealthStore());
    expect(bare.locate('127.192.2.1')).toEqual({ locality: undefined, source: 'none' });
    expect(bare.self).toBeUndefined();
    // A catch-all rule places every client, but this replica stays where the config says
    // (the proxy in locality: self once asked the table for 0.0.0.0 and lost its zone).
    const catchAll = new Router(
      { ...OPTS, localities: [{ cidr: '0.0.0.0/0', region: 'eu-west', zone: 'eu-west-a' }] },
      new HealthStore(),
    );
    expect(catchAll.locate('127.192.2.1').locality).toEqual(WEST);
    expect(catchAll.self).toEqual(OPTS.self);
    expect(router.planFor(world('shop/web'), '127.3.0.9').tiers[0]!.locality).toEqual(WEST);
  });

  it('caches per service object, health version and locality; rebuilds only what changed', () => {
    const health = new HealthStore();
    const router = new Router(OPTS, health);
    const web = world('shop/web');
    const api = world('shop/api');
    const webA = router.plan(web, EAST_A);
    const apiA = router.plan(api, EAST_A);
    router.plan(web, WEST);
    expect(router.builds).toBe(3);
    expect(router.plan(web, { ...EAST_A })).toBe(webA);
    expect(router.builds).toBe(3);

    health.setCheck('shop/web', 'alpha/127.11.0.0', 'unhealthy', 'HTTP 503');
    const webA2 = router.plan(web, EAST_A);
    expect(webA2).not.toBe(webA);
    expect(webA2.tiers[0]!.eligible).toBe(3);
    expect(router.plan(api, EAST_A)).toBe(apiA);
    expect(router.builds).toBe(4);

    const web2 = world('shop/web');
    expect(router.plan(web2, EAST_A)).not.toBe(webA2);
    expect(router.builds).toBe(5);

    const snapshot = { services: new Map([['shop/api', api]]) } as unknown as Snapshot;
    router.prune(snapshot);
    expect(router.plan(api, EAST_A)).toBe(apiA);
    router.plan(web2, EAST_A);
    expect(router.builds).toBe(6);
  });

  it("reports when a locality's traffic moves to another tier, once, and when it comes back", () => {
    const health = new HealthStore();
    const shifts: TierShift[] = [];
    const router = new Router(OPTS, health, (s) => shifts.push(s));
    const web = world('shop/web');
    expect(primaryTier(router.plan(web, EAST_A))).toEqual({ tier: 'zone', clusters: ['alpha'] });
    for (const i of [0, 1, 2, 3]) health.setCheck('shop/web', `alpha/127.11.0.${i}`, 'unhealthy');
    router.plan(web, EAST_A);
    router.plan(web, EAST_A);
    // The DNS variants of a service are derived views of the same traffic: not counted twice.
    router.plan(web, EAST_A, 'ingress');
    expect(shifts).toEqual([
      {
        service: 'shop/web',
        locality: EAST_A,
        from: 'zone',
        to: 'region',
        fromClusters: ['alpha'],
        toClusters: ['alpha'],
      },
    ]);
    // Another locality was never planned before the change: nothing moved for it.
    router.plan(web, WEST);
    expect(shifts).toHaveLength(1);
    for (const i of [0, 1, 2, 3]) health.setCheck('shop/web', `alpha/127.11.0.${i}`, 'healthy');
    // Looking is not traffic: explain sees the new plan but notes nothing ...
    expect(router.explain(web, EAST_A, 0).tiers[0]!.verdict).toBe('serves');
    expect(shifts).toHaveLength(1);
    // ... and the next client routed is what counts the move back.
    router.plan(web, EAST_A);
    expect(shifts.map((s) => `${s.from}→${s.to}`)).toEqual(['zone→region', 'region→zone']);
  });

  it('knows the tier of each target of a plan', () => {
    const router = new Router(OPTS, new HealthStore());
    const plan = router.plan(world('shop/web'), EAST_A);
    expect(tierScopeOf(plan, 'alpha/127.11.0.0')).toBe('zone');
    expect(tierScopeOf(plan, 'alpha/127.12.0.0')).toBe('region');
    expect(tierScopeOf(plan, 'gamma/127.13.0.0')).toBe('other');
    expect(tierScopeOf(plan, 'nowhere/127.2.3.4')).toBeUndefined();
  });

  it('explains which tier serves, why others are skipped or unused, and every exclusion', () => {
    const health = new HealthStore();
    const router = new Router(OPTS, health);
    const web = world('shop/web');
    for (const i of [0, 1, 2]) {
      health.setEjection('shop/web', `alpha/127.11.0.${i}`, 60_000, 'consecutive-5xx');
    }
    health.setCheck('shop/web', 'alpha/127.11.0.3', 'unhealthy', 'HTTP 503');
    const x = router.explain(web, '127.1.0.7', 30_000);
    expect(x.client).toEqual({
      locality: EAST_A,
      source: 'table',
      prefixLength: 16,
      address: '127.1.0.7',
    });
    expect(x.tiers.map((t) => [t.verdict, Math.round(t.load * 100)])).toEqual([
      ['skipped', 0],
      ['serves', 100],
      ['unused', 0],
    ]);
    expect(x.tiers[0]!.reason).toBe('skipped: no eligible endpoint (0 of 4 endpoints eligible)');
    expect(x.tiers[1]!.reason).toBe('takes 100 % of the traffic: 4 of 4 endpoints eligible');
    expect(x.tiers[1]!.clusters).toEqual({ alpha: 1 });
    expect(x.summary).toBe(
      'shop/web for client 127.1.0.7 in us-east/us-east-a (table): P1 region us-east 100 %',
    );
    expect(x.excluded.map((e) => e.reason)).toEqual([
      'ejected by outlier detection until 1970-01-01T00:01:00.000Z (30 s from now)',
      'ejected by outlier detection until 1970-01-01T00:01:00.000Z (30 s from now)',
      'ejected by outlier detection until 1970-01-01T00:01:00.000Z (30 s from now)',
      'failing its active health check (HTTP 503)',
    ]);
  });

  it('explains spill and panic in numbers', () => {
    const health = new HealthStore();
    const router = new Router(OPTS, health);
    const web = world('shop/web');
    health.setCheck('shop/web', 'alpha/127.11.0.0', 'unhealthy', 'timeout after 1000ms');
    health.setCheck('shop/web', 'alpha/127.11.0.1', 'unhealthy', 'timeout after 1000ms');
    const spill = router.explain(web, EAST_A, 0);
    expect(spill.client.source).toBe('given');
    expect(spill.tiers[0]!.reason).toBe(
      'takes 70 % of the traffic: 2 of 4 endpoints eligible; its health min(1, 2/4 × 1.4) = 70 % keeps 70 % here and the rest goes on down the tiers',
    );
    expect(spill.tiers[1]!.verdict).toBe('serves');

    health.setCheck('shop/web', 'alpha/127.11.0.2', 'unhealthy', 'HTTP 500');
    for (const i of [0, 1, 2, 3]) {
      health.setCheck('shop/web', `alpha/127.12.0.${i}`, 'unhealthy');
      health.setCheck('shop/web', `gamma/127.13.0.${i}`, 'unhealthy');
    }
    const panic = router.explain(web, EAST_A, 0);
    expect(panic.panic).toBe(true);
    expect(panic.summary).toContain('(panic)');
    expect(panic.tiers[0]!.reason).toContain(
      'in panic: 25 % eligible is under the panic threshold 50 % while the service lacks capacity (normalized health 35 %), so it balances over all 4 endpoints',
    );
    expect(panic.tiers.map((t) => t.load)).toEqual([1, 0, 0]);
    expect(panic.excluded.filter((e) => e.servedInPanic).length).toBeGreaterThan(0);
    expect(panic.excluded.find((e) => e.servedInPanic)!.reason).toMatch(
      /served anyway: its tier is in panic$/,
    );
  });

  it('reconfigured, locates by the new table and plans by the new options, without noting a failover', () => {
    const shifts: TierShift[] = [];
    const router = new Router(OPTS, new HealthStore(), (s) => shifts.push(s));
    const svc = world('shop/web');
    expect(router.plan(svc, EAST_A).tiers[0]!.scope).toBe('zone');
    const builds = router.builds;
    router.reconfigure({ ...OPTS, localities: [], self: WEST, panicThreshold: 0.9 });
    expect(router.locate('127.1.0.1')).toEqual({ locality: WEST, source: 'self' });
    // The cached plan is gone: built again, under the new options.
    router.plan(svc, EAST_A);
    expect(router.builds).toBe(builds + 1);
    expect(shifts).toEqual([]);
  });
});
