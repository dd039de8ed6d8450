// Question: how many unary gRPC calls a second does fedgate's proxy carry, with what
// latency and CPU per call, next to nginx's grpc_pass (ANCHORS.md's proxy: one worker,
// upstream keep-alive) in front of the same backend, and what does the backend manage
// alone? Measured with h2load (Debian's nghttp2-client: a C client, far lighter than
// grpc-js on two shared cores) posting one prepared Unary call of the local
// federation's echo service (bench/grpc-unary.ts: a 16-byte message, echoed with where
// it ran) with `content-type: application/grpc` and `te: trailers`, -c8 -m8 (64 calls
// in flight on 8 connections), -t1, three targets:
//   direct   h2load → backend (h2c)
//   nginx    h2load → nginx `listen … http2` (h2c) → grpc_pass (h2c) → backend
//   fedgate  h2load → fedgate's plain listener (h2c) → backend, the Service port
//            `appProtocol: grpc` (HTTP/2 in clear to it)
// The backend is src/localfed/grpc-echo.ts (what every local federation pod serves,
// on grpc-js) in a Node process of its own (bench/grpc-backend.ts).
// Each round measures every target once (a 2 s warm-up, then the run), alternating;
// medians of ROUNDS rounds. A call counts as failed when h2load counts its request
// failed or when its answer carried no reply message (a gRPC error, trailers only):
// h2load does not read grpc-status, so the reply bytes are counted instead. Every target
// is checked first with one grpc-js call whose reply must echo the message: a target
// that fails it (fedgate before it speaks h2c and gRPC) is reported as failed, the
// others measured, and the benchmark exits non-zero.
// Targets: fedgate ≥ 0.5 × nginx's calls/s, fedgate's p99 ≤ 2.5 × nginx's.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import {
  callsWithoutReply,
  checkEcho,
  MESSAGE,
  UNARY_PATH,
  unaryRequestBody,
} from './grpc-unary.ts';
import { h2loadReport, h2loadVersion, runH2load } from './h2load.ts';
import { freePort, printTable, writeResult } from './lib.ts';
import {
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
import { HOST, POD, startFedgate, startGrpcBackendProcess } from './proxy-targets.ts';

/** The backend's address: 127.215.0.0/16 is this benchmark's own. */
const BACKEND_HOST = '127.215.0.1';
const CLIENTS = 8;
const STREAMS = 8;
const CFG = PROXY_ROUNDS;
const ROUNDS = CFG.rounds;

/** fedgate's calls/s over nginx's, at least. */
const TARGET_FEDGATE_TO_NGINX = 0.5;
/** fedgate's p99 over nginx's, at most. */
const TARGET_FEDGATE_P99_TO_NGINX = 2.5;

const ALL = ['direct', 'nginx', 'fedgate'] as const;
type TargetName = (typeof ALL)[number];

/** The body h2load posts: one framed EchoRequest carrying MESSAGE. */
const BODY = unaryRequestBody();

interface GrpcTarget extends LoadTarget {
  name: TargetName;
  /** One grpc-js call through it must come back from the backend before any load. */
  check(): Promise<void>;
}

function grpcTarget(
  name: TargetName,
  address: string,
  dir: string,
  cpu?: () => number,
): GrpcTarget {
  /** The size of a reply on the wire, as the check call got it. */
  let replyBytes = Number.NaN;
  return {
    name,
    check: async () => {
      ({ replyBytes } = await checkEcho(address, HOST, POD));
    },
    load: async (durationSec) => {
      const r = await runH2load({
        url: `http://${address}${UNARY_PATH}`,
        authority: HOST,
        clients: CLIENTS,
        streams: STREAMS,
        durationSec,
        bodyFile: join(dir, 'call.bin'),
        headers: ['content-type: application/grpc', 'te: trailers'],
        logFile: join(dir, `h2load-${name}.log`),
      });
      return h2loadReport(r, { noReply: callsWithoutReply(r, replyBytes) });
    },
    ...(cpu && { proxyCpuSeconds: cpu }),
  };
}

async function main({ dir, onEnd }: Scratch): Promise<number> {
  const loadBefore = loadavg()[0] ?? Number.NaN;
  await writeFile(join(dir, 'call.bin'), BODY);
  const upstream = `${BACKEND_HOST}:${await freePort(BACKEND_HOST)}`;
  const backend = await startGrpcBackendProcess(upstream);
  onEnd(backend.stop);
  const candidates: GrpcTarget[] = [grpcTarget('direct', upstream, dir)];
  /** Targets that did not start, or whose check call failed. */
  const failed = unmeasured<TargetName>();
  try {
    const nginx = await startNginxProxy({
      listen: [{ port: await freePort(), http2: true }],
      upstreams: [upstream],
      upstreamProtocol: 'grpc',
      dir: join(dir, 'nginx'),
    });
    onEnd(nginx.stop);
    candidates.push(grpcTarget('nginx', `${nginx.host}:${nginx.port}`, dir, nginx.cpuSeconds));
  } catch (e) {
    failed.mark('nginx', e);
  }
  try {
    const fedgate = await startFedgate(upstream, join(dir, 'fedgate'), {
      port: { name: 'grpc', appProtocol: 'grpc' },
    });
    onEnd(fedgate.stop);
    candidates.push(grpcTarget('fedgate', new URL(fedgate.url).host, dir, fedgate.cpuSeconds));
  } catch (e) {
    failed.mark('fedgate', e);
  }
  const targets: GrpcTarget[] = [];
  for (const t of candidates) {
    try {
      await t.check();
      targets.push(t);
    } catch (e) {
      failed.mark(t.name, e);
    }
  }

  const versions = { nginx: nginxVersion(), h2load: h2loadVersion(), node: process.version };
  const { runs, quietWaitSeconds, loadAtStart } = await measureRounds(
    targets,
    backend,
    CFG,
    'calls/s',
  );

  const { med, ratio, paired } = comparisons(runs);
  const fedgateToNginx = ratio('fedgate', 'nginx');
  const targetsMet = {
    fedgateToNginxCallsPerSec: targetMet(
      fedgateToNginx?.requestsPerSec,
      '>=',
      TARGET_FEDGATE_TO_NGINX,
      paired('fedgate', 'nginx'),
    ),
    fedgateP99ToNginxP99: targetMet(fedgateToNginx?.p99, '<=', TARGET_FEDGATE_P99_TO_NGINX),
  };
  const ratios = {
    fedgateToNginx,
    directToNginx: ratio('direct', 'nginx'),
    fedgateToDirect: ratio('fedgate', 'direct'),
    nginxToDirect: ratio('nginx', 'direct'),
  };

  const units = { one: 'call', rate: 'calls/s', tool: 'h2load' };
  printTable(
    `grpc: h2load -c${CLIENTS} -m${STREAMS} -t1 -D${CFG.runSeconds}, unary ${UNARY_PATH} (message '${MESSAGE}', ${BODY.length}-byte request), :authority ${HOST}; median of ${ROUNDS} alternating rounds`,
    ALL.map((name) =>
      tableRow(
        name,
        med[name],
        runs[name],
        units,
        ratio(name, 'nginx'),
        failed.why[name] ? 'FAILED' : undefined,
      ),
    ),
  );
  printTable('targets', [
    targetRow('fedgate / nginx, calls/s', targetsMet.fedgateToNginxCallsPerSec),
    targetRow('fedgate p99 / nginx p99', targetsMet.fedgateP99ToNginxP99),
  ]);
  console.log(`
How measured: the backend is the local federation's gRPC echo (src/localfed/grpc-echo.ts, ${upstream}) in a
Node process of its own; Unary echoes the message with where it ran and the metadata. nginx ${versions.nginx}: 1 worker, \`listen … http2\` in clear,
grpc_pass to an upstream with keepalive 128 (nginx carries one call per upstream connection at a time).
fedgate: \`fedgate start --workers 1\`, its plain listener, the service's port \`appProtocol: grpc\`.
h2load ${versions.h2load}: ${CLIENTS} connections × ${STREAMS} streams, latency from its per-request log. Each run: a
${CFG.warmupSeconds} s warm-up, then ${CFG.runSeconds} s measured. µs/call: the process's CPU time over the run / calls. cpu: CPU
seconds over the run (1 core = 100 %) on the machine's ${cpus().length} cores. others: busy CPU none of them used
(a run with more than ${CFG.maxOthersCpu * 100} % is measured again, up to ${CFG.busyRetries} times, the quietest kept).`);

  const path = await writeResult('grpc', {
    config: {
      loadTool: 'h2load',
      clients: CLIENTS,
      streamsPerClient: STREAMS,
      warmupSeconds: CFG.warmupSeconds,
      runSeconds: CFG.runSeconds,
      rounds: ROUNDS,
      maxOthersCpu: CFG.maxOthersCpu,
      busyRetries: CFG.busyRetries,
      method: UNARY_PATH,
      message: MESSAGE,
      requestBytes: BODY.length,
      authority: HOST,
      upstream,
      pod: POD.pod,
    },
    versions,
    targets: targetsJson(ALL, med, runs, failed.why, 'failed'),
    targetsMet,
    ratios,
    loadAverage: { before: loadBefore, atStart: loadAtStart, after: loadavg()[0] },
    quietWaitSeconds,
  });
  console.log(`results: ${path}`);
  return failed.exitCode('grpc');
}

process.exitCode = await withScratch('fedgate-grpc-bench-', main);
