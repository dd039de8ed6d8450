// Against real sockets on loopback: 127.60.x.y–127.69.x.y are this file's own.
import { once } from 'node:events';
import { createServer as createTcpServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CountingServer, checkerFactory, freePort, snapshot } from '../../test/helpers/health.ts';
import { sleep, waitFor } from '../../test/helpers/wait.ts';
import type { Snapshot } from '../catalog/model.ts';
import { Backend } from '../localfed/backends.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const checker = checkerFactory(cleanups);

async function server(host: string): Promise<CountingServer> {
  const s = await new CountingServer().start(host);
  cleanups.push(() => s.stop());
  return s;
}

describe('ActiveChecker, HTTP', () => {
  it('marks a backend unhealthy after unhealthyThreshold failures and healthy after healthyThreshold passes', async () => {
    const port = await freePort('127.60.0.1'); // Backend takes fixed ports
    const backend = new Backend({
      cluster: 'a',
      region: 'r',
      zone: 'z',
      node: 'n',
      pod: 'web-0',
      namespace: 'ns',
      service: 'web',
      ip: '127.60.0.1',
      ports: [port],
    });
    await backend.start();
    cleanups.push(() => backend.stop());
    const events: string[] = [];
    const {
      checker: c,
      store,
      logs,
    } = checker({}, { onResult: (_t, r) => events.push(r.ok ? 'pass' : 'fail') });
    store.subscribe((_s, _id, h) => events.push(h.check));
    c.update(snapshot({ web: [{ cluster: 'a', ip: '127.60.0.1', port }] }));
    const id = 'a/127.60.0.1';
    expect(store.endpoint('ns/web', id)).toBeUndefined(); // unknown until thresholds are met

    await waitFor(() => store.endpoint('ns/web', id)?.check === 'healthy', 5000, 'healthy');
    expect(events).toEqual(['pass', 'pass', 'healthy']);

    backend.healthy = false;
    await waitFor(() => store.endpoint('ns/web', id)?.check === 'unhealthy', 5000, 'unhealthy');
    expect(store.endpoint('ns/web', id)?.checkDetail).toBe('HTTP 503');
    // Exactly three failures in a row, after whatever passed before the flip; then
    // exactly two passes after whatever failed before the flip back.
    const down = events.indexOf('unhealthy');
    expect(events.slice(down - 3, down + 1)).toEqual(['fail', 'fail', 'fail', 'unhealthy']);
    expect(events[down - 4]).not.toBe('fail');

    backend.healthy = true;
    await waitFor(() => store.endpoint('ns/web', id)?.check === 'healthy', 5000, 'recovered');
    const up = events.lastIndexOf('healthy');
    expect(events.slice(up - 2, up + 1)).toEqual(['pass', 'pass', 'healthy']);
    expect(events[up - 3]).not.toBe('pass');

    // One log line per transition: up at start (debug), down (warn), recovered (info).
    const transitions = logs.filter((l) => l.msg.startsWith('endpoint'));
    expect(transitions.map((l) => l.level)).toEqual([20, 40, 30]);
    expect(c.stats().probes).toBe(events.filter((e) => e === 'pass' || e === 'fail').length);
  });

  it('sends GET path with its User-Agent, accepts the configured statuses, and leaves no sockets open', async () => {
    const s = await server('127.60.0.2');
    s.status = 404;
    const { checker: c, store } = checker({
      path: '/ready?deep=1',
      expectedStatuses: { min: 404, max: 404 },
      healthyThreshold: 1,
    });
    c.update(snapshot({ web: [{ cluster: 'a', ip: '127.60.0.2', port: s.port }] }));
    await waitFor(() => store.endpoint('ns/web', 'a/127.60.0.2')?.check === 'healthy');
    expect([...s.userAgents]).toEqual(['fedgate-health-check']);
    expect([...s.paths]).toEqual(['/ready?deep=1']);
    await waitFor(() => s.requests >= 5, 5000, 'more probes');
    await c.stop();
    // Keep-alive is off: every probe's connection is closed.
    await waitFor(() => s.openSockets === 0, 5000, 'sockets closed');
  });

  it('probes IPv6 endpoints', async () => {
    const s = await server('::1');
    const { checker: c, store } = checker({ healthyThreshold: 1 });
    c.update(snapshot({ web: [{ cluster: 'a', ip: '::1', port: s.port }] }));
    await waitFor(() => store.endpoint('ns/web', 'a/::1')?.check === 'healthy');
  });

  it('fails a hanging backend by timeout, with one probe in flight at most', async () => {
    const s = await server('127.61.0.1');
    s.hang = true;
    const { checker: c, store } = checker({ timeout: 150, unhealthyThreshold: 2 });
    c.update(snapshot({ web: [{ cluster: 'a', ip: '127.61.0.1', port: s.port }] }));
    const id = 'a/127.61.0.1';
    await waitFor(() => store.endpoint('ns/web', id)?.check === 'unhealthy', 5000, 'unhealthy');
    expect(store.endpoint('ns/web', id)?.checkDetail).toBe('timeout after 150ms');
    await waitFor(() => s.requests >= 4, 5000, 'more probes');
    expect(s.maxInFlight).toBe(1);
    expect(c.stats().inFlight).toBeLessThanOrEqual(1);
  });
});

