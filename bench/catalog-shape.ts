// One shape of the catalog benchmark (catalog.bench.ts runs each in a process of its
// own, so each RSS is its own): does fedgate's discovery path, as \`fedgate start\` runs
// it (watchers, catalog, health checks on for every service, the router), hold
// 200,000 endpoints? Measured:
//   1. Discovery.start → first snapshot with every service complete.
//   2. A steady window with checks running: fedgate's RSS and descriptors (this
//      process holds fedgate alone; the simulated clusters and the backends that
//      checks pass at run in a child, bench/catalog-sim.ts), probes per second, the
//      effective check interval, probes in flight; and one plan per service.
//   3. Catalog.apply + Catalog.flush for one EndpointSlice change at full scale,
//      in-process on a Catalog of its own (no HTTP, no JSON, no trimming).
//   4. One endpoint's ready condition flipped in a simulator → the snapshot holding
//      it, one change at a time, checks still running, timed in this process's
//      clock: from just before the request goes to the child over the IPC channel
//      to the subscriber seeing the snapshot. It includes that one-way IPC hop and
//      the simulator's write (both reported separately).
// Usage: node bench/catalog-shape.ts SHAPE OUT.json
// Everything is bounded in count and time; a bound hit is reported, not waited out.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { Catalog } from '../src/catalog/catalog.ts';
import type { FederatedService, Snapshot } from '../src/catalog/model.ts';
import { parseConfig } from '../src/config/load.ts';
import { Discovery } from '../src/discovery.ts';
import type { SliceRecord } from '../src/watch/records.ts';
import { objectKey, trimExport, trimNode, trimService, trimSlice } from '../src/watch/trim.ts';
import {
  address,
  clusterName,
  ENDPOINTS,
  exportObject,
  LIVE_EVERY,
  nodeObjects,
  regionOf,
  type SimMessage,
  type SimRequest,
  serviceKey,
  serviceObject,
  shapeNamed,
  sliceObject,
  zoneOf,
} from './catalog-fixture.ts';
import { summarize } from './lib.ts';

const [shapeName, outPath, checksArg = 'checks'] = process.argv.slice(2);
if (!outPath || !['checks', 'no-checks'].includes(checksArg)) {
  console.error(
    'usage: node bench/catalog-shape.ts SHAPE OUT.json [checks|no-checks] (catalog.bench.ts runs it)',
  );
  process.exit(2);
}
const shape = shapeNamed(shapeName);
const { clusters: CLUSTERS, services: SERVICES } = shape;

const SEED_TIMEOUT_MS = 180_000;
const STARTUP_TIMEOUT_MS = 120_000;
const WARMUP_CHANGES = 20;
const CHANGES = 1000;
const CHANGE_TIMEOUT_MS = 5_000;
const CHANGE_PHASE_MS = 180_000;
const PINGS = 300;
const APPLY_WARMUP = 500;
const APPLY_ITERATIONS = 5000;
const PAGE_SIZE = 500;
/**
 * The steady window: checks running, nothing else changing. V8 gives back the heap
 * that the initial lists grew after about 20 s (its memory reducer); the RSS at the
 * end of the window is the steady one, the window's maximum still shows that peak.
 */
const STEADY_MS = 45_000;
const SAMPLE_EVERY_MS = 250;

// The whole run is bounded: a hang anywhere ends it with a failure.
const watchdog = setTimeout(() => {
  console.error('catalog bench: overall time limit (15 min) reached');
  sim?.kill('SIGKILL');
  process.exit(1);
}, 15 * 60_000);
watchdog.unref();

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
};
const mib = (b: number) => b / 2 ** 20;

