// Question: how many queries per second does fedgate's DNS answer, flat out, next to
// Knot DNS (Debian's `knot`, one UDP worker) serving the same names with the same
// records, and how fast does it answer at a fixed 20,000 queries/s? Targets from the
// issue: at least 0.6 × Knot's queries per second; p50 under 150 µs at 20 k/s.
// Measured, each as its own function below:
//   1. the query mix: the names fedgate serves for a realistic local federation (MCS
//      A and SRV, federation global/region/zone A, dns-version TXT, both SOAs), and
//      Knot's zones mirrored from fedgate's own answers to them, checked name by name.
//   2. queries per second flat out (dnsperf -c 1 -T 1 -q 200, as in ANCHORS.md),
//      alternating fedgate and Knot for RATE_ROUNDS rounds each after a warm-up,
//      median reported, with each server's CPU share during the run.
//   3. per-query latency at a fixed LATENCY_QPS (dnsperf -Q ... -v), alternating too;
//      dnsperf writes its line per query to a file, not into this process's event loop.
// fedgate's DNS runs in this process, as tests run it, beside the local federation's
// simulated API servers, pods and fedgate's watchers and health checks (idle during
// the runs: the number of catalog snapshots and health changes during them is
// recorded). Knot and dnsperf are separate processes; all share the machine's cores.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import type { Discovery } from '../src/app.ts';
import type { Snapshot } from '../src/catalog/model.ts';
import type { Config } from '../src/config/schema.ts';
import type { ResponderStats } from '../src/dns/responder.ts';
import { DnsServer } from '../src/dns/server.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { endpointId } from '../src/routing/types.ts';
import { DiscoveryEnv, startFederation } from '../test/helpers/discovery-env.ts';
import { type DigResult, dig } from '../test/helpers/tools.ts';
import {
  type DnsperfResult,
  freePort,
  type KnotServer,
  runDnsperf,
  startKnot,
  writeQueriesFile,
} from './dns-knot.ts';
import { median, printTable, summarize, writeResult } from './lib.ts';

const SCENARIO = `
federation: { name: galaxy, domain: example.test }
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 2 }, { name: us-east-b, nodes: 2 }]
  - name: beta
    region: us-east
    zones: [{ name: us-east-c, nodes: 2 }]
  - name: gamma
    region: eu-west
    zones: [{ name: eu-west-a, nodes: 2 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha, beta, gamma], replicasPerZone: 2 }
  - { name: api, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8081 }, { name: grpc, port: 9090 }], clusters: [alpha, gamma], replicasPerZone: 3 }
  - { name: db, namespace: data, headless: true, ports: [{ name: sql, port: 5432 }], clusters: [beta, gamma], replicasPerZone: 2 }
`;
/** 127.230.0.0/16 and up: no test uses it. */
const ADDRESS_BLOCK = 230;
/** Where this fedgate runs: queries from 127.0.0.1 (no locality rule) are answered for it. */
const SELF = { region: 'us-east', zone: 'us-east-a' };
const SETTLE_TIMEOUT_MS = 30_000;
const QUIET_MS = 1_000;

const WARMUP_SECONDS = 3;
const RATE_SECONDS = 10;
const RATE_ROUNDS = 3;
const OUTSTANDING = 200;
const LATENCY_QPS = 20_000;
const LATENCY_SECONDS = 10;
const LATENCY_ROUNDS = 2;
/** dnsperf waits this long after the run for stragglers. */
const TIMEOUT_SECONDS = 1;
const TARGET_RATIO = 0.6;
const TARGET_P50_US = 150;
const CLOCK_TICKS_PER_SECOND = 100; // Linux USER_HZ, for /proc/PID/stat

interface Query {
  name: string;
  type: string;
}

/** One server under load: where it listens and the CPU seconds it has used so far. */
interface Target {
  name: 'fedgate' | 'knot';
  port: number;
  cpuSeconds(): number;
}

// ---- 1. the query mix and Knot's mirrored zones ------------------------------------

