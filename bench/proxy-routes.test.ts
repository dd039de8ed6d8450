// The proxy benchmark's fedgate-routes row: fedgate started on a member serving a route
// set answers a route's host by the route (the table is in force) and the benchmark's
// Host by Host routing (no route names it). A small set, the same code path.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Backend } from '../src/localfed/backends.ts';
import { freePort } from './lib.ts';
import { POD, type ProxyProcess, probe, probeRouted, startFedgate } from './proxy-targets.ts';
import { forApply, PROBE_HOST, probeRoute, routeSetObjects } from './route-set.ts';

// The benchmark's pod, on this test's own address (the benchmark's is fixed).
const IP = '127.227.0.1';

describe('fedgate with a route table (proxy benchmark, fedgate-routes)', () => {
  let dir = '';
  let backend: Backend | undefined;
  let fedgate: ProxyProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-routes-test-'));
    const port = await freePort(IP);
    backend = new Backend({ ...POD, ip: IP, ports: [port] });
    await backend.start();
    fedgate = await startFedgate(`${IP}:${port}`, join(dir, 'fedgate'), {
      gatewayObjects: [
        ...forApply(routeSetObjects({ routes: 20, rulesPerRoute: 10, hosts: 10, seed: 20 })),
        probeRoute(),
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await fedgate?.stop();
    await backend?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers a route host by its route, and the benchmark Host by Host routing', async () => {
    if (!fedgate) throw new Error('fedgate did not start');
    await probeRouted(fedgate.url, PROBE_HOST, 30_000);
    await probe(fedgate.url);
  }, 60_000);
});
