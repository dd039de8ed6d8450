// The member clusters for catalog.bench.ts, in a process of their own so that the
// bench's RSS is fedgate's alone: CLUSTERS SimClusters on 127.0.0.1, each seeded
// through SimCluster.apply (the registry's create path: defaults, validation, a
// revision and a history entry per object, exactly what the API then serves).
// Each live endpoint (one in LIVE_EVERY) gets a real TCP listener at its loopback
// address, so health checks pass there and are refused everywhere else.
// Usage (forked with an IPC channel): node bench/catalog-sim.ts DIR SHAPE
// Writes DIR/<cluster>.kubeconfig, sends 'ready', then answers SimRequests.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { SimCluster } from '../src/localfed/cluster.ts';
import {
  address,
  BACKEND_PORT,
  clusterName,
  ENDPOINTS,
  exportObject,
  HISTORY_LIMIT,
  isLive,
  namespaceObjects,
  namespaceOf,
  nodeObjects,
  type SimMessage,
  type SimRequest,
  serviceObject,
  shapeNamed,
  sliceName,
  sliceObject,
} from './catalog-fixture.ts';

const [dir, shapeName] = process.argv.slice(2);
if (!dir || !process.send) {
  console.error('usage: forked by catalog-shape.ts with an IPC channel: catalog-sim.ts DIR SHAPE');
  process.exit(2);
}
const { clusters: CLUSTERS, services: SERVICES } = shapeNamed(shapeName);
const send = (m: SimMessage) => process.send!(m);

// Bounded: a parent that dies or forgets us must not leave us running.
setTimeout(() => process.exit(3), 15 * 60_000).unref();
process.on('disconnect', () => process.exit(0));

const clusters: SimCluster[] = [];
const backends: Server[] = [];
let accepted = 0;

/** A backend that accepts (a passing TCP check) and closes. */
async function listen(host: string): Promise<void> {
  const server = createServer((socket) => {
    accepted++;
    socket.destroy();
  });
  server.listen(BACKEND_PORT, host);
  await once(server, 'listening');
  backends.push(server);
}

try {
  const t0 = performance.now();
  let objects = 0;
  for (let c = 0; c < CLUSTERS; c++) {
    const sim = await SimCluster.create({
      name: clusterName(c),
      host: '127.0.0.1',
      port: 0,
      historyLimit: HISTORY_LIMIT,
    });
    for (const o of [...namespaceObjects(), ...nodeObjects(c)]) {
      sim.apply(o);
      objects++;
    }
    for (let i = 0; i < SERVICES; i++) {
      sim.apply(serviceObject(i));
      sim.apply(exportObject(i));
      sim.apply(sliceObject(c, i));
      objects += 3;
    }
    await sim.start();
    clusters.push(sim);
    for (let i = 0; i < SERVICES; i++) {
      for (let j = 0; j < ENDPOINTS; j++) if (isLive(c, i, j)) await listen(address(c, i, j));
    }
  }
  const seedMs = performance.now() - t0;
  const kubeconfigs = await Promise.all(clusters.map((s) => s.writeKubeconfig(dir)));
  const mem = process.memoryUsage();
  send({
    type: 'ready',
    kubeconfigs,
    seedMs,
    objects,
    listeners: backends.length,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
  });
} catch (e) {
  send({ type: 'error', message: `seeding failed: ${(e as Error).stack ?? String(e)}` });
  process.exit(1);
}

process.on('message', (raw) => {
  const m = raw as SimRequest;
  try {
    switch (m.type) {
      case 'ping':
        send({ type: 'reply', id: m.id });
        break;
      case 'stats': {
        const mem = process.memoryUsage();
        send({ type: 'reply', id: m.id, rss: mem.rss, heapUsed: mem.heapUsed, accepted });
        break;
      }
      case 'set': {
        const t = performance.now();
        const sim = clusters[m.cluster]!;
        const slice = sim.get(
          'discovery.k8s.io/v1',
          'EndpointSlice',
          namespaceOf(m.service),
          sliceName(m.service),
        );
        if (!slice) throw new Error(`no slice for service ${m.service} in ${sim.name}`);
        const ep = (slice.endpoints as { conditions: Record<string, boolean> }[])[m.endpoint]!;
        ep.conditions = { ...ep.conditions, ready: m.ready, serving: m.ready };
        const stored = sim.apply(slice);
        const applyMs = performance.now() - t;
        send({ type: 'reply', id: m.id, applyMs, rv: stored.metadata.resourceVersion! });
        break;
      }
      case 'stop':
        for (const b of backends) b.close();
        void Promise.all(clusters.map((s) => s.stop())).then(() => {
          send({ type: 'reply', id: m.id });
          process.exit(0);
        });
        break;
    }
  } catch (e) {
    send({ type: 'error', id: m.id, message: (e as Error).message });
  }
});
