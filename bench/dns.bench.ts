// Question: how many queries per second does fedgate's DNS answer, flat out, next to
// two authoritative servers serving the same names with the same records, Knot DNS
// (Debian's `knot`, one UDP worker) and CoreDNS (what Submariner Lighthouse and k8gb
// answer from: upstream's file plugin, tools/coredns), and next to the bare Node
// floor (one dgram socket answering from cached packets: the ceiling for one Node
// process); and how fast does each answer at a fixed 20,000 queries/s? And what do
// worker processes add: `fedgate start --workers 1` and `--workers 2`, measured in
// the same run. Targets: at least 0.6 × Knot's queries per second;
// p50 under 150 µs at 20 k/s.
// Measured:
//   1. the query mix: the names fedgate serves for a realistic local federation (MCS
//      A and SRV, federation global/region/zone A, dns-version TXT, both SOAs); Knot's
//      and CoreDNS's zones mirrored from fedgate's own answers to them, the floor's
//      packets taken from fedgate byte for byte; every anchor checked name by name
//      against each fedgate (bench/dns-mix.ts).
//   2. queries per second flat out (dnsperf -c 16 -T 1 -q 200: ANCHORS.md's command
//      with 16 clients instead of 1, so the queries come from 16 source ports, which
//      SO_REUSEPORT spreads over the workers; one port would land on one worker),
//      alternating the servers for RATE_ROUNDS rounds each after a warm-up, median
//      reported, with each server's CPU share during the run (bench/dns-load.ts).
//   3. per-query latency at a fixed LATENCY_QPS (dnsperf -Q ... -v), alternating too;
//      dnsperf writes its line per query to a file, not into this process's event loop.
// Each fedgate is `fedgate start` as operators run it, a child process (and its
// workers) on a config file for the local federation, which runs in this process
// with a discovery of its own (to know the names, and to mirror the anchors' zones
// from a DnsServer of its own). Knot, CoreDNS, the floor and dnsperf are separate
// processes; all share the machine's cores.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DnsServer } from '../src/dns/server.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { DiscoveryEnv } from '../test/helpers/discovery-env.ts';
import { freePort } from '../test/helpers/ports.ts';
import { startCoreDns } from './dns-coredns.ts';
import {
  type FedgateChild,
  procCpuSeconds,
  processCpuSeconds,
  startFedgate,
  startInProcessFedgate,
} from './dns-fedgate.ts';
import { cacheAnswers, startFloor } from './dns-floor.ts';
import { startKnot, writeQueriesFile } from './dns-knot.ts';
import {
  type LatencyRun,
  type LoadSettings,
  load,
  measureLatency,
  measureRate,
  type RateRun,
  type Target,
} from './dns-load.ts';
import { checkMirror, mirrorZones, queryMix } from './dns-mix.ts';
import type { DnsProcess } from './dns-process.ts';
import { report, TARGETS, type TargetName } from './dns-report.ts';
import { writeResult } from './lib.ts';

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

const WARMUP_SECONDS = 3;
const RATE_SECONDS = 10;
const RATE_ROUNDS = 3;
/** dnsperf clients, each its own socket: the source ports SO_REUSEPORT spreads by. */
const CLIENTS = 16;
const OUTSTANDING = 200;
const LATENCY_QPS = 20_000;
const LATENCY_SECONDS = 10;
const LATENCY_ROUNDS = 2;
/** dnsperf waits this long after the run for stragglers. */
const TIMEOUT_SECONDS = 1;
const TARGET_RATIO = 0.6;
const TARGET_P50_US = 150;