/** The names fedgate serves for this federation, from the synced catalog. */
function queryMix(snapshot: Snapshot, config: Config): Query[] {
  const cs = config.federation.clustersetZone;
  const domain = config.federation.domain;
  const fed = config.federation.name;
  const queries: Query[] = [
    { name: `dns-version.${cs}`, type: 'TXT' },
    { name: cs, type: 'SOA' },
    { name: domain, type: 'SOA' },
  ];
  for (const svc of [...snapshot.services.values()].sort((a, b) => a.key.localeCompare(b.key))) {
    const mcs = `${svc.name}.${svc.namespace}.svc.${cs}`;
    queries.push({ name: mcs, type: 'A' });
    for (const p of svc.ports.filter((x) => x.name !== '')) {
      queries.push({ name: `_${p.name}._${p.protocol.toLowerCase()}.${mcs}`, type: 'SRV' });
    }
    const base = `${svc.name}.${svc.namespace}.${fed}.svc`;
    queries.push({ name: `${base}.${domain}`, type: 'A' });
    const zonesByRegion = new Map<string, Set<string>>();
    for (const m of svc.clusters) {
      for (const e of m.endpoints) {
        const { region, zone } = e.locality;
        if (region === undefined) continue;
        const zs = zonesByRegion.get(region) ?? new Set<string>();
        if (zone !== undefined) zs.add(zone);
        zonesByRegion.set(region, zs);
      }
    }
    for (const [region, zones] of [...zonesByRegion].sort()) {
      queries.push({ name: `${base}.${region}.${domain}`, type: 'A' });
      for (const zone of [...zones].sort()) {
        queries.push({ name: `${base}.${zone}.${region}.${domain}`, type: 'A' });
      }
    }
  }
  return queries;
}

const DIG_PLAIN = ['+noedns']; // dnsperf sends no OPT record unless -e: compare what it gets
const msgSize = (r: DigResult) => Number(/;; MSG SIZE {2}rcvd: (\d+)/.exec(r.stdout)?.[1] ?? NaN);
const rrKey = (name: string, type: string) => `${name.toLowerCase()} ${type}`;

/**
 * Knot's zone files, with the owner names and record sets fedgate answers the mix
 * with (plus each apex's NS). A record seen as the owner's own answer wins over the
 * same owner and type seen in another name's answer (a CNAME chain).
 */
async function mirrorZones(
  fedgate: { host: string; port: number },
  queries: Query[],
  origins: string[],
): Promise<{ origin: string; text: string }[]> {
  const direct = new Map<string, { ttl: number; data: Set<string> }>();
  const chained = new Map<string, { ttl: number; data: Set<string> }>();
  const asked = [...queries, ...origins.map((o) => ({ name: o, type: 'NS' }))];
  for (const q of asked) {
    const r = await dig(fedgate, [...DIG_PLAIN, q.name, q.type]);
    if (r.status !== 'NOERROR' || !r.flags.includes('aa') || r.answers.length === 0) {
      throw new Error(`fedgate gave no authoritative answer to ${q.name} ${q.type}:\n${r.stdout}`);
    }
    for (const rr of r.answers) {
      const own = rr.name.toLowerCase() === `${q.name.toLowerCase()}.`;
      const into = own ? direct : chained;
      const key = rrKey(rr.name, rr.type);
      const set = into.get(key) ?? { ttl: rr.ttl, data: new Set<string>() };
      set.data.add(rr.data);
      into.set(key, set);
    }
  }
  for (const [k, v] of chained) if (!direct.has(k)) direct.set(k, v);
  return origins.map((origin) => {
    const lines = [`$ORIGIN ${origin}.`, '$TTL 5'];
    const inZone = (owner: string) =>
      // The longest origin that holds the owner wins (the clusterset zone is never under the domain here).
      origins
        .filter((o) => owner === `${o}.` || owner.endsWith(`.${o}.`))
        .sort((a, b) => b.length - a.length)[0] === origin;
    const entries = [...direct].filter(([k]) => inZone(k.split(' ')[0]!));
    // The SOA first, as a zone file wants it.
    entries.sort(([a], [b]) => Number(b.endsWith(' SOA')) - Number(a.endsWith(' SOA')));
    for (const [k, v] of entries) {
      const [owner, type] = k.split(' ');
      for (const d of v.data) lines.push(`${owner} ${v.ttl} IN ${type} ${d}`);
    }
    return { origin, text: `${lines.join('\n')}\n` };
  });
}

interface MixCheck {
  name: string;
  type: string;
  fedgateBytes: number;
  knotBytes: number;
  sameRecords: boolean;
}

/**
 * Asks both servers every query once and compares: the same rcode, AA, answer count
 * and types (throws otherwise); whether the record data match too (fedgate rotates
 * and may pick a subset; reported, not fatal); and the response sizes.
 */
