// Question: how many requests per second does fedgate's HTTP proxy carry, and with
// what latency, next to nginx (ANCHORS.md's reverse proxy: one worker, upstream
// keep-alive) in front of the same backend, and what does the backend manage alone?
// Measured with wrk (-t2 -c64 -d10s --latency, as in ANCHORS.md), three targets:
//   direct   wrk → backend
//   nginx    wrk → nginx → backend
//   fedgate  wrk → fedgate's proxy (`fedgate start`, its own process) → backend
// The backend is src/localfed's Backend, the sample pod fedgate proxies to in a local
// federation, in a Node process of its own: the proxy under test must not share an
// event loop with it. Each round measures every target once (a 2 s warm-up, then the
// run), alternating, so drift on a shared 2-vCPU machine hits all alike; medians of
// ROUNDS rounds are reported. wrk, nginx, the backend (and fedgate) share both cores.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Backend, type PodInfo } from '../src/localfed/backends.ts';
import { SimCluster } from '../src/localfed/cluster.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import {
  machineCpuSeconds,
  type NginxProxy,
  nginxVersion,
  processTreeCpuSeconds,
  reapedChildrenCpuSeconds,
  runWrk,
  startNginxProxy,
  type WrkErrors,
  type WrkResult,
  wrkErrorCount,
  wrkVersion,
} from './http-anchors.ts';
import { freePort, median, printTable, writeResult } from './lib.ts';

/** The pod behind every target: 127.240.0.0/16 is used by no test. */
const POD: PodInfo = {
  cluster: 'alpha',
  region: 'us-east',
  zone: 'us-east-a',
  node: 'alpha-us-east-a-1',
  pod: 'web-bench-0',
  namespace: 'shop',
  service: 'web',
  ip: '127.240.0.1',
  ports: [18080],
};
const UPSTREAM = `${POD.ip}:${POD.ports[0]}`;
/** The Host header of every request: the service's federation name, what fedgate routes on. */
const HOST = 'web.shop.galaxy.svc.example.test';

const THREADS = 2;
const CONNECTIONS = 64;
const WARMUP_SECONDS = 2;
const RUN_SECONDS = 10;
const ROUNDS = 3;

/** argv[2] that makes this file the backend's process instead of the benchmark. */
const BACKEND_FLAG = '--serve-backend';
const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

type TargetName = 'direct' | 'nginx' | 'fedgate';

/** One way to reach the backend under load. */
interface Target {
  name: TargetName;
  /** Where wrk sends its requests (with `Host: HOST`). */
  url: string;
  /** CPU seconds used so far by the proxy in between (none for direct). */
  proxyCpuSeconds?: () => number;
  stop(): Promise<void>;
}

/** What fedgate's proxy is given to be measured like nginx. */
interface FedgateContext {
  /** The backend, `host:port`: the one endpoint of the service HOST names. */
  upstreams: string[];
  pod: PodInfo;
  /** The Host header wrk sends: fedgate should route it to `upstreams`. */
  host: string;
  /** A scratch folder of its own, removed after the run. */
  dir: string;
}

// ==== fedgate ===============================================================================
/**
 * fedgate as it runs for real, in a process of its own like nginx: `fedgate start`
 * on a config whose one member cluster is an API simulator in this process, serving a
 * Service, its ServiceExport and an EndpointSlice whose one endpoint is the backend.
 * All of routing is on: host lookup, the plan for fedgate's own zone, p2c, outlier
 * reporting and TCP active checks. The simulator is idle during the runs (a bookmark a
 * second).
 */