describe('ActiveChecker, TCP', () => {
  it('marks a refused port unhealthy and an open one healthy', async () => {
    const open = createTcpServer((sock) => sock.destroy()).listen(0, '127.62.0.1');
    await once(open, 'listening');
    cleanups.push(async () => void (await new Promise((r) => open.close(r))));
    const closedPort = await freePort('127.62.0.2'); // nothing listens there now

    const { checker: c, store } = checker({ type: 'tcp', unhealthyThreshold: 2 });
    c.update(
      snapshot({
        web: [
          { cluster: 'a', ip: '127.62.0.1', port: (open.address() as { port: number }).port },
          { cluster: 'b', ip: '127.62.0.2', port: closedPort },
        ],
      }),
    );
    await waitFor(() => store.endpoint('ns/web', 'a/127.62.0.1')?.check === 'healthy');
    await waitFor(() => store.endpoint('ns/web', 'b/127.62.0.2')?.check === 'unhealthy');
    expect(store.endpoint('ns/web', 'b/127.62.0.2')?.checkDetail).toBe('connect ECONNREFUSED');
  });
});

describe('ActiveChecker, expedited', () => {
  it('probes an endpoint the proxy could not reach at once and every fastInterval until it is down', async () => {
    const closedPort = await freePort('127.62.0.3');
    const open = createTcpServer((sock) => sock.destroy()).listen(0, '127.62.0.4');
    await once(open, 'listening');
    cleanups.push(async () => void (await new Promise((r) => open.close(r))));
    const openPort = (open.address() as { port: number }).port;
    // A long interval: without expedite nothing would be probed within this test.
    const { checker: c, store } = checker({
      type: 'tcp',
      interval: 60_000,
      fastInterval: 30,
      unhealthyThreshold: 3,
      healthyThreshold: 1,
    });
    c.update(
      snapshot({
        web: [
          { cluster: 'a', ip: '127.62.0.3', port: closedPort },
          { cluster: 'b', ip: '127.62.0.4', port: openPort },
        ],
      }),
    );
    await sleep(100);
    expect(c.stats().probes).toBe(0);
    c.expedite('ns/web', 'a/127.62.0.3');
    c.expedite('ns/web', 'a/127.62.0.3'); // a repeat changes nothing
    await waitFor(() => store.endpoint('ns/web', 'a/127.62.0.3')?.check === 'unhealthy', 2000);
    // Three failures and no more: once down, it is back to the normal interval.
    await sleep(150);
    expect(c.stats()).toMatchObject({ probes: 3, failed: 3 });
    // A reachable endpoint passes its first probe and leaves fast probing.
    c.expedite('ns/web', 'b/127.62.0.4');
    await waitFor(() => store.endpoint('ns/web', 'b/127.62.0.4')?.check === 'healthy', 2000);
    await sleep(150);
    expect(c.stats()).toMatchObject({ probes: 4, passed: 1 });
    // Unknown endpoints are ignored.
    c.expedite('ns/web', 'z/127.0.0.9');
    c.expedite('ns/nope', 'a/127.62.0.3');
  });
});

