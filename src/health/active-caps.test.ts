// The checker's bounds and scope, against real sockets on loopback: 127.70.x.y are
// this file's own. Upper bounds only: a slow machine probes less, never more.
import { once } from 'node:events';
import { createServer as createTcpServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CountingServer,
  checkerFactory,
  freePort,
  manyEndpoints,
  snapshot,
} from '../../test/helpers/health.ts';
import { sleep, waitFor } from '../../test/helpers/wait.ts';
import type { ProbeTarget } from './targets.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const checker = checkerFactory(cleanups);

async function hangingServer(host: string): Promise<CountingServer> {
  const s = await new CountingServer().start(host);
  s.hang = true;
  cleanups.push(() => s.stop());
  return s;
}

describe('ActiveChecker, bounded', () => {
  it('stretches every target’s interval evenly when the rate cap cannot cover one interval', async () => {
    const port = await freePort('127.70.0.1');
    const { checker: c } = checker({
      type: 'tcp',
      interval: 50,
      maxProbesPerSecond: 100,
      unhealthyThreshold: 1000,
    });
    c.update(snapshot({ web: manyEndpoints(20, '127.70.0.1', port) }));
    // 20 targets at 100 starts/s: each is probed every 200 ms, not every 50 ms.
    expect(c.stats().effectiveIntervalMs).toBe(200);
    const started = performance.now();
    await sleep(600);
    const elapsed = (performance.now() - started) / 1000;
    // The bucket's burst (5 at 100/s) plus the rate, whatever the 50 ms interval asks.
    expect(c.stats().probes).toBeLessThanOrEqual(5 + Math.ceil(100 * elapsed) + 1);
    // With a quarter of the targets the configured interval holds again.
    c.update(snapshot({ web: manyEndpoints(5, '127.70.0.1', port) }));
    expect(c.stats().effectiveIntervalMs).toBe(50);
  });

  it('never holds more probes in flight than maxInFlight, and stretches by how long probes take', async () => {
    const s = await hangingServer('127.70.0.2');
    const { checker: c } = checker({
      type: 'http',
      interval: 20,
      timeout: 150,
      maxInFlight: 4,
      unhealthyThreshold: 1000,
    });
    c.update(snapshot({ web: manyEndpoints(40, '127.70.0.2', s.port) }));
    let maxSeen = 0;
    const until = Date.now() + 800;
    while (Date.now() < until) {
      maxSeen = Math.max(maxSeen, c.stats().inFlight);
      await sleep(5);
    }
    await waitFor(() => c.stats().failed >= 8);
    expect(maxSeen).toBeLessThanOrEqual(4);
    expect(s.maxInFlight).toBeLessThanOrEqual(4);
    expect(s.maxInFlight).toBeGreaterThan(0);
    // 40 targets × ~150 ms a probe over 4 slots: about 1.5 s each, not 20 ms.
    expect(c.stats().effectiveIntervalMs).toBeGreaterThanOrEqual(1000);
  });

  it('runs an expedited check before every waiting one, still under the cap', async () => {
    const s = await hangingServer('127.70.0.3');
    const order: string[] = [];
    const { checker: c } = checker(
      { type: 'http', interval: 10, timeout: 100, maxInFlight: 1, unhealthyThreshold: 1000 },
      { onResult: (t: ProbeTarget) => order.push(t.id) },
    );
    c.update(snapshot({ web: manyEndpoints(10, '127.70.0.3', s.port) }));
    await waitFor(() => c.stats().inFlight === 1);
    // Read in the same turn as expedite(): nothing can finish in between. With one
    // slot, results come in start order: the probe in flight (c9 itself, maybe), then
    // c9 before any waiting one.
    const seen = order.length;
    const next = seen + c.stats().inFlight;
    c.expedite('ns/web', 'c9/127.70.0.3');
    await waitFor(() => order.length > next, 3000);
    expect(order.slice(seen, next + 1)).toContain('c9/127.70.0.3');
    expect(s.maxInFlight).toBe(1);
  });

  it('gives no verdict for a probe that found the process out of descriptors, and says so', async () => {
    const port = await freePort('127.70.0.4');
    const exhausted: unknown[] = [];
    const { checker: c, store } = checker(
      { type: 'tcp', interval: 20, fastInterval: 20, unhealthyThreshold: 1 },
      {
        // A refused connect stands in for EMFILE: both are errors before any exchange.
        isExhaustion: (err) => (err as NodeJS.ErrnoException).code === 'ECONNREFUSED',
        onExhausted: (err) => exhausted.push(err),
      },
    );
    c.update(snapshot({ web: [{ cluster: 'a', ip: '127.70.0.4', port }] }));
    await waitFor(() => exhausted.length >= 3);
    expect(c.stats()).toMatchObject({ probes: 0, failed: 0 });
    expect(c.stats().exhausted).toBeGreaterThanOrEqual(3);
    expect(store.endpoint('ns/web', 'a/127.70.0.4')?.check).toBeUndefined();
  });
});