async function checkMirror(
  fedgate: { host: string; port: number },
  knot: { host: string; port: number },
  queries: Query[],
): Promise<MixCheck[]> {
  const out: MixCheck[] = [];
  for (const q of queries) {
    const [f, k] = [
      await dig(fedgate, [...DIG_PLAIN, q.name, q.type]),
      await dig(knot, [...DIG_PLAIN, q.name, q.type]),
    ];
    const shape = (r: DigResult) =>
      `${r.status} aa=${r.flags.includes('aa')} ${r.answers
        .map((a) => a.type)
        .sort()
        .join(',')}`;
    if (shape(f) !== shape(k)) {
      throw new Error(
        `Knot does not answer ${q.name} ${q.type} as fedgate does:\n--- fedgate\n${f.stdout}\n--- knot\n${k.stdout}`,
      );
    }
    const data = (r: DigResult) =>
      r.answers
        .map((a) => `${a.name.toLowerCase()} ${a.type} ${a.data}`)
        .sort()
        .join('\n');
    out.push({
      name: q.name,
      type: q.type,
      fedgateBytes: msgSize(f),
      knotBytes: msgSize(k),
      sameRecords: data(f) === data(k),
    });
  }
  return out;
}

// ---- 2. and 3.: the load runs ------------------------------------------------------

interface RateRun {
  qps: number;
  lost: number;
  completedPct: number;
  /** The server's CPU seconds over dnsperf's run time: 1 = one core busy. */
  cpuShare: number;
  /** fedgate only: garbage collection in this process during the run. */
  gc?: GcTotals;
}

interface GcTotals {
  count: number;
  totalMs: number;
  maxMs: number;
}

interface LatencyRun {
  qps: number;
  timedOut: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  cpuShare: number;
  gc?: GcTotals;
}

async function load(
  t: Target,
  queriesFile: string,
  seconds: number,
  extra: { rate?: number; verbose?: boolean } = {},
): Promise<{ r: DnsperfResult; cpuShare: number; gc?: GcTotals }> {
  // fedgate answers on this thread: its GC pauses are pauses in answering.
  const gc: GcTotals = { count: 0, totalMs: 0, maxMs: 0 };
  const add = (entries: PerformanceEntry[]) => {
    for (const e of entries) {
      gc.count++;
      gc.totalMs += e.duration;
      gc.maxMs = Math.max(gc.maxMs, e.duration);
    }
  };
  const observer = new PerformanceObserver((list) => add(list.getEntries()));
  if (t.name === 'fedgate') observer.observe({ entryTypes: ['gc'] });
  const cpu0 = t.cpuSeconds();
  let cpu1 = Number.NaN;
  // The load ends when dnsperf does: parsing its output after is not the server's work.
  const ended = () => {
    if (!Number.isNaN(cpu1)) return;
    cpu1 = t.cpuSeconds();
    add(observer.takeRecords());
    observer.disconnect();
  };
  const opts = {
    server: '127.0.0.1',
    port: t.port,
    queriesFile,
    seconds,
    outstanding: OUTSTANDING,
    timeoutSeconds: TIMEOUT_SECONDS,
    ...extra,
  };
  // -v output is a line per query: read through a pipe it would load fedgate's own event loop.
  const r = await runDnsperf({
    ...opts,
    onExit: ended,
    ...(extra.verbose ? { outFile: join(workDir, 'dnsperf.out') } : {}),
  }).finally(ended);
  const noerror = r.rcodes.NOERROR ?? 0;
  if (noerror < r.completed) {
    throw new Error(`${t.name} answered some queries with errors: ${JSON.stringify(r.rcodes)}`);
  }
  const cpuShare = (cpu1 - cpu0) / r.runSeconds;
  return t.name === 'fedgate' ? { r, cpuShare, gc } : { r, cpuShare };
}

/** 2. One flat-out run. */
async function measureRate(t: Target, queriesFile: string): Promise<RateRun> {
  const { r, cpuShare, gc } = await load(t, queriesFile, RATE_SECONDS);
  return { qps: r.qps, lost: r.lost, completedPct: r.completedPct, cpuShare, ...(gc && { gc }) };
}