async function measureFedgate(ctx: FedgateContext): Promise<Target> {
  await mkdir(ctx.dir, { recursive: true });
  const sim = await SimCluster.create({
    name: ctx.pod.cluster,
    host: '127.240.0.2',
    port: 0,
    bookmarkIntervalMs: 1000,
  });
  await sim.start();
  const [ip, port] = ctx.upstreams[0]!.split(':') as [string, string];
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: ctx.pod.node,
      labels: {
        'topology.kubernetes.io/region': ctx.pod.region,
        'topology.kubernetes.io/zone': ctx.pod.zone,
      },
    },
    spec: {},
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
  const meta = { namespace: ctx.pod.namespace, name: ctx.pod.service };
  sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ctx.pod.namespace } });
  sim.apply(node as KubeObject);
  sim.apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta,
    spec: { ports: [{ name: 'http', port: 80, targetPort: Number(port), protocol: 'TCP' }] },
  } as KubeObject);
  sim.apply({
    apiVersion: 'multicluster.x-k8s.io/v1alpha1',
    kind: 'ServiceExport',
    metadata: meta,
  });
  sim.apply({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace: ctx.pod.namespace,
      name: `${ctx.pod.service}-bench`,
      labels: { 'kubernetes.io/service-name': ctx.pod.service },
    },
    addressType: 'IPv4',
    endpoints: [
      {
        addresses: [ip],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: ctx.pod.node,
        zone: ctx.pod.zone,
      },
    ],
    ports: [{ name: 'http', port: Number(port), protocol: 'TCP' }],
  } as KubeObject);
  const kubeconfig = await sim.writeKubeconfig(ctx.dir);
  const httpPort = await freePort();
  const config = join(ctx.dir, 'fedgate.yaml');
  await writeFile(
    config,
    stringify({
      federation: { name: 'galaxy', domain: 'example.test' },
      clusters: [{ name: ctx.pod.cluster, kubeconfig, region: ctx.pod.region }],
      self: { region: ctx.pod.region, zone: ctx.pod.zone },
      dns: { listen: ['127.240.0.3:0'] },
      http: { listen: [`127.0.0.1:${httpPort}`] },
      admin: { listen: '127.240.0.3:0' },
    }),
  );
  // One process, as nginx runs one worker: wrk and the backend share the two cores,
  // where more workers only compete (ANCHORS.md: node:cluster gains nothing here).
  const child = spawn(process.execPath, [CLI, 'start', '--config', config, '--workers', '1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FEDGATE_LOG_LEVEL: 'warn' },
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (l) => {
      if (/^fedgate: ready/.test(l)) resolve();
    });
    void exited.then(() => reject(new Error(`fedgate exited (${child.exitCode}) before ready`)));
  });
  return {
    name: 'fedgate',
    url: `http://127.0.0.1:${httpPort}/`,
    proxyCpuSeconds: () => processTreeCpuSeconds(child.pid!),
    async stop() {
      child.kill('SIGTERM');
      await exited;
      await sim.stop();
    },
  };
}

// ---- the backend's process ---------------------------------------------------------------

/** The child: serves POD until its stdin closes (the benchmark ended or died) or SIGTERM. */
async function serveBackend(): Promise<void> {
  const backend = new Backend(POD);
  await backend.start();
  const quit = () => void backend.stop().finally(() => process.exit(0));
  process.stdin.on('close', quit);
  process.stdin.resume();
  process.once('SIGTERM', quit);
  process.stdout.write('ready\n');
}

interface BackendProcess {
  pid: number;
  cpuSeconds(): number;
  stop(): Promise<void>;
}