/** A small deterministic PRNG, so every run makes the same changes. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- the simulators, in a child process -------------------------------------------

let sim: ChildProcess | undefined;
const replies = new Map<number, (m: SimMessage & { type: 'reply' }) => void>();
let nextId = 1;

type Request = SimRequest extends infer R ? (R extends SimRequest ? Omit<R, 'id'> : never) : never;

function request(m: Request, timeoutMs = 10_000): Promise<SimMessage & { type: 'reply' }> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      replies.delete(id);
      reject(new Error(`simulator did not answer ${m.type} in ${timeoutMs} ms`));
    }, timeoutMs);
    replies.set(id, (r) => {
      clearTimeout(timer);
      resolve(r);
    });
    sim!.send({ ...m, id } as SimRequest);
  });
}

const dir = await mkdtemp(join(tmpdir(), 'fedgate-catalog-bench-'));
sim = fork(new URL('./catalog-sim.ts', import.meta.url).pathname, [dir, shape.name], {
  execPath: process.execPath,
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const ready = await new Promise<SimMessage & { type: 'ready' }>((resolve, reject) => {
  const timer = setTimeout(
    () => reject(new Error(`simulators not seeded in ${SEED_TIMEOUT_MS} ms`)),
    SEED_TIMEOUT_MS,
  );
  sim!.on('exit', (code) => reject(new Error(`simulator process exited (${code})`)));
  sim!.on('message', (raw) => {
    const m = raw as SimMessage;
    if (m.type === 'ready') {
      clearTimeout(timer);
      resolve(m);
    } else if (m.type === 'reply') replies.get(m.id)?.(m);
    else if (m.type === 'error') {
      if (m.id === undefined) reject(new Error(m.message));
      else console.error(`simulator: ${m.message}`);
    }
  });
});
console.log(
  `simulators: ${CLUSTERS} clusters, ${ready.objects} objects seeded through SimCluster.apply in ${(ready.seedMs / 1000).toFixed(1)} s, ${ready.listeners} backends listening (child RSS ${mib(ready.rss).toFixed(0)} MiB)`,
);

// ---- 1. Discovery.start → first complete snapshot ---------------------------------

const configYaml = [
  'federation: { name: bench, domain: bench.test }',
  'clusters:',
  ...Array.from(
    { length: CLUSTERS },
    (_, c) =>
      `  - { name: ${clusterName(c)}, kubeconfig: ${clusterName(c)}.kubeconfig, region: ${regionOf(c)} }`,
  ),
  `watch: { pageSize: ${PAGE_SIZE}, startupTimeout: 120s }`,
  // Every service checked, at the default interval and caps: the most a user can ask.
  // no-checks: what the same federation costs without them, for comparison.
  `health: { active: { scope: ${checksArg === 'checks' ? 'all' : 'annotated'}, type: tcp } }`,
  '',
].join('\n');
const config = parseConfig(configYaml, join(dir, 'fedgate.yaml'));
const log = pino({ level: 'silent' });

await settle();
const baseline = process.memoryUsage();

const isComplete = (svc: FederatedService) =>
  svc.clusters.length === CLUSTERS && svc.clusters.every((m) => m.endpoints.length === ENDPOINTS);

let snapshots = 0;
let completeAt: number | undefined;
let completeVersion = 0;
const checked = new Map<string, FederatedService>();
const complete = new Set<string>();
let onComplete: (() => void) | undefined;

/** The change being waited for in phase 4. */
let pending:
  | { key: string; cluster: string; address: string; ready: boolean; seen: (t: number) => void }
  | undefined;