/** 3. One run at LATENCY_QPS with every query's latency. */
async function measureLatency(t: Target, queriesFile: string): Promise<LatencyRun> {
  const { r, cpuShare, gc } = await load(t, queriesFile, LATENCY_SECONDS, {
    rate: LATENCY_QPS,
    verbose: true,
  });
  const s = summarize(r.latencies!.map((x) => x * 1e6));
  return {
    qps: r.qps,
    timedOut: r.timedOut ?? 0,
    p50Us: s.p50,
    p90Us: s.p90,
    p99Us: s.p99,
    maxUs: s.max,
    cpuShare,
    ...(gc && { gc }),
  };
}

// ---- setup helpers -------------------------------------------------------------------

/** Waits until every endpoint in the catalog passed its health check and nothing moved for QUIET_MS. */
async function settle(d: Discovery): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let last = '';
  let since = Date.now();
  for (;;) {
    const s = d.catalog.current();
    const store = d.health.store;
    const pending = [...s.services.values()].flatMap((svc) =>
      svc.clusters.flatMap((m) =>
        m.endpoints
          .map((e) => endpointId(m.cluster, e.addresses[0]!))
          .filter((id) => store.endpoint(svc.key, id)?.check !== 'healthy'),
      ),
    );
    const state = `${s.version}/${store.version}`;
    if (state !== last) {
      last = state;
      since = Date.now();
    }
    if (pending.length === 0 && Date.now() - since >= QUIET_MS) return;
    if (Date.now() > deadline) {
      throw new Error(`federation did not settle: ${pending.length} endpoints not yet healthy`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** CPU seconds a process has used (user + system), from /proc; NaN if it is gone. */
function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state is field 3, utime 14 and stime 15 (1-based).
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function statsDelta(a: ResponderStats, b: ResponderStats) {
  const queries = b.queries - a.queries;
  const cacheHits = b.cacheHits - a.cacheHits;
  return {
    queries,
    cacheHits,
    cacheHitRatio: queries > 0 ? cacheHits / queries : Number.NaN,
    truncated: b.truncated - a.truncated,
    dropped: b.dropped - a.dropped,
    rrlDropped: b.rrlDropped - a.rrlDropped,
    rrlSlipped: b.rrlSlipped - a.rrlSlipped,
  };
}

// ---- run ------------------------------------------------------------------------

const env = new DiscoveryEnv();
let fed: LocalFederation | undefined;
let dns: DnsServer | undefined;
let knot: KnotServer | undefined;
// Knot's config, zones and database, the query file and dnsperf's -v output. mkdtemp as
// root gives a root-owned folder, which knotd needs.
const workDir = await mkdtemp(join(tmpdir(), 'fedgate-dns-bench-'));
// Other work on the machine skews both servers: the load average at the start says if there was any.
const loadBefore = loadavg()[0]!;
let exitCode = 0;
try {
  const started = await startFederation(env, SCENARIO, ADDRESS_BLOCK, {
    self: SELF,
    dns: { listen: ['127.0.0.1:0'], rrl: { enabled: false } },
  });
  fed = started.fed;
  const { d, config } = started;
  await settle(d);
  // A logger of its own: the env's LogCapture keeps every line in memory.
  dns = await DnsServer.start({
    config,
    catalog: d.catalog,
    health: d.health.store,
    router: d.router,
    log: env.log.logger.child({ component: 'dns' }),
  });
  const udp = dns.addresses().udp[0]!;
  const fedgateAddr = { host: udp.address, port: udp.port };

  // 1. The mix, Knot's zones, and the check that both answer alike.
  const queries = queryMix(d.catalog.current(), config);
  const origins = [config.federation.clustersetZone, config.federation.domain];
  const zones = await mirrorZones(fedgateAddr, queries, origins);
  knot = await startKnot({ dir: workDir, port: await freePort(), zones });
  const knotAddr = { host: knot.host, port: knot.port };
  const mix = await checkMirror(fedgateAddr, knotAddr, queries);
  const queriesFile = join(workDir, 'queries.txt');
  await writeQueriesFile(queriesFile, queries);
  const knotPid = Number((await readFile(join(workDir, 'knot.pid'), 'utf8')).trim());

  const targets: Target[] = [
    { name: 'fedgate', port: fedgateAddr.port, cpuSeconds: processCpuSeconds },
    { name: 'knot', port: knotAddr.port, cpuSeconds: () => procCpuSeconds(knotPid) },
  ];

  // Anything that would drop fedgate's answer cache during the runs.
  let snapshots = 0;
  let healthChanges = 0;
  const unsubscribe = [
    d.catalog.subscribe(() => snapshots++),
    d.health.store.subscribe(() => healthChanges++),
  ];
  const statsBefore = structuredClone(dns.responder.stats);

  for (const t of targets) await load(t, queriesFile, WARMUP_SECONDS);
  const rates: Record<Target['name'], RateRun[]> = { fedgate: [], knot: [] };
  for (let round = 0; round < RATE_ROUNDS; round++) {
    for (const t of targets) {
      const r = await measureRate(t, queriesFile);
      rates[t.name].push(r);
      console.log(
        `rate round ${round + 1}/${RATE_ROUNDS} ${t.name}: ${Math.round(r.qps)} q/s, cpu ${(r.cpuShare * 100).toFixed(0)} %`,
      );
    }
  }
  const latencies: Record<Target['name'], LatencyRun[]> = { fedgate: [], knot: [] };
  for (let round = 0; round < LATENCY_ROUNDS; round++) {
    for (const t of targets) {
      const r = await measureLatency(t, queriesFile);
      latencies[t.name].push(r);
      console.log(
        `latency round ${round + 1}/${LATENCY_ROUNDS} ${t.name}: p50 ${r.p50Us.toFixed(0)} µs, p99 ${r.p99Us.toFixed(0)} µs`,
      );
    }
  }
  for (const u of unsubscribe) u();
  const responder = statsDelta(statsBefore, dns.responder.stats);

  // ---- report ---------------------------------------------------------------------

  const qps = {
    fedgate: median(rates.fedgate.map((r) => r.qps)),
    knot: median(rates.knot.map((r) => r.qps)),
  };
  const ratio = qps.fedgate / qps.knot;
  // Each fedgate round against the Knot round right after it: robust to the machine
  // drifting between rounds (it does, by up to a third, on shared 2-vCPU hosts).
  const pairedRatios = rates.fedgate.map((f, i) => f.qps / rates.knot[i]!.qps);
  const lat = (name: Target['name']) => {
    const runs = latencies[name];
    const m = (f: (r: LatencyRun) => number) => median(runs.map(f));
    return {
      qps: m((r) => r.qps),
      p50Us: m((r) => r.p50Us),
      p90Us: m((r) => r.p90Us),
      p99Us: m((r) => r.p99Us),
      maxUs: Math.max(...runs.map((r) => r.maxUs)),
      timedOut: runs.reduce((a, r) => a + r.timedOut, 0),
      cpuShare: m((r) => r.cpuShare),
    };
  };
  const latency = { fedgate: lat('fedgate'), knot: lat('knot') };
  const ratioPass = ratio >= TARGET_RATIO;
  const p50Pass = latency.fedgate.p50Us < TARGET_P50_US;
  const meanBytes = (k: 'fedgateBytes' | 'knotBytes') =>
    mix.reduce((a, m) => a + m[k], 0) / mix.length;

  const kq = (v: number) => `${(v / 1000).toFixed(1)} k`;
  printTable(
    `dns: queries per second flat out (dnsperf -c 1 -T 1 -q ${OUTSTANDING}, ${RATE_SECONDS} s, median of ${RATE_ROUNDS} alternating rounds)`,
    (['fedgate', 'knot'] as const).map((name) => ({
      server: name,
      'q/s': kq(qps[name]),
      rounds: rates[name].map((r) => kq(r.qps)).join(' / '),
      'server cpu': `${(median(rates[name].map((r) => r.cpuShare)) * 100).toFixed(0)} %`,
      lost: rates[name].reduce((a, r) => a + r.lost, 0),
      'vs knot': name === 'knot' ? '1.00' : ratio.toFixed(2),
      'per round': name === 'knot' ? '' : pairedRatios.map((x) => x.toFixed(2)).join(' / '),
      target: name === 'fedgate' ? `>= ${TARGET_RATIO.toFixed(2)} x knot` : '',
      result: name === 'fedgate' ? (ratioPass ? 'pass' : 'FAIL') : '',
    })),
  );
  printTable(
    `dns: latency at ${kq(LATENCY_QPS)} q/s (dnsperf -Q ${LATENCY_QPS} -v, ${LATENCY_SECONDS} s, median of ${LATENCY_ROUNDS} alternating rounds)`,
    (['fedgate', 'knot'] as const).map((name) => ({
      server: name,
      'q/s': kq(latency[name].qps),
      'p50 µs': latency[name].p50Us.toFixed(0),
      'p90 µs': latency[name].p90Us.toFixed(0),
      'p99 µs': latency[name].p99Us.toFixed(0),
      'max µs': latency[name].maxUs.toFixed(0),
      'timed out': latency[name].timedOut,
      'server cpu': `${(latency[name].cpuShare * 100).toFixed(0)} %`,
      target: name === 'fedgate' ? `p50 < ${TARGET_P50_US} µs` : '',
      result: name === 'fedgate' ? (p50Pass ? 'pass' : 'FAIL') : '',
    })),
  );
  printTable('dns: the query mix and its answers (one each, no EDNS, as dnsperf asks)', [
    { figure: 'queries in the mix', value: `${queries.length}` },
    {
      figure: 'response bytes, mean: fedgate / knot',
      value: `${meanBytes('fedgateBytes').toFixed(1)} / ${meanBytes('knotBytes').toFixed(1)}`,
    },
    {
      figure: 'responses Knot makes larger (it adds the SRV target A records as additional data)',
      value: `${mix.filter((m) => m.knotBytes > m.fedgateBytes).length} of ${mix.length}`,
    },
    {
      figure: 'answers with the same records in both',
      value: `${mix.filter((m) => m.sameRecords).length} of ${mix.length}`,
    },
    {
      figure: 'fedgate answer cache hits during the runs',
      value: `${(responder.cacheHits / 1e6).toFixed(2)} M of ${(responder.queries / 1e6).toFixed(2)} M (${(responder.cacheHitRatio * 100).toFixed(3)} %)`,
    },
    {
      figure: 'fedgate GC during flat-out / latency runs: pauses, total, longest',
      value: [rates.fedgate, latencies.fedgate]
        .map((runs) => {
          const gcs = runs.map((r) => r.gc!);
          const total = gcs.reduce((a, g) => a + g.totalMs, 0);
          const count = gcs.reduce((a, g) => a + g.count, 0);
          return `${count}, ${total.toFixed(0)} ms, ${Math.max(...gcs.map((g) => g.maxMs)).toFixed(1)} ms`;
        })
        .join(' / '),
    },
    {
      figure: 'catalog snapshots / health changes during the runs',
      value: `${snapshots} / ${healthChanges}`,
    },
    {
      figure: '1-minute load average before the run / after',
      value: `${loadBefore.toFixed(2)} / ${loadavg()[0]!.toFixed(2)}`,
    },
  ]);
  console.log(`
How measured: a local federation (3 clusters, 2 regions, 4 zones, 3 services) with fedgate's
discovery, health checks and DNS (RRL off, as Knot runs) in this process; Knot 3 with one UDP
worker in its own, serving zones mirrored from fedgate's answers. dnsperf replays the mix from
127.0.0.1 (answered for fedgate's own locality ${SELF.region}/${SELF.zone}), alternating servers;
with -v it writes to a file, not into this process. Server cpu: CPU seconds over dnsperf's run
time (fedgate: this whole process). Per round: each fedgate round over the Knot round after it.`);

  const path = await writeResult('dns', {
    config: {
      warmupSeconds: WARMUP_SECONDS,
      rateSeconds: RATE_SECONDS,
      rateRounds: RATE_ROUNDS,
      outstanding: OUTSTANDING,
      latencyQps: LATENCY_QPS,
      latencySeconds: LATENCY_SECONDS,
      latencyRounds: LATENCY_ROUNDS,
      timeoutSeconds: TIMEOUT_SECONDS,
      self: SELF,
      addressBlock: ADDRESS_BLOCK,
    },
    queries: mix,
    queriesPerSecond: { ...qps, ratio, pairedRatios, rounds: rates },
    latency: { ...latency, rounds: latencies },
    responder,
    duringRuns: { snapshots, healthChanges },
    loadAverage: { before: loadBefore, after: loadavg()[0]! },
    targets: {
      ratioToKnot: { target: TARGET_RATIO, value: ratio, pass: ratioPass },
      p50MicrosAt20k: { target: TARGET_P50_US, value: latency.fedgate.p50Us, pass: p50Pass },
    },
  });
  console.log(`results: ${path}`);
} catch (e) {
  console.error(e);
  exitCode = 1;
} finally {
  await knot?.stop();
  await dns?.stop();
  await env.cleanup();
  await fed?.stop();
  await rm(workDir, { recursive: true, force: true });
}
process.exitCode = exitCode;
