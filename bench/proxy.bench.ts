// Question: how many requests per second does fedgate's HTTP proxy carry, with what
// latency and CPU per request, next to nginx (ANCHORS.md's reverse proxy: one worker,
// upstream keep-alive) and next to the bare Node floor (node:http in front of an undici
// Pool and nothing else) in front of the same backend, and what does the backend manage
// alone? A ratio to nginx alone says as much about the machine as about fedgate
// (ANCHORS.md, second machine): the floor says what Node allows. HTTP/1.1 clients are
// measured with wrk (-t2 -c64 -d10s --latency, as in ANCHORS.md), four targets:
//   direct       wrk → backend
//   nginx        wrk → nginx → backend
//   bare         wrk → bench/bare-forwarder.ts (its own process) → backend
//   fedgate      wrk → fedgate's proxy (`fedgate start --workers 1`, its own process) → backend
//   fedgate-routes  the same, in a second fedgate process holding 1,000 HTTPRoutes × 10
//                rules (bench/route-set.ts) on its listener, none for the benchmark's Host:
//                every request looks the table up, then takes Host routing
//   fedgate-trace-1, fedgate-trace-100  fedgate with tracing on, 1 % and 100 % of the
//                requests sampled (wrk sends no traceparent: each is a new trace), spans
//                exported with OTLP/HTTP to a sink that keeps nothing (bench/otlp-discard.ts);
//                started only when measured
// and HTTP/2 clients with h2load (-c8 -m8: 64 streams in flight, -t1), the same GET and
// backend (HTTP/1.1 behind every proxy), through the same nginx and fedgate processes:
//   nginx-h2     h2load → nginx `listen … ssl http2` (h2 by ALPN) → backend
//   nginx-h2c    h2load → nginx `listen … http2` (cleartext, prior knowledge) → backend
//   fedgate-h2   h2load → fedgate's TLS listener (h2 by ALPN) → backend
//   fedgate-h2c  h2load → fedgate's plain listener (h2c, prior knowledge) → backend
// The backend is src/localfed's Backend, the sample pod fedgate proxies to in a local
// federation, in a Node process of its own: the proxy under test must not share an
// event loop with it. Each proxy is one process (one nginx worker), as the machine has
// two cores that the load tool and the backend share with it. Each round measures every
// target once (a 2 s warm-up, then the run), alternating, so drift on a shared 2-vCPU
// machine hits all alike; medians of ROUNDS rounds are reported. CPU per request is the
// process's utime + stime (/proc/PID/stat) over the run, over the requests counted.
// Targets: fedgate ≥ 0.8 × the bare forwarder's req/s, fedgate's p99 ≤ 2 × nginx's
// (HTTP/1.1), fedgate-routes ≥ 0.95 × fedgate's req/s; the HTTP/2 rows report their ratio to nginx over the same protocol.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { h2loadReport, h2loadVersion, runH2load } from './h2load.ts';
import { runWrk, wrkVersion } from './http-anchors.ts';
import { freePort, printTable, writeResult } from './lib.ts';
import {
  r2,
  type Scratch,
  tableRow,
  targetMet,
  targetRow,
  targetsJson,
  unmeasured,
  withScratch,
} from './load-report.ts';
import { comparisons, type LoadTarget, measureRounds, PROXY_ROUNDS } from './load-rounds.ts';
import { nginxVersion, startNginxProxy } from './nginx.ts';
import { startOtlpDiscard } from './otlp-discard.ts';
import {
  HOST,
  POD,
  probe,
  probeH2,
  probeRouted,
  startBackendProcess,
  startBareForwarder,
  startFedgate,
  UPSTREAM,
  writeBenchCertificate,
} from './proxy-targets.ts';
import { forApply, PROBE_HOST, probeRoute, ROUTE_SET, routeSetObjects } from './route-set.ts';