const env = new DiscoveryEnv();
let fed: LocalFederation | undefined;
let dns: DnsServer | undefined;
const anchors: DnsProcess[] = [];
const children: FedgateChild[] = [];
// Knot's config, zones and database, CoreDNS's Corefile and zones, the floor's answers,
// the query file and dnsperf's -v output. mkdtemp as root gives a root-owned folder,
// which knotd needs.
const workDir = await mkdtemp(join(tmpdir(), 'fedgate-dns-bench-'));
// Other work on the machine skews every server: the load average at the start says if there was any.
const loadBefore = loadavg()[0] ?? Number.NaN;
let exitCode = 0;
try {
  const inproc = await startInProcessFedgate(env, SCENARIO, ADDRESS_BLOCK, SELF);
  ({ fed, dns } = inproc);
  const { base, config, discovery: d, address: mirrorAddr } = inproc;
  const dir = await env.dir();

  // 1. The mix, the anchors' zones and packets, and the check that every server answers alike.
  const queries = queryMix(d.catalog.current(), config);
  const origins = [config.federation.clustersetZone, config.federation.domain];
  const zones = await mirrorZones(mirrorAddr, queries, origins);
  const knot = await startKnot({
    dir: join(workDir, 'knot'),
    port: await freePort({ udp: true }),
    zones,
  });
  anchors.push(knot);
  const coredns = await startCoreDns({
    dir: join(workDir, 'coredns'),
    port: await freePort({ udp: true }),
    zones,
  });
  anchors.push(coredns);
  const w1 = await startFedgate(1, base, dir);
  children.push(w1);
  const w2 = await startFedgate(2, base, dir);
  children.push(w2);
  // The floor answers with fedgate's own packets, as the operators' process sends them.
  const floor = await startFloor({
    dir: workDir,
    port: await freePort({ udp: true }),
    answers: await cacheAnswers({ host: '127.0.0.1', port: w1.dnsPort }, queries),
    apexes: origins,
  });
  anchors.push(floor);
  const f1 = { host: '127.0.0.1', port: w1.dnsPort };
  const f2 = { host: '127.0.0.1', port: w2.dnsPort };
  // Checked against both fedgates (each throws on an answer of another shape); w1's figures kept.
  const check = async (name: string, a: DnsProcess) => {
    const at = { name, host: a.host, port: a.port };
    await checkMirror(f2, at, queries);
    return checkMirror(f1, at, queries);
  };
  const mix = {
    knot: await check('knot', knot),
    coredns: await check('coredns', coredns),
    floor: await check('floor', floor),
  };
  const settings: LoadSettings = {
    queriesFile: join(workDir, 'queries.txt'),
    workDir,
    clients: CLIENTS,
    outstanding: OUTSTANDING,
    timeoutSeconds: TIMEOUT_SECONDS,
  };
  await writeQueriesFile(settings.queriesFile, queries);

  const byPid = (pid: number) => () => procCpuSeconds(pid);
  const targets: (Target & { name: TargetName })[] = [
    { name: 'fedgate-w1', port: w1.dnsPort, cpuSeconds: w1.cpuSeconds },
    { name: 'fedgate-w2', port: w2.dnsPort, cpuSeconds: w2.cpuSeconds },
    // The DnsServer the zones were mirrored from, in this process: what earlier runs measured.
    { name: 'fedgate-inproc', port: mirrorAddr.port, cpuSeconds: processCpuSeconds },
    { name: 'knot', port: knot.port, cpuSeconds: byPid(knot.pid) },
    { name: 'coredns', port: coredns.port, cpuSeconds: byPid(coredns.pid) },
    { name: 'floor', port: floor.port, cpuSeconds: byPid(floor.pid) },
  ];
  const answeredBefore = await w2.answered();

  const perTarget = <T>() =>
    Object.fromEntries(TARGETS.map((n) => [n, [] as T[]])) as Record<TargetName, T[]>;
  for (const t of targets) await load(t, settings, WARMUP_SECONDS);
  const rates = perTarget<RateRun>();
  for (let round = 0; round < RATE_ROUNDS; round++) {
    for (const t of targets) {
      const r = await measureRate(t, settings, RATE_SECONDS);
      rates[t.name].push(r);
      console.log(
        `rate round ${round + 1}/${RATE_ROUNDS} ${t.name}: ${Math.round(r.qps)} q/s, cpu ${(r.cpuShare * 100).toFixed(0)} %`,
      );
    }
  }
  const latencies = perTarget<LatencyRun>();
  for (let round = 0; round < LATENCY_ROUNDS; round++) {
    for (const t of targets) {
      const r = await measureLatency(t, settings, LATENCY_SECONDS, LATENCY_QPS);
      latencies[t.name].push(r);
      console.log(
        `latency round ${round + 1}/${LATENCY_ROUNDS} ${t.name}: p50 ${r.p50Us.toFixed(0)} µs, p99 ${r.p99Us.toFixed(0)} µs`,
      );
    }
  }
  // Each worker's share of what it was sent, from its own counter in /metrics.
  const answeredByWorker = (await w2.answered()).map((n, w) => n - (answeredBefore[w] ?? 0));

  const settingsForReport = {
    clients: CLIENTS,
    outstanding: OUTSTANDING,
    rateSeconds: RATE_SECONDS,
    rateRounds: RATE_ROUNDS,
    latencyQps: LATENCY_QPS,
    latencySeconds: LATENCY_SECONDS,
    latencyRounds: LATENCY_ROUNDS,
    targetRatio: TARGET_RATIO,
    targetP50Us: TARGET_P50_US,
  };
  const figures = report(settingsForReport, {
    rates,
    latencies,
    mix,
    answeredByWorker,
    loadAverage: { before: loadBefore, after: loadavg()[0] ?? Number.NaN },
  });
  console.log(`
How measured: a local federation (3 clusters, 2 regions, 4 zones, 3 services); each fedgate is
\`fedgate start --workers N\` on it (RRL off, as Knot runs), a child process with its workers;
Knot 3 with one UDP worker and CoreDNS (file and minimal plugins, no cache, no log; Go's GOMAXPROCS)
each in its own process, serving zones mirrored from fedgate's answers; the floor, one Node
process with one dgram socket, answers with fedgate's packets, ID patched. dnsperf replays the
mix from 127.0.0.1 (answered for fedgate's own locality ${SELF.region}/${SELF.zone}) with
${CLIENTS} clients (source ports), alternating servers; with -v it writes to a file. Server
cpu: CPU seconds over dnsperf's run time (fedgate: its primary and workers together;
fedgate-inproc: a DnsServer in this bench process, as earlier runs measured, with this process's
CPU). Per round: each round over the Knot round of the same pass.`);

  const path = await writeResult('dns', {
    config: {
      warmupSeconds: WARMUP_SECONDS,
      timeoutSeconds: TIMEOUT_SECONDS,
      ...settingsForReport,
      self: SELF,
      addressBlock: ADDRESS_BLOCK,
      command: 'npm run bench -- dns',
    },
    ...figures,
  });
  console.log(`results: ${path}`);
} catch (e) {
  console.error(e);
  for (const c of children) console.error(c.output().slice(-4000));
  for (const a of anchors) console.error(a.log().slice(-4000));
  exitCode = 1;
} finally {
  await Promise.all(children.map((c) => c.stop()));
  await Promise.all(anchors.map((a) => a.stop()));
  await dns?.stop();
  await env.cleanup();
  await fed?.stop();
  await rm(workDir, { recursive: true, force: true });
}
process.exitCode = exitCode;
