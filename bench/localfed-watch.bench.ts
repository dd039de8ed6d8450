// Question: how quickly does a change in a simulated cluster reach the informers
// watching it, and how fast does the simulator list? Everything later measures
// fedgate on top of this ground, so its own cost must be small and known.
// Measured: write → every one of N real client-node informers has the event, and
// list latency for 1,000 EndpointSlices through the generated API client.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import {
  DiscoveryV1Api,
  KubeConfig,
  ListWatch,
  type V1EndpointSlice,
  Watch,
} from '@kubernetes/client-node';
import { SimCluster } from '../src/localfed/cluster.ts';
import { printTable, summarize, writeResult } from './lib.ts';

const INFORMERS = 8;
const CHANGES = 400;
const SLICES = 1000;
const LISTS = 30;

function slice(i: number, v: number) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `svc-${i}`,
      namespace: 'bench',
      labels: { 'kubernetes.io/service-name': `svc-${i % 50}`, v: String(v) },
    },
    addressType: 'IPv4',
    endpoints: [
      {
        addresses: [`127.60.${Math.floor(i / 250)}.${(i % 250) + 1}`],
        conditions: { ready: true },
        zone: 'z1',
      },
    ],
    ports: [{ name: 'http', port: 8080 }],
  };
}

const cluster = await SimCluster.create({ name: 'bench', host: '127.0.0.1', port: 0 });
await cluster.start();
cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
for (let i = 0; i < SLICES; i++) cluster.apply(slice(i, 0));

const kc = new KubeConfig();
kc.loadFromString(cluster.kubeconfig());
const api = kc.makeApiClient(DiscoveryV1Api);

// List latency.
const listMs: number[] = [];
for (let i = 0; i < LISTS; i++) {
  const t = performance.now();
  const list = await api.listEndpointSliceForAllNamespaces();
  listMs.push(performance.now() - t);
  if (list.items.length < SLICES) throw new Error(`list returned ${list.items.length} items`);
}

// Fan-out latency: one object changes, N informers must each see the new version.
const seen = new Map<string, number>(); // resourceVersion → informers that saw it
let waiting: { rv: string; resolve: () => void } | undefined;
const informers: ListWatch<V1EndpointSlice>[] = [];
for (let i = 0; i < INFORMERS; i++) {
  const inf = new ListWatch<V1EndpointSlice>(
    '/apis/discovery.k8s.io/v1/namespaces/bench/endpointslices',
    new Watch(kc),
    () => api.listNamespacedEndpointSlice({ namespace: 'bench' }),
    false,
  );
  inf.on('update', (obj) => {
    const rv = obj.metadata?.resourceVersion ?? '';
    const n = (seen.get(rv) ?? 0) + 1;
    seen.set(rv, n);
    if (waiting && waiting.rv === rv && n === INFORMERS) waiting.resolve();
  });
  inf.on('error', () => {});
  await inf.start();
  informers.push(inf);
}
await new Promise((r) => setTimeout(r, 300));

const fanoutMs: number[] = [];
const started = performance.now();
for (let c = 1; c <= CHANGES; c++) {
  const t = performance.now();
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`change ${c} not seen by all informers in 5 s`)),
      5000,
    );
    waiting = {
      rv: '',
      resolve: () => {
        clearTimeout(timer);
        resolve();
      },
    };
  });
  const stored = cluster.apply(slice(c % SLICES, c));
  waiting!.rv = stored.metadata.resourceVersion!;
  if ((seen.get(waiting!.rv) ?? 0) === INFORMERS) waiting!.resolve();
  await done;
  fanoutMs.push(performance.now() - t);
}
const elapsed = (performance.now() - started) / 1000;

for (const inf of informers) await inf.stop();
await cluster.stop();

const list = summarize(listMs);
const fanout = summarize(fanoutMs);
printTable('localfed: list and watch fan-out (ms)', [
  { what: `list ${SLICES} EndpointSlices`, n: list.n, p50: list.p50, p90: list.p90, p99: list.p99 },
  {
    what: `change → ${INFORMERS} informers`,
    n: fanout.n,
    p50: fanout.p50,
    p90: fanout.p90,
    p99: fanout.p99,
  },
]);
console.log(
  `\n${CHANGES} sequential changes delivered to ${INFORMERS} informers each: ${(CHANGES / elapsed).toFixed(0)} changes/s`,
);
const path = await writeResult('localfed-watch', {
  config: { informers: INFORMERS, changes: CHANGES, slices: SLICES, lists: LISTS },
  listMs: list,
  fanoutMs: fanout,
  changesPerSecond: CHANGES / elapsed,
});
console.log(`results: ${path}`);
process.exit(0);