describe('ActiveChecker, which services', () => {
  it('checks by the annotation, else by the config’s scope', async () => {
    const port = await freePort('127.70.1.1');
    const eps = [{ cluster: 'a', ip: '127.70.1.1', port }];
    const services = { plain: eps, yes: eps, no: eps };
    const annotations = { yes: true, no: false };

    const annotated = checker({ type: 'tcp', scope: 'annotated', interval: 60_000 }).checker;
    annotated.update(snapshot(services, annotations));
    expect(annotated.stats().targets).toBe(1);
    const snap = snapshot(services, annotations);
    expect(annotated.serviceCheck(snap.services.get('ns/yes')!)).toMatchObject({
      checked: true,
      by: 'annotation',
      targets: 1,
    });
    expect(annotated.serviceCheck(snap.services.get('ns/plain')!)).toMatchObject({
      checked: false,
      by: 'scope',
      targets: 0,
    });

    const all = checker({ type: 'tcp', scope: 'all', interval: 60_000 }).checker;
    all.update(snapshot(services, annotations));
    expect(all.stats().targets).toBe(2);
    expect(all.serviceCheck(snap.services.get('ns/no')!)).toMatchObject({
      checked: false,
      by: 'annotation',
    });
    // The annotation added later starts its checks; removed, the scope decides again.
    annotated.update(snapshot(services, { yes: true, no: false, plain: true }));
    expect(annotated.stats().targets).toBe(2);
    annotated.update(snapshot(services, {}));
    expect(annotated.stats().targets).toBe(0);
  });

  it('checks an unchecked service’s endpoint on demand while it fails, then lets it go', async () => {
    const host = '127.70.2.1';
    const port = await freePort(host);
    const { checker: c, store } = checker({
      type: 'tcp',
      scope: 'annotated',
      interval: 40,
      fastInterval: 20,
      unhealthyThreshold: 2,
      healthyThreshold: 2,
    });
    c.update(snapshot({ web: [{ cluster: 'a', ip: host, port }] }));
    expect(c.stats().targets).toBe(0);
    // The proxy could not reach it: it is probed until it has a verdict...
    c.expedite('ns/web', `a/${host}`);
    await waitFor(() => store.endpoint('ns/web', `a/${host}`)?.check === 'unhealthy', 3000);
    // ... and, failing, stays probed at the interval.
    await sleep(150);
    expect(c.stats().targets).toBe(1);
    // It comes back: two passes make it healthy, and the on-demand probe goes away.
    const open = createTcpServer((sock) => sock.destroy()).listen(port, host);
    await once(open, 'listening');
    cleanups.push(async () => void (await new Promise((r) => open.close(r))));
    await waitFor(() => c.stats().targets === 0, 3000);
    expect(store.endpoint('ns/web', `a/${host}`)?.check ?? 'unknown').toBe('unknown');
    // Reachable at the first look: one probe, and nothing kept.
    const before = c.stats().probes;
    c.expedite('ns/web', `a/${host}`);
    await waitFor(() => c.stats().probes > before, 3000);
    await sleep(100);
    expect(c.stats()).toMatchObject({ targets: 0, probes: before + 1 });
    // An endpoint the catalog does not hold gets nothing.
    c.expedite('ns/web', 'z/127.70.2.9');
    expect(c.stats().targets).toBe(0);
  });
});