describe('ActiveChecker, following the catalog', () => {
  it('stops probing removed endpoints and vanished services', async () => {
    const [a, b] = await Promise.all([server('127.63.0.1'), server('127.63.0.2')]);
    const { checker: c, store } = checker({ healthyThreshold: 1 });
    const both = [
      { cluster: 'a', ip: '127.63.0.1', port: a.port },
      { cluster: 'b', ip: '127.63.0.2', port: b.port },
    ];
    c.update(snapshot({ web: both }));
    const checked = (id: string) => store.endpoint('ns/web', id)?.check;
    await waitFor(
      () => checked('a/127.63.0.1') === 'healthy' && checked('b/127.63.0.2') === 'healthy',
      5000,
      'both checked',
    );

    c.update(snapshot({ web: both.slice(0, 1) }));
    expect(c.stats().targets).toBe(1);
    const seenByB = b.requests;
    const seenByA = a.requests;
    await waitFor(() => a.requests >= seenByA + 5, 5000, 'a still probed');
    expect(b.requests).toBe(seenByB);

    c.update(snapshot({}));
    expect(c.stats().targets).toBe(0);
    await sleep(100); // a probe already on the wire may still arrive
    const seenAfter = a.requests;
    await sleep(300);
    expect(a.requests).toBe(seenAfter);
  });

  it('resets to unknown the verdict of an endpoint still listed but no longer probed', async () => {
    const s = await server('127.63.1.1');
    s.status = 503;
    const { checker: c, store } = checker({ unhealthyThreshold: 1 });
    const snap = snapshot({ web: [{ cluster: 'a', ip: '127.63.1.1', port: s.port }] });
    c.update(snap);
    await waitFor(() => store.endpoint('ns/web', 'a/127.63.1.1')?.check === 'unhealthy');
    // Now terminating: listed in the catalog (outlier state may still matter), not probed.
    const svc = snap.services.get('ns/web')!;
    const member = svc.clusters[0]!;
    const ep = member.endpoints[0]!;
    const terminating = { ...ep, conditions: { ready: false, serving: true, terminating: true } };
    c.update({
      ...snap,
      services: new Map([
        ['ns/web', { ...svc, clusters: [{ ...member, endpoints: [terminating] }] }],
      ]),
    });
    expect(c.stats().targets).toBe(0);
    expect(store.endpoint('ns/web', 'a/127.63.1.1')?.check).toBe('unknown');
  });

  it('never writes the result of a probe whose target left while it was in flight', async () => {
    const s = await server('127.64.0.1');
    s.hang = true;
    const { checker: c, store } = checker({ timeout: 300, unhealthyThreshold: 1 });
    c.update(snapshot({ web: [{ cluster: 'a', ip: '127.64.0.1', port: s.port }] }));
    await waitFor(() => s.inFlight === 1, 5000, 'a probe in flight');
    c.update(snapshot({}));
    await sleep(500); // past the probe's timeout
    expect(store.endpoint('ns/web', 'a/127.64.0.1')).toBeUndefined();
    expect(store.serviceVersion('ns/web')).toBe(0); // never written at all
    expect(c.stats()).toMatchObject({ probes: 0, inFlight: 0 });
    await waitFor(() => s.inFlight === 0, 5000, 'probe aborted');
  });
});

describe('ActiveChecker lifecycle', () => {
  it.each([
    ['http', 0],
    ['tcp', 1],
  ] as const)('stop() aborts probes in flight and probes no more (%s)', async (type, net) => {
    const s = await server(`127.65.${net}.1`);
    const hanging = await server(`127.65.${net}.2`);
    hanging.hang = true;
    const { checker: c } = checker({ type, timeout: 10_000 });
    const targets = [
      { cluster: 'a', ip: `127.65.${net}.1`, port: s.port },
      { cluster: 'b', ip: `127.65.${net}.2`, port: hanging.port },
    ];
    c.update(snapshot({ web: targets }));
    await waitFor(
      () => s.connections >= 3 && (type === 'tcp' || hanging.inFlight === 1),
      5000,
      'probing',
    );
    const started = Date.now();
    await c.stop();
    expect(Date.now() - started).toBeLessThan(5000); // did not wait for the 10 s timeout
    expect(c.stats()).toMatchObject({ targets: 0, inFlight: 0 });
    await waitFor(() => hanging.inFlight === 0, 5000, 'hanging probe aborted');
    // Counted at the servers: a timer left behind would connect again.
    const seen = s.connections + hanging.connections;
    await sleep(300);
    expect(s.connections + hanging.connections).toBe(seen);
    c.update(snapshot({ web: targets }));
    await sleep(200);
    expect(s.connections + hanging.connections).toBe(seen); // stopped for good
  });

  it('start() follows a catalog until stop()', async () => {
    const s = await server('127.66.0.1');
    let current = snapshot({});
    const subscribers = new Set<(snap: Snapshot) => void>();
    const catalog = {
      current: () => current,
      subscribe: (fn: (snap: Snapshot) => void) => {
        subscribers.add(fn);
        return () => void subscribers.delete(fn);
      },
    };
    const { checker: c, store } = checker({ healthyThreshold: 1 });
    c.start(catalog);
    current = snapshot({ web: [{ cluster: 'a', ip: '127.66.0.1', port: s.port }] });
    for (const fn of subscribers) fn(current);
    await waitFor(() => store.endpoint('ns/web', 'a/127.66.0.1')?.check === 'healthy');
    await c.stop();
    expect(subscribers.size).toBe(0);
  });

  it('spreads first probes over the first interval with the random source', async () => {
    const s = await server('127.68.0.1');
    const late = checker({ interval: 5000 }, { random: () => 0.99 }).checker;
    late.update(snapshot({ web: [{ cluster: 'a', ip: '127.68.0.1', port: s.port }] }));
    await sleep(300);
    expect(s.requests).toBe(0); // due at ~4.95 s
    const early = checker({ interval: 5000 }, { random: () => 0 }).checker;
    early.update(snapshot({ web: [{ cluster: 'a', ip: '127.68.0.1', port: s.port }] }));
    await waitFor(() => s.requests === 1, 3000, 'first probe at once');
  });

  it('does nothing when disabled', async () => {
    const s = await server('127.67.0.1');
    const { checker: c } = checker({ enabled: false });
    c.update(snapshot({ web: [{ cluster: 'a', ip: '127.67.0.1', port: s.port }] }));
    await sleep(300);
    expect(s.requests).toBe(0);
    expect(c.stats().targets).toBe(0);
  });
});