async function startBackendProcess(): Promise<BackendProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), BACKEND_FLAG],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (l) =>
      l === 'ready' ? resolve() : reject(new Error(`backend process said: ${l}`)),
    );
    child.once('error', reject);
    void exited.then(() =>
      reject(new Error(`backend process exited (${child.exitCode}) before it was ready`)),
    );
  });
  const pid = child.pid!;
  return {
    pid,
    cpuSeconds: () => processTreeCpuSeconds(pid),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---- measuring -------------------------------------------------------------------------

/**
 * One GET / through `url` with `Host: HOST`: it must reach POD with the Host intact
 * (nginx sends its upstream's name unless told otherwise).
 */
function probe(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host: HOST }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let seen: { pod?: string; host?: string } = {};
        try {
          seen = JSON.parse(body.toString()) as typeof seen;
        } catch {
          // reported below
        }
        if (res.statusCode !== 200 || seen.pod !== POD.pod || seen.host !== HOST) {
          reject(
            new Error(
              `GET ${url} (Host: ${HOST}) did not reach ${POD.pod} with its Host: ${res.statusCode} ${body}`,
            ),
          );
        } else resolve();
      });
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${url}: no answer in 5 s`)));
    req.once('error', reject);
    req.end();
  });
}

interface Run {
  requestsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  requests: number;
  /** Bytes wrk read per response, headers included (the backend's JSON echoes the request). */
  responseBytes: number;
  errors: WrkErrors;
  /** CPU seconds over wrk's run time: 1 = one core busy. */
  backendCpu: number;
  proxyCpu?: number;
  /** wrk itself. */
  wrkCpu: number;
  /**
   * Busy CPU on the machine that none of the above used: other work skewing the run
   * (and this process, idle unless the proxy under test runs in it, and kernel work
   * charged to no process: so an upper bound on others' load).
   */
  othersCpu: number;
  /** CPU the hypervisor gave to other guests while we wanted it. */
  stealCpu: number;
}

const wrk = (url: string, durationSec: number): Promise<WrkResult> =>
  runWrk({ url, host: HOST, threads: THREADS, connections: CONNECTIONS, durationSec });

async function measureOnce(t: Target, backend: BackendProcess): Promise<Run> {
  await wrk(t.url, WARMUP_SECONDS);
  const m0 = machineCpuSeconds();
  const w0 = reapedChildrenCpuSeconds();
  const b0 = backend.cpuSeconds();
  const p0 = t.proxyCpuSeconds?.();
  const r = await wrk(t.url, RUN_SECONDS);
  const share = (seconds: number) => seconds / r.durationSec;
  const backendCpu = share(backend.cpuSeconds() - b0);
  const proxyCpu = p0 === undefined ? undefined : share(t.proxyCpuSeconds!() - p0);
  // wrk has been reaped by now, so its CPU is in this process's children's time.
  const wrkCpu = share(reapedChildrenCpuSeconds() - w0);
  const m1 = machineCpuSeconds();
  const busy = share(m1.busy - m0.busy);
  return {
    requestsPerSec: r.requestsPerSec,
    p50Ms: r.p50Ms,
    p90Ms: r.p90Ms,
    p99Ms: r.p99Ms,
    maxMs: r.maxMs,
    requests: r.requests,
    responseBytes: r.bytesRead / r.requests,
    errors: r.errors,
    backendCpu,
    ...(proxyCpu !== undefined && { proxyCpu }),
    wrkCpu,
    othersCpu: Math.max(0, busy - backendCpu - (proxyCpu ?? 0) - wrkCpu),
    stealCpu: share(m1.steal - m0.steal),
  };
}

function summary(runs: Run[]) {
  const m = (f: (r: Run) => number) => median(runs.map(f));
  return {
    requestsPerSec: m((r) => r.requestsPerSec),
    p50Ms: m((r) => r.p50Ms),
    p90Ms: m((r) => r.p90Ms),
    p99Ms: m((r) => r.p99Ms),
    maxMs: Math.max(...runs.map((r) => r.maxMs)),
    responseBytes: m((r) => r.responseBytes),
    failedRequests: runs.reduce((a, r) => a + wrkErrorCount(r.errors), 0),
    backendCpu: m((r) => r.backendCpu),
    ...(runs[0]?.proxyCpu !== undefined && { proxyCpu: m((r) => r.proxyCpu!) }),
    wrkCpu: m((r) => r.wrkCpu),
    othersCpu: m((r) => r.othersCpu),
    stealCpu: m((r) => r.stealCpu),
  };
}

// ---- run -------------------------------------------------------------------------------

async function main(): Promise<number> {
  // nginx's config, PID file, logs and temp folders; fedgate's scratch folder.
  const workDir = await mkdtemp(join(tmpdir(), 'fedgate-proxy-bench-'));
  // Other work on the machine skews every target: the load average says if there was any.
  const loadBefore = loadavg()[0]!;
  let backend: BackendProcess | undefined;
  const targets: Target[] = [];
  try {
    backend = await startBackendProcess();
    targets.push({ name: 'direct', url: `http://${UPSTREAM}/`, stop: async () => {} });
    const nginx: NginxProxy = await startNginxProxy({
      listenPort: await freePort(),
      upstreams: [UPSTREAM],
      dir: join(workDir, 'nginx'),
    });
    targets.push({
      name: 'nginx',
      url: nginx.url,
      proxyCpuSeconds: nginx.cpuSeconds,
      stop: nginx.stop,
    });
    let fedgateSkipped: string | undefined;
    try {
      targets.push(
        await measureFedgate({
          upstreams: [UPSTREAM],
          pod: POD,
          host: HOST,
          dir: join(workDir, 'fedgate'),
        }),
      );
    } catch (e) {
      fedgateSkipped = (e as Error).message;
      console.log(`fedgate: not measured (${fedgateSkipped})`);
    }

    const versions = { nginx: nginxVersion(), wrk: wrkVersion(), node: process.version };
    for (const t of targets) await probe(t.url);

    const runs: Partial<Record<TargetName, Run[]>> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) {
        const r = await measureOnce(t, backend);
        const rs = runs[t.name] ?? [];
        rs.push(r);
        runs[t.name] = rs;
        const failed = wrkErrorCount(r.errors);
        console.log(
          `round ${round + 1}/${ROUNDS} ${t.name}: ${Math.round(r.requestsPerSec)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, others' cpu ${(r.othersCpu * 100).toFixed(0)} %${failed ? `, ${failed} failed: ${JSON.stringify(r.errors)}` : ''}`,
        );
      }
    }

    // ---- report ---------------------------------------------------------------------

    const med = Object.fromEntries(
      Object.entries(runs).map(([name, rs]) => [name, summary(rs)]),
    ) as Partial<Record<TargetName, ReturnType<typeof summary>>>;
    const nginxMed = med.nginx!;
    const ratioTo = (name: TargetName) => {
      const s = med[name];
      return s === undefined
        ? null
        : {
            requestsPerSec: s.requestsPerSec / nginxMed.requestsPerSec,
            p99: s.p99Ms / nginxMed.p99Ms,
          };
    };
    const ratios = { fedgateToNginx: ratioTo('fedgate'), directToNginx: ratioTo('direct') };
    // Each fedgate round over the nginx round just before it: robust to drift between rounds.
    const pairedFedgateToNginx = runs.fedgate?.map(
      (f, i) => f.requestsPerSec / runs.nginx![i]!.requestsPerSec,
    );

    const pct = (v: number | undefined) => (v === undefined ? '' : `${(v * 100).toFixed(0)} %`);
    const all: TargetName[] = ['direct', 'nginx', 'fedgate'];
    printTable(
      `proxy: wrk -t${THREADS} -c${CONNECTIONS} -d${RUN_SECONDS}s --latency, Host: ${HOST}, median of ${ROUNDS} alternating rounds`,
      all.map((name) => {
        const s = med[name];
        if (s === undefined) {
          return {
            target: name,
            'req/s': 'not measured',
            'p50 ms': '',
            'p99 ms': '',
            'rounds req/s': '',
            'backend cpu': '',
            'proxy cpu': '',
            'wrk cpu': '',
            'others cpu': '',
            failed: '',
            'req/s vs nginx': '',
            'p99 vs nginx': '',
          };
        }
        const ratio = name === 'nginx' ? null : ratioTo(name);
        return {
          target: name,
          'req/s': Math.round(s.requestsPerSec),
          'p50 ms': s.p50Ms.toFixed(2),
          'p99 ms': s.p99Ms.toFixed(2),
          'rounds req/s': runs[name]!.map((r) => Math.round(r.requestsPerSec)).join(' / '),
          'backend cpu': pct(s.backendCpu),
          'proxy cpu': pct(s.proxyCpu),
          'wrk cpu': pct(s.wrkCpu),
          'others cpu': pct(s.othersCpu),
          failed: s.failedRequests,
          'req/s vs nginx': ratio ? ratio.requestsPerSec.toFixed(2) : '1.00',
          'p99 vs nginx': ratio ? ratio.p99.toFixed(2) : '1.00',
        };
      }),
    );
    console.log(`
How measured: the backend is src/localfed's Backend (${POD.pod} on ${UPSTREAM}; GET / answers
JSON, ${Math.round(med.direct!.responseBytes)} bytes with headers) in a Node process of its own. nginx ${versions.nginx} as in
ANCHORS.md (1 worker, upstream keep-alive 128, access log off, Host passed on). Each run: a
${WARMUP_SECONDS} s warm-up, then ${RUN_SECONDS} s measured. cpu: CPU seconds over wrk's run time (1 core = 100 %);
wrk, nginx and the backend share the machine's ${cpus().length} cores. others: busy CPU none of them used (other
work on the machine: a run with much of it is skewed). ANCHORS.md, same wrk, 13-byte body: Node http
upstream ~49 k req/s, nginx proxy in front of it ~48 k. fedgate: ${fedgateSkipped === undefined ? 'measured' : `not measured (${fedgateSkipped})`}.`);

    const path = await writeResult('proxy', {
      config: {
        threads: THREADS,
        connections: CONNECTIONS,
        warmupSeconds: WARMUP_SECONDS,
        runSeconds: RUN_SECONDS,
        rounds: ROUNDS,
        host: HOST,
        upstream: UPSTREAM,
        pod: POD.pod,
      },
      versions,
      targets: Object.fromEntries(
        all.map((name) => [
          name,
          med[name] === undefined
            ? { measured: false, reason: fedgateSkipped ?? 'not measured' }
            : { measured: true, median: med[name], rounds: runs[name] },
        ]),
      ),
      ratios: { ...ratios, pairedFedgateToNginx: pairedFedgateToNginx ?? null },
      loadAverage: { before: loadBefore, after: loadavg()[0]! },
    });
    console.log(`results: ${path}`);
    return 0;
  } catch (e) {
    console.error(e);
    return 1;
  } finally {
    for (const t of targets) await t.stop();
    await backend?.stop();
    await rm(workDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === BACKEND_FLAG) await serveBackend();
else process.exitCode = await main();