function onSnapshot(snap: Snapshot): void {
  snapshots++;
  if (pending) {
    const ep = snap.services
      .get(pending.key)
      ?.clusters.find((m) => m.cluster === pending!.cluster)
      ?.endpoints.find((e) => e.addresses[0] === pending!.address);
    if (ep?.conditions.ready === pending.ready) {
      const p = pending;
      pending = undefined;
      p.seen(performance.now());
    }
  }
  if (completeAt !== undefined) return;
  for (const [key, svc] of snap.services) {
    if (checked.get(key) === svc) continue;
    checked.set(key, svc);
    if (isComplete(svc)) complete.add(key);
    else complete.delete(key);
  }
  if (complete.size === SERVICES) {
    completeAt = performance.now();
    completeVersion = snap.version;
    onComplete?.();
  }
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
let discovery: Discovery | undefined = Discovery.start(config, log);
discovery.catalog.subscribe(onSnapshot);
let readyAt: number | undefined;
const readiness = discovery.catalog.whenReady(STARTUP_TIMEOUT_MS).then((r) => {
  readyAt = performance.now();
  return r;
});
await new Promise<void>((resolve) => {
  const timer = setTimeout(resolve, STARTUP_TIMEOUT_MS);
  onComplete = () => {
    clearTimeout(timer);
    resolve();
  };
});
const startupCpu = process.cpuUsage(cpu0);
const readinessResult = await readiness;
const firstCompleteMs = completeAt !== undefined ? completeAt - t0 : undefined;
const memAtComplete = process.memoryUsage();
const peakRssAtComplete = process.resourceUsage().maxRSS * 1024;
console.log(
  firstCompleteMs !== undefined
    ? `first complete snapshot: ${(firstCompleteMs / 1000).toFixed(2)} s (v${completeVersion}, ${snapshots} snapshots; every cluster synced at ${((readyAt! - t0) / 1000).toFixed(2)} s; fedgate CPU ${((startupCpu.user + startupCpu.system) / 1e6).toFixed(1)} s)`
    : `no complete snapshot within ${STARTUP_TIMEOUT_MS / 1000} s: ${complete.size}/${SERVICES} services complete, readiness ${JSON.stringify(readinessResult)}`,
);

// ---- 2. steady state, checks running ----------------------------------------------

const fds = () => readdirSync('/proc/self/fd').length;
const d = discovery;
// One plan per service, as a client in the first cluster's first zone would be routed.
const client = { region: regionOf(0), zone: zoneOf(0, 0), subzone: undefined };
const routeT0 = performance.now();
let planned = 0;
for (const svc of d.catalog.current().services.values()) {
  d.router.plan(svc, client);
  planned++;
}
const routeAllMs = performance.now() - routeT0;

const check0 = d.health.active.stats();
const accepted0 = (await request({ type: 'stats' })).accepted ?? 0;
const steady0 = performance.now();
let maxRss = 0;
let maxFds = 0;
let maxInFlight = 0;
while (performance.now() - steady0 < STEADY_MS) {
  await new Promise((r) => setTimeout(r, SAMPLE_EVERY_MS));
  maxRss = Math.max(maxRss, process.memoryUsage().rss);
  maxFds = Math.max(maxFds, fds());
  maxInFlight = Math.max(maxInFlight, d.health.active.stats().inFlight);
}
const steadySeconds = (performance.now() - steady0) / 1000;
const check1 = d.health.active.stats();
const memSteady = process.memoryUsage();
const fdsSteady = fds();
const simStats = await request({ type: 'stats' });
const probesPerSecond =
  (check1.probes + check1.exhausted - check0.probes - check0.exhausted) / steadySeconds;
const passingPerSecond = ((simStats.accepted ?? 0) - accepted0) / steadySeconds;
await settle();
const memSettled = process.memoryUsage();
console.log(
  `steady (${steadySeconds.toFixed(1)} s, checks running): RSS ${mib(memSteady.rss).toFixed(0)} MiB (max ${mib(maxRss).toFixed(0)}, after GC ${mib(memSettled.rss).toFixed(0)}), ${fdsSteady} descriptors (max ${maxFds}); ${probesPerSecond.toFixed(0)} probes/s (${passingPerSecond.toFixed(0)}/s reached a backend), ${check1.targets} targets every ${(check1.effectiveIntervalMs / 1000).toFixed(0)} s, ≤ ${maxInFlight} in flight; one plan for each of ${planned} services in ${routeAllMs.toFixed(0)} ms; simulators (child) ${mib(simStats.rss!).toFixed(0)} MiB`,
);

// ---- 4. write → snapshot ----------------------------------------------------------

const pingMs: number[] = [];
for (let i = 0; i < PINGS; i++) {
  const t = performance.now();
  await request({ type: 'ping' });
  pingMs.push(performance.now() - t);
}

const random = mulberry32(42);
const notReady = new Set<string>(); // `${c}/${i}/${j}`
const propagationMs: number[] = [];
const requestRttMs: number[] = [];
const childApplyMs: number[] = [];
let missed = 0;
let changePhaseBound = false;
if (completeAt !== undefined) {
  const phaseStart = performance.now();
  for (let n = 0; n < WARMUP_CHANGES + CHANGES; n++) {
    if (performance.now() - phaseStart > CHANGE_PHASE_MS) {
      changePhaseBound = true;
      break;
    }
    const c = Math.floor(random() * CLUSTERS);
    const i = Math.floor(random() * SERVICES);
    const j = Math.floor(random() * ENDPOINTS);
    const id = `${c}/${i}/${j}`;
    const nowReady = notReady.has(id); // flip it
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<number | undefined>((resolve) => {
      timer = setTimeout(() => {
        pending = undefined;
        resolve(undefined);
      }, CHANGE_TIMEOUT_MS);
      pending = {
        key: serviceKey(i),
        cluster: clusterName(c),
        address: address(c, i, j),
        ready: nowReady,
        seen: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      };
    });
    const sent = performance.now();
    const reply = request({ type: 'set', cluster: c, service: i, endpoint: j, ready: nowReady });
    const [at, r] = await Promise.all([seen, reply]);
    const replied = performance.now();
    if (nowReady) notReady.delete(id);
    else notReady.add(id);
    if (n < WARMUP_CHANGES) continue;
    if (at === undefined) {
      missed++;
      continue;
    }
    propagationMs.push(at - sent);
    requestRttMs.push(replied - sent);
    childApplyMs.push(r.applyMs!);
  }
}
const prop = summarize(propagationMs);
console.log(
  `write → snapshot: ${prop.n} changes, p50 ${prop.p50.toFixed(2)} ms, p99 ${prop.p99.toFixed(2)} ms, max ${prop.max.toFixed(2)} ms${missed ? `, ${missed} not seen within ${CHANGE_TIMEOUT_MS} ms` : ''}`,
);

await discovery.stop();
// Phase 3 runs on a heap without the discovery's state, so its GC pauses are its own.
discovery = undefined;
checked.clear();
complete.clear();
await request({ type: 'stop' }, 30_000).catch((e: unknown) => {
  console.error(String(e));
  sim?.kill('SIGKILL');
});
await rm(dir, { recursive: true, force: true });

// ---- 3. Catalog.apply + flush at full scale, in-process ---------------------------

await settle();
const catalog = new Catalog({
  clusters: config.clusters.map((c) => ({ name: c.name, weight: c.weight, region: c.region })),
  log,
});
const created = new Date(Date.now() - 3_600_000).toISOString();
const withCreated = <T extends { metadata: Record<string, unknown> }>(o: T): T => ({
  ...o,
  metadata: { ...o.metadata, creationTimestamp: created },
});
const sliceKeys = Array.from({ length: SERVICES }, (_, i) =>
  objectKey({ metadata: sliceObject(0, i).metadata }),
);
for (let c = 0; c < CLUSTERS; c++) {
  const name = clusterName(c);
  for (const n of nodeObjects(c)) catalog.apply(name, 'nodes', n.metadata.name, trimNode(n));
  for (let i = 0; i < SERVICES; i++) {
    const key = serviceKey(i);
    catalog.apply(name, 'services', key, trimService(withCreated(serviceObject(i))));
    catalog.apply(name, 'serviceexports', key, trimExport(withCreated(exportObject(i))));
    catalog.apply(name, 'endpointslices', sliceKeys[i]!, trimSlice(sliceObject(c, i)));
  }
}
for (let c = 0; c < CLUSTERS; c++) {
  catalog.setStatus({
    cluster: clusterName(c),
    state: 'synced',
    syncedOnce: true,
    lastSyncAt: Date.now(),
    error: undefined,
    exportMode: 'ServiceExport',
  });
}
const full = catalog.flush();
const fullComplete = [...full.services.values()].filter(isComplete).length;
if (fullComplete !== SERVICES) throw new Error(`in-process catalog: ${fullComplete} complete`);

const applyRandom = mulberry32(7);
const inProcNotReady = new Map<string, Set<number>>(); // `${c}/${i}` → endpoints not ready
const applyFlushMs: number[] = [];
const applyOnlyMs: number[] = [];
const flushOnlyMs: number[] = [];
for (let n = 0; n < APPLY_WARMUP + APPLY_ITERATIONS; n++) {
  const c = Math.floor(applyRandom() * CLUSTERS);
  const i = Math.floor(applyRandom() * SERVICES);
  const j = Math.floor(applyRandom() * ENDPOINTS);
  const set = inProcNotReady.get(`${c}/${i}`) ?? new Set<number>();
  inProcNotReady.set(`${c}/${i}`, set);
  if (set.has(j)) set.delete(j);
  else set.add(j);
  // The record as the watcher hands it over; trimming is the watcher's cost, not timed here.
  const record = trimSlice(sliceObject(c, i, set)) as SliceRecord;
  const before = catalog.current().version;
  const t = performance.now();
  catalog.apply(clusterName(c), 'endpointslices', sliceKeys[i]!, record);
  const t1 = performance.now();
  const snap = catalog.flush();
  const t2 = performance.now();
  if (snap.version !== before + 1) throw new Error('in-process catalog: no new snapshot');
  if (n < APPLY_WARMUP) continue;
  applyFlushMs.push(t2 - t);
  applyOnlyMs.push(t1 - t);
  flushOnlyMs.push(t2 - t1);
}
// ---- the figures, for catalog.bench.ts ---------------------------------------------

const applyFlushSummary = summarize(applyFlushMs);
console.log(
  `Catalog.apply + flush: p50 ${applyFlushSummary.p50.toFixed(3)} ms, p99 ${applyFlushSummary.p99.toFixed(3)} ms`,
);
await writeFile(
  outPath,
  JSON.stringify({
    shape,
    endpoints: CLUSTERS * SERVICES * ENDPOINTS,
    seed: { objects: ready.objects, seedMs: ready.seedMs, backendsListening: ready.listeners },
    startup: {
      firstCompleteMs: firstCompleteMs ?? null,
      allSyncedMs: readyAt !== undefined ? readyAt - t0 : null,
      readiness: readinessResult,
      snapshotsUntilComplete: completeVersion,
      cpuUserMs: startupCpu.user / 1000,
      cpuSystemMs: startupCpu.system / 1000,
    },
    memory: {
      baselineRss: baseline.rss,
      atComplete: memAtComplete,
      peakRssUntilComplete: peakRssAtComplete,
      steady: memSteady,
      steadyMaxRss: maxRss,
      steadyAfterGc: memSettled,
      simulatorChildRss: simStats.rss,
    },
    descriptors: { steady: fdsSteady, steadyMax: maxFds },
    checks: {
      windowSeconds: steadySeconds,
      targets: check1.targets,
      effectiveIntervalMs: check1.effectiveIntervalMs,
      probesPerSecond,
      reachedBackendPerSecond: passingPerSecond,
      liveEvery: LIVE_EVERY,
      maxInFlightSeen: maxInFlight,
      exhausted: check1.exhausted,
      configured: config.health.active,
    },
    routing: { plannedServices: planned, planAllMs: routeAllMs },
    catalogApplyFlushMs: applyFlushSummary,
    catalogApplyOnlyMs: summarize(applyOnlyMs),
    catalogFlushOnlyMs: summarize(flushOnlyMs),
    propagationMs: { ...prop, missed, boundHit: changePhaseBound },
    propagationBreakdown: {
      ipcPingRoundTripMs: summarize(pingMs),
      setRequestRoundTripMs: summarize(requestRttMs),
      simulatorWriteMs: summarize(childApplyMs),
    },
    runs: {
      changes: CHANGES,
      warmupChanges: WARMUP_CHANGES,
      applyIterations: APPLY_ITERATIONS,
      pageSize: PAGE_SIZE,
    },
  }),
);
process.exit(0);