const THREADS = 2;
const CONNECTIONS = 64;
/** h2load: connections × streams each = CONNECTIONS requests in flight, as wrk's. */
const H2_CLIENTS = 8;
const H2_STREAMS = 8;
const CFG = PROXY_ROUNDS;
const ROUNDS = CFG.rounds;

/** fedgate's req/s over the bare forwarder's, at least. */
const TARGET_FEDGATE_TO_BARE = 0.8;
/** fedgate's p99 over nginx's, at most. */
const TARGET_FEDGATE_P99_TO_NGINX = 2;
/** fedgate with the route table over fedgate without, req/s, at least. */
const TARGET_ROUTES_TO_FEDGATE = 0.95;

const ALL = [
  'direct',
  'nginx',
  'bare',
  'fedgate',
  'fedgate-routes',
  'fedgate-trace-1',
  'fedgate-trace-100',
  'nginx-h2',
  'nginx-h2c',
  'fedgate-h2',
  'fedgate-h2c',
] as const;
type TargetName = (typeof ALL)[number];
/**
 * The rows measured: FEDGATE_PROXY_ROWS (comma-separated names) for a shorter run of a
 * few, all by default. Every process starts either way.
 */
const ROWS: readonly string[] = process.env.FEDGATE_PROXY_ROWS?.split(',') ?? ALL;
/** The nginx row each row is compared with: the one its clients speak the same protocol to. */
const ANCHOR: Record<TargetName, TargetName> = {
  direct: 'nginx',
  nginx: 'nginx',
  bare: 'nginx',
  fedgate: 'nginx',
  'fedgate-routes': 'nginx',
  'fedgate-trace-1': 'nginx',
  'fedgate-trace-100': 'nginx',
  'nginx-h2': 'nginx-h2',
  'nginx-h2c': 'nginx-h2c',
  'fedgate-h2': 'nginx-h2',
  'fedgate-h2c': 'nginx-h2c',
};

interface Target extends LoadTarget {
  name: TargetName;
  /** One request through it must reach the backend intact before any load. */
  probe(): Promise<void>;
}

const wrkTarget = (name: TargetName, url: string, cpu?: () => number): Target => ({
  name,
  probe: () => probe(url),
  load: async (durationSec) => {
    const r = await runWrk({
      url,
      host: HOST,
      threads: THREADS,
      connections: CONNECTIONS,
      durationSec,
    });
    return { ...r, errors: { ...r.errors } };
  },
  ...(cpu && { proxyCpuSeconds: cpu }),
});

function h2Target(
  name: TargetName,
  url: string,
  dir: string,
  ca: string,
  cpu: () => number,
): Target {
  return {
    name,
    probe: () => probeH2(url, url.startsWith('https:') ? ca : undefined),
    load: async (durationSec) =>
      h2loadReport(
        await runH2load({
          url,
          authority: HOST,
          clients: H2_CLIENTS,
          streams: H2_STREAMS,
          durationSec,
          logFile: join(dir, `h2load-${name}.log`),
        }),
      ),
    proxyCpuSeconds: cpu,
  };
}

/** CPU per request `a` spends beyond `b`, µs; null when either was not measured. */
function extraUs(
  a: { proxyUsPerRequest?: number | undefined } | undefined,
  b: { proxyUsPerRequest?: number | undefined } | undefined,
): number | null {
  return a?.proxyUsPerRequest !== undefined && b?.proxyUsPerRequest !== undefined
    ? a.proxyUsPerRequest - b.proxyUsPerRequest
    : null;
}

// ---- run -------------------------------------------------------------------------------

