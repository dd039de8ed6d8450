// Question: when a whole member cluster dies (API and backends) under a steady HTTP
// load through fedgate, how many requests fail, and how long until fedgate stops
// sending traffic to it? fedgate runs with its defaults (health checks every 5 s, a
// watch that notices the API refusing): only the listeners are moved to loopback.
//
// Two clusters in one region, fedgate in alpha's zone (so alpha carries the load),
// CONCURRENCY loops each sending one GET at a time. At FAIL_AT, alpha fails: its
// backends stop (connections reset or refused) and its API refuses. Reported:
//   - failed requests (anything but 200) over the whole run;
//   - retries fedgate made after the failure, and when the last one was (the last
//     request that still went to alpha first);
//   - when alpha left the routing plan (ms after the failure), by the plan itself;
//   - latency of the requests around the failure.
// Each of ROUNDS runs starts a fresh federation; medians are reported.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { Discovery } from '../src/discovery.ts';
import { LocalFederation } from '../src/localfed/federation.ts';
import { parseScenario } from '../src/localfed/scenario.ts';
import { createLogger } from '../src/observe/log.ts';
import { ProxyServer } from '../src/proxy/server.ts';
import { median, percentile, printTable, writeResult } from './lib.ts';

const SCENARIO = `
federation: { name: galaxy, domain: example.test }
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 2 }]
  - name: beta
    region: us-east
    zones: [{ name: us-east-b, nodes: 2 }]
services:
  - name: web
    namespace: shop
    ports: [{ name: http, port: 80, targetPort: 8080 }]
    clusters: [alpha, beta]
    replicasPerZone: 3
`;
const HOST = 'web.shop.galaxy.svc.example.test';
const CONCURRENCY = 16;
const RUN_MS = 12_000;
const FAIL_AT_MS = 4_000;
const ROUNDS = 3;
/** 127.236.x.y and 127.237.x.y: used by no test. */
const ADDRESS_BLOCK = 236;

interface Sample {
  /** ms since the start of the run. */
  start: number;
  ms: number;
  status: number;
  cluster: string | undefined;
}

interface RoundResult {
  requests: number;
  failed: number;
  retriesAfterFailure: number;
  lastRetryAfterMs: number | undefined;
  planMovedAfterMs: number | undefined;
  lastAlphaAnswerAfterMs: number | undefined;
  p50Ms: number;
  p99Ms: number;
  p99AroundFailureMs: number;
  maxAroundFailureMs: number;
}

