// The member clusters for catalog.bench.ts, in a process of their own so that the
// bench's RSS is fedgate's alone: CLUSTERS SimClusters on 127.0.0.1, each seeded
// through SimCluster.apply (the registry's create path: defaults, validation, a
// revision and a history entry per object, exactly what the API then serves).
// Usage (forked with an IPC channel): node bench/catalog-sim.ts DIR
// Writes DIR/<cluster>.kubeconfig, sends 'ready', then answers SimRequests.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { SimCluster } from '../src/localfed/cluster.ts';
import {
  CLUSTERS,
  clusterName,
  exportObject,
  HISTORY_LIMIT,
  namespaceObjects,
  namespaceOf,
  nodeObjects,
  SERVICES,
  type SimMessage,
  type SimRequest,
  serviceObject,
  sliceName,
  sliceObject,
} from './catalog-fixture.ts';

const dir = process.argv[2];
if (!dir || !process.send) {
  console.error('usage: forked by catalog.bench.ts with an IPC channel: catalog-sim.ts DIR');
  process.exit(2);
}
const send = (m: SimMessage) => process.send!(m);

// Bounded: a parent that dies or forgets us must not leave us running.
setTimeout(() => process.exit(3), 15 * 60_000).unref();
process.on('disconnect', () => process.exit(0));

const clusters: SimCluster[] = [];
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
  }
  const seedMs = performance.now() - t0;
  const kubeconfigs = await Promise.all(clusters.map((s) => s.writeKubeconfig(dir)));
  const mem = process.memoryUsage();
  send({ type: 'ready', kubeconfigs, seedMs, objects, rss: mem.rss, heapUsed: mem.heapUsed });
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
        send({ type: 'reply', id: m.id, rss: mem.rss, heapUsed: mem.heapUsed });
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
