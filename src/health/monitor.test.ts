import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { endpoints, service } from '../../test/fixtures/services.ts';
import type { Snapshot } from '../catalog/model.ts';
import { configSchema } from '../config/schema.ts';
import { Router } from '../routing/router.ts';
import { HealthMonitor } from './monitor.ts';

const ZONE = { region: 'us-east', zone: 'us-east-a' };
const base = {
  federation: { name: 'galaxy', domain: 'example.test' },
  clusters: [{ name: 'a', kubeconfig: 'a.kubeconfig' }],
};
const config = configSchema.parse({
  ...base,
  health: { active: { enabled: false }, outlier: { consecutive5xx: 2, maxEjectionPercent: 50 } },
});

function snapshot(n: number): Snapshot {
  const svc = service([{ cluster: 'a', endpoints: endpoints(0, n, ZONE) }]);
  return { version: n, createdAt: 0, services: new Map([[svc.key, svc]]), clusters: new Map() };
}

describe('HealthMonitor', () => {
  it('feeds outlier verdicts to routing and forgets endpoints that leave the catalog', async () => {
    const now = 0;
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    const monitor = new HealthMonitor({
      config: config.health,
      addressing: 'endpoints',
      log,
      now: () => now,
    });
    const router = new Router({ ...config.routing, localities: [], self: ZONE }, monitor.store);
    const three = snapshot(3);
    monitor.update(three);
    const svc = three.services.get('shop/web')!;
    expect(router.plan(svc, ZONE).tiers[0]!.targets).toHaveLength(3);

    for (let i = 0; i < 2; i++)
      monitor.report('shop/web', 'a/127.10.0.2', { origin: 'upstream', status: 500 });
    const plan = router.plan(svc, ZONE);
    expect(plan.tiers[0]!.targets.map((t) => t.address)).toEqual(['127.10.0.0', '127.10.0.1']);
    expect(plan.excluded).toMatchObject([
      { address: '127.10.0.2', reasons: ['ejected'], ejectedUntil: 30_000 },
    ]);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({
      msg: 'endpoint ejected',
      service: 'shop/web',
      id: 'a/127.10.0.2',
      reason: 'consecutive-5xx',
    });

    // The ejected endpoint leaves and comes back (same address): it starts clean.
    monitor.update(snapshot(2));
    expect(monitor.store.endpoint('shop/web', 'a/127.10.0.2')).toBeUndefined();
    const back = snapshot(3);
    monitor.update(back);
    expect(router.plan(back.services.get('shop/web')!, ZONE).tiers[0]!.targets).toHaveLength(3);
    await monitor.stop();
  });

  it('with active checks off, probes nothing', async () => {
    const monitor = new HealthMonitor({
      config: config.health,
      addressing: 'endpoints',
      log: pino({ level: 'silent' }),
    });
    monitor.update(snapshot(5));
    expect(monitor.active.stats().targets).toBe(0);
    await monitor.stop();
  });

  it('takes new settings in place: switched off, active verdicts reset; outlier rules apply next', async () => {
    const probing = configSchema.parse({
      ...base,
      health: {
        active: {
          scope: 'all',
          type: 'tcp',
          interval: '20ms',
          timeout: '50ms',
          healthyThreshold: 1,
          unhealthyThreshold: 1,
        },
        outlier: { consecutive5xx: 5, maxEjectionPercent: 100 },
      },
    });
    const monitor = new HealthMonitor({
      config: probing.health,
      addressing: 'endpoints',
      log: pino({ level: 'silent' }),
    });
    monitor.update(snapshot(2));
    // Whatever answers at 127.10.0.x:8080 here (usually nothing: refused), each gets a verdict.
    const verdict = (id: string) => monitor.store.endpoint('shop/web', id)?.check ?? 'unknown';
    const ids = ['a/127.10.0.0', 'a/127.10.0.1'];
    for (let i = 0; i < 200 && ids.some((id) => verdict(id) === 'unknown'); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(ids.map(verdict)).not.toContain('unknown');

    const off = configSchema.parse({
      ...base,
      health: {
        active: { enabled: false },
        outlier: { consecutive5xx: 1, maxEjectionPercent: 100 },
      },
    });
    monitor.reconfigure(off.health, 'endpoints');
    expect(monitor.active.stats().targets).toBe(0);
    expect(ids.map(verdict)).toEqual(['unknown', 'unknown']);
    expect(monitor.store.endpoints('shop/web')).toBeUndefined();
    // One 5xx is now enough to eject.
    monitor.report('shop/web', 'a/127.10.0.1', { origin: 'upstream', status: 503 });
    expect(monitor.store.endpoint('shop/web', 'a/127.10.0.1')?.ejectedUntil).toBeDefined();
    await monitor.stop();
  });
});