async function round(): Promise<RoundResult> {
  const dir = await mkdtemp(join(tmpdir(), 'fedgate-failover-'));
  const fed = await LocalFederation.start(parseScenario(SCENARIO), {
    addressBlock: ADDRESS_BLOCK,
    apiPort: 0,
  });
  const kubeconfigs: Record<string, string> = {};
  for (const c of fed.clusters) kubeconfigs[c.name] = await c.writeKubeconfig(dir);
  const raw = parse(fed.fedgateConfig(kubeconfigs)) as Record<string, unknown>;
  const config = parseConfig(
    stringify({
      ...raw,
      self: { region: 'us-east', zone: 'us-east-a' },
      dns: { listen: ['127.0.0.1:0'] },
      http: { listen: ['127.0.0.1:0'] },
      admin: { listen: '127.0.0.1:0' },
    }),
    join(dir, 'fedgate.yaml'),
  );
  const log = createLogger('failover-bench').child({}, { level: 'warn' });
  const d = Discovery.start(config, log);
  const ready = await d.catalog.whenReady(15_000);
  if (!ready.ready) throw new Error(`not ready: ${ready.missing.join(', ')}`);
  let retried = 0;
  const proxy = await ProxyServer.start({
    config,
    catalog: d.catalog,
    health: d.health,
    router: d.router,
    log,
    // The proxy counts through its observer only: connect and reset retries, as they happen.
    observer: {
      request: () => {},
      retry: (_service, reason) => {
        if (reason === 'connect' || reason === 'reset') retried++;
      },
    },
  });
  const url = `http://127.0.0.1:${proxy.addresses().http[0]!.port}`;
  const pool = new Pool(url, { connections: CONCURRENCY });
  const samples: Sample[] = [];
  const t0 = performance.now();
  let failedAt = Number.POSITIVE_INFINITY;
  let retriesBefore = 0;
  let retriesSeen = 0;
  let lastRetryAt: number | undefined;
  let planMovedAt: number | undefined;
  const retries = () => retried;
  // Watch the proxy's own counters and plan every 5 ms.
  const watcher = setInterval(() => {
    const now = performance.now() - t0;
    if (now < failedAt) return;
    if (retries() > retriesSeen) {
      lastRetryAt = now;
      retriesSeen = retries();
    }
    if (planMovedAt === undefined) {
      const svc = d.catalog.current().services.get('shop/web');
      const plan = svc && d.router.plan(svc, { region: 'us-east', zone: 'us-east-a' });
      const alphaLoad = plan?.tiers
        .filter((t) => t.targets.some((x) => x.cluster === 'alpha'))
        .reduce((sum, t) => sum + t.load, 0);
      if (alphaLoad === 0) planMovedAt = now;
    }
  }, 5);
  const loop = async () => {
    while (performance.now() - t0 < RUN_MS) {
      const start = performance.now();
      let status = 0;
      let cluster: string | undefined;
      try {
        const r = await pool.request({ path: '/', method: 'GET', headers: { host: HOST } });
        status = r.statusCode;
        const text = await r.body.text();
        if (status === 200) cluster = (JSON.parse(text) as { cluster: string }).cluster;
      } catch {
        status = -1;
      }
      samples.push({ start: start - t0, ms: performance.now() - start, status, cluster });
    }
  };
  const failer = (async () => {
    await new Promise((r) => setTimeout(r, FAIL_AT_MS));
    retriesBefore = retries();
    retriesSeen = retriesBefore;
    failedAt = performance.now() - t0;
    await fed.failCluster('alpha');
  })();
  await Promise.all([...Array.from({ length: CONCURRENCY }, loop), failer]);
  clearInterval(watcher);
  const after = (t: number | undefined) => (t === undefined ? undefined : Math.round(t - failedAt));
  const retriesAfterFailure = retries() - retriesBefore;
  const lastAlpha = samples
    .filter((s) => s.cluster === 'alpha')
    .reduce((m, s) => Math.max(m, s.start + s.ms), 0);
  const times = samples.map((s) => s.ms).sort((a, b) => a - b);
  const around = samples
    .filter((s) => s.start + s.ms >= failedAt && s.start <= failedAt + 1000)
    .map((s) => s.ms)
    .sort((a, b) => a - b);
  await pool.close();
  await proxy.stop();
  await d.stop();
  await fed.stop();
  await rm(dir, { recursive: true, force: true });
  return {
    requests: samples.length,
    failed: samples.filter((s) => s.status !== 200).length,
    retriesAfterFailure,
    lastRetryAfterMs: after(lastRetryAt),
    planMovedAfterMs: after(planMovedAt),
    lastAlphaAnswerAfterMs: lastAlpha > failedAt ? after(lastAlpha) : 0,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    p99AroundFailureMs: percentile(around, 99),
    maxAroundFailureMs: around.at(-1) ?? 0,
  };
}

const rounds: RoundResult[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const r = await round();
  rounds.push(r);
  console.log(
    `round ${i + 1}/${ROUNDS}: ${r.requests} requests, ${r.failed} failed, ${r.retriesAfterFailure} retries, last retry +${r.lastRetryAfterMs ?? '-'} ms, plan moved +${r.planMovedAfterMs ?? 'never'} ms`,
  );
}
const med = (f: (r: RoundResult) => number | undefined) =>
  median(rounds.map(f).filter((x): x is number => x !== undefined));
const summary = {
  requests: med((r) => r.requests),
  failed: Math.max(...rounds.map((r) => r.failed)),
  retriesAfterFailure: med((r) => r.retriesAfterFailure),
  lastRetryAfterMs: med((r) => r.lastRetryAfterMs),
  planMovedAfterMs: med((r) => r.planMovedAfterMs),
  p50Ms: med((r) => r.p50Ms),
  p99Ms: med((r) => r.p99Ms),
  p99AroundFailureMs: med((r) => r.p99AroundFailureMs),
  maxAroundFailureMs: med((r) => r.maxAroundFailureMs),
};
printTable(
  `failover: ${CONCURRENCY} loops of GET through fedgate (defaults), cluster alpha fails at +${FAIL_AT_MS / 1000} s of ${RUN_MS / 1000} s; medians of ${ROUNDS} rounds (failed: the worst round)`,
  Object.entries(summary).map(([k, v]) => ({ figure: k, value: Number(v.toFixed(2)) })),
);
console.log(
  `results: ${await writeResult('failover', { config: { CONCURRENCY, RUN_MS, FAIL_AT_MS, ROUNDS }, summary, rounds })}`,
);