async function main({ dir, onEnd }: Scratch): Promise<number> {
  // Other work on the machine skews every target: the load average says if there was any.
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const cert = await writeBenchCertificate(join(dir, 'tls'));
  const backend = await startBackendProcess();
  onEnd(backend.stop);
  const [h1Port, h2Port, h2cPort] = [await freePort(), await freePort(), await freePort()];
  const nginx = await startNginxProxy({
    listen: [
      { port: h1Port },
      { port: h2Port, tls: true, http2: true },
      { port: h2cPort, http2: true },
    ],
    upstreams: [UPSTREAM],
    certificate: cert,
    dir: join(dir, 'nginx'),
  });
  onEnd(nginx.stop);
  const h2 = (name: TargetName, url: string, cpu: () => number) =>
    h2Target(name, url, dir, cert.ca, cpu);
  const candidates: Target[] = [
    wrkTarget('direct', `http://${UPSTREAM}/`),
    wrkTarget('nginx', nginx.url, nginx.cpuSeconds),
    h2('nginx-h2', `https://127.0.0.1:${h2Port}/`, nginx.cpuSeconds),
    h2('nginx-h2c', `http://127.0.0.1:${h2cPort}/`, nginx.cpuSeconds),
  ];
  const skipped = unmeasured<TargetName>();
  try {
    const bare = await startBareForwarder(UPSTREAM);
    onEnd(bare.stop);
    candidates.push(wrkTarget('bare', bare.url, bare.cpuSeconds));
  } catch (e) {
    skipped.mark('bare', e);
  }
  try {
    const fedgate = await startFedgate(UPSTREAM, join(dir, 'fedgate'), { tls: cert });
    onEnd(fedgate.stop);
    candidates.push(
      wrkTarget('fedgate', fedgate.url, fedgate.cpuSeconds),
      h2('fedgate-h2', fedgate.tlsUrl ?? '', fedgate.cpuSeconds),
      h2('fedgate-h2c', fedgate.url, fedgate.cpuSeconds),
    );
  } catch (e) {
    for (const name of ['fedgate', 'fedgate-h2', 'fedgate-h2c'] as const) skipped.mark(name, e);
  }
  try {
    const routed = await startFedgate(UPSTREAM, join(dir, 'fedgate-routes'), {
      gatewayObjects: [...forApply(routeSetObjects(ROUTE_SET)), probeRoute()],
    });
    onEnd(routed.stop);
    await probeRouted(routed.url, PROBE_HOST);
    candidates.push(wrkTarget('fedgate-routes', routed.url, routed.cpuSeconds));
  } catch (e) {
    skipped.mark('fedgate-routes', e);
  }
  // Two more fedgate processes: only when their rows are asked for.
  const traced = (['fedgate-trace-1', 'fedgate-trace-100'] as const).filter((n) =>
    ROWS.includes(n),
  );
  if (traced.length > 0) {
    const sink = await startOtlpDiscard();
    onEnd(sink.stop);
    for (const name of traced) {
      try {
        const ratio = name === 'fedgate-trace-1' ? 0.01 : 1;
        const f = await startFedgate(UPSTREAM, join(dir, name), {
          tracing: { enabled: true, endpoint: sink.endpoint, samplingRatio: ratio },
        });
        onEnd(f.stop);
        candidates.push(wrkTarget(name, f.url, f.cpuSeconds));
      } catch (e) {
        skipped.mark(name, e);
      }
    }
  }
  // In ALL's order, so each round runs them alike; those whose probe fails are left out.
  const targets: Target[] = [];
  for (const name of ALL) {
    const t = candidates.find((c) => c.name === name);
    if (t === undefined || !ROWS.includes(name)) continue;
    try {
      await t.probe();
      targets.push(t);
    } catch (e) {
      skipped.mark(name, e);
    }
  }

  const versions = {
    nginx: nginxVersion(),
    wrk: wrkVersion(),
    h2load: h2loadVersion(),
    node: process.version,
  };
  const { runs, quietWaitSeconds, loadAtStart } = await measureRounds(targets, backend, CFG);

  // ---- report -----------------------------------------------------------------------

  const { med, ratio, paired } = comparisons(runs);
  const fedgateToBare = ratio('fedgate', 'bare');
  const fedgateToNginx = ratio('fedgate', 'nginx');
  const targetsMet = {
    fedgateToBareRequestsPerSec: targetMet(
      fedgateToBare?.requestsPerSec,
      '>=',
      TARGET_FEDGATE_TO_BARE,
      paired('fedgate', 'bare'),
    ),
    fedgateP99ToNginxP99: targetMet(fedgateToNginx?.p99, '<=', TARGET_FEDGATE_P99_TO_NGINX),
    routesToFedgateRequestsPerSec: targetMet(
      ratio('fedgate-routes', 'fedgate')?.requestsPerSec,
      '>=',
      TARGET_ROUTES_TO_FEDGATE,
      paired('fedgate-routes', 'fedgate'),
    ),
  };
  const ratios = {
    fedgateToBare,
    fedgateToNginx,
    routesToFedgate: ratio('fedgate-routes', 'fedgate'),
    trace1ToFedgate: ratio('fedgate-trace-1', 'fedgate'),
    trace100ToFedgate: ratio('fedgate-trace-100', 'fedgate'),
    /** CPU tracing adds per request, µs: 1 % and 100 % sampled. */
    trace1ExtraUsPerRequest: extraUs(med['fedgate-trace-1'], med.fedgate),
    trace100ExtraUsPerRequest: extraUs(med['fedgate-trace-100'], med.fedgate),
    bareToNginx: ratio('bare', 'nginx'),
    directToNginx: ratio('direct', 'nginx'),
    pairedFedgateToNginx: paired('fedgate', 'nginx'),
    pairedBareToNginx: paired('bare', 'nginx'),
    /** CPU fedgate spends per request beyond the bare forwarder, µs. */
    fedgateExtraUsPerRequest:
      med.fedgate?.proxyUsPerRequest !== undefined && med.bare?.proxyUsPerRequest !== undefined
        ? med.fedgate.proxyUsPerRequest - med.bare.proxyUsPerRequest
        : null,
    fedgateH2ToNginxH2: ratio('fedgate-h2', 'nginx-h2'),
    fedgateH2cToNginxH2c: ratio('fedgate-h2c', 'nginx-h2c'),
    pairedFedgateH2ToNginxH2: paired('fedgate-h2', 'nginx-h2'),
    pairedFedgateH2cToNginxH2c: paired('fedgate-h2c', 'nginx-h2c'),
    /** HTTP/2 clients over HTTP/1.1 ones, the same proxy process. */
    fedgateH2ToFedgate: ratio('fedgate-h2', 'fedgate'),
    nginxH2ToNginx: ratio('nginx-h2', 'nginx'),
  };

  const units = { one: 'req', rate: 'req/s', tool: 'client' };
  printTable(
    `proxy: wrk -t${THREADS} -c${CONNECTIONS} -d${CFG.runSeconds}s --latency (HTTP/1.1 rows); h2load -c${H2_CLIENTS} -m${H2_STREAMS} -t1 -D${CFG.runSeconds} (-h2, -h2c rows); Host: ${HOST}; median of ${ROUNDS} alternating rounds`,
    ALL.map((name) => ({
      ...tableRow(name, med[name], runs[name], units, ratio(name, ANCHOR[name])),
      ...(med[name] && { 'req/s vs bare': r2(ratio(name, 'bare')?.requestsPerSec) }),
    })),
  );
  /** A ratio reported with no target set for it. */
  const noted = (value: number | undefined, perRound: number[] | null) => ({
    value: value ?? null,
    paired: perRound,
    target: '(no target)',
    verdict: '',
  });
  printTable('targets', [
    targetRow('fedgate / bare forwarder, req/s', targetsMet.fedgateToBareRequestsPerSec),
    targetRow('fedgate p99 / nginx p99', targetsMet.fedgateP99ToNginxP99),
    targetRow(
      `fedgate-routes (${ROUTE_SET.routes} routes) / fedgate, req/s`,
      targetsMet.routesToFedgateRequestsPerSec,
    ),
    targetRow(
      'fedgate-trace-1 / fedgate, req/s',
      noted(ratios.trace1ToFedgate?.requestsPerSec, paired('fedgate-trace-1', 'fedgate')),
    ),
    targetRow(
      'fedgate-trace-100 / fedgate, req/s',
      noted(ratios.trace100ToFedgate?.requestsPerSec, paired('fedgate-trace-100', 'fedgate')),
    ),
    targetRow(
      'bare forwarder / nginx, req/s',
      noted(ratios.bareToNginx?.requestsPerSec, ratios.pairedBareToNginx),
    ),
    targetRow(
      'fedgate-h2 / nginx-h2, req/s',
      noted(ratios.fedgateH2ToNginxH2?.requestsPerSec, ratios.pairedFedgateH2ToNginxH2),
    ),
    targetRow(
      'fedgate-h2c / nginx-h2c, req/s',
      noted(ratios.fedgateH2cToNginxH2c?.requestsPerSec, ratios.pairedFedgateH2cToNginxH2c),
    ),
  ]);
  console.log(`
How measured: the backend is src/localfed's Backend (${POD.pod} on ${UPSTREAM}; GET / answers
JSON, ${med.direct ? `${Math.round(med.direct.responseBytes)} bytes with headers` : 'its size read on the direct row, not measured in this run'}) in a Node process of its own. nginx ${versions.nginx} as in
ANCHORS.md (1 worker, upstream keep-alive 128, access log off, Host passed on), one process for its HTTP/1.1,
h2 (TLS) and h2c ports. bare: bench/bare-forwarder.ts, node:http + undici Pool.dispatch, hop-by-hop headers
dropped, nothing else. fedgate: \`fedgate start --workers 1\`, plain and TLS listeners in one process;
fedgate-routes: another such process whose member serves ${ROUTE_SET.routes} HTTPRoutes × ${ROUTE_SET.rulesPerRoute} rules (bench/route-set.ts) on its
plain listener, none for ${HOST}. fedgate-trace-1, -100: two more such processes with tracing on, 1 % and
100 % of requests sampled (new traces), OTLP/HTTP protobuf to a sink in the benchmark's process that keeps nothing. Every
proxy speaks HTTP/1.1 to the backend. HTTP/2 rows: h2load ${versions.h2load}, ${H2_CLIENTS} connections × ${H2_STREAMS} streams, latency from
its per-request log. Each run: a ${CFG.warmupSeconds} s warm-up, then ${CFG.runSeconds} s measured. µs/req: the process's CPU time (utime +
stime) over the run / requests. cpu: CPU seconds over the tool's run time (1 core = 100 %); the tool, the proxy
and the backend share the machine's ${cpus().length} cores. others: busy CPU none of them used (other work on the
machine: a run with more than ${CFG.maxOthersCpu * 100} % is measured again (after up to ${CFG.retryWaitSeconds} s waiting for quiet), up to
${CFG.busyRetries} times, the quietest kept; busy: rounds where even that one was over). fedgate's responses are larger:
the backend echoes the X-Forwarded-* headers fedgate adds.`);

  const path = await writeResult('proxy', {
    config: {
      threads: THREADS,
      connections: CONNECTIONS,
      h2Clients: H2_CLIENTS,
      h2StreamsPerClient: H2_STREAMS,
      warmupSeconds: CFG.warmupSeconds,
      runSeconds: CFG.runSeconds,
      rounds: ROUNDS,
      maxOthersCpu: CFG.maxOthersCpu,
      busyRetries: CFG.busyRetries,
      host: HOST,
      upstream: UPSTREAM,
      pod: POD.pod,
    },
    versions,
    targets: targetsJson(ALL, med, runs, skipped.why),
    targetsMet,
    ratios,
    loadAverage: { before: loadBefore, atStart: loadAtStart, after: loadavg()[0] },
    quietWaitSeconds,
  });
  console.log(`results: ${path}`);
  // A row that could not be measured is a failure, not a quieter table.
  return skipped.exitCode('proxy');
}

process.exitCode = await withScratch('fedgate-proxy-bench-', main);
