// What the HTTP proxy benchmark (proxy.bench.ts) and profile (proxy-profile.ts) put
// load on, started the same way by both: the backend pod, fedgate's proxy (`fedgate
// start --workers 1`) and the bare Node forwarder, each a Node process of its own. A
// library: nginx and wrk are in http-anchors.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import http2 from 'node:http2';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { PodInfo } from '../src/localfed/backends.ts';
import { SimCluster } from '../src/localfed/cluster.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { makeClusterPki } from '../src/localfed/pki.ts';
import { processTreeCpuSeconds } from './http-anchors.ts';
import { freePort } from './lib.ts';

/** The pod behind every target: 127.240.0.0/16 is used by no test. */
export const POD: PodInfo = {
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
export const UPSTREAM = `${POD.ip}:${POD.ports[0]}`;
/** The Host header of every request: the service's federation name, what fedgate routes on. */
export const HOST = 'web.shop.galaxy.svc.example.test';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** A Node process the benchmark started and waits for at the end. */
export interface NodeChild {
  pid: number;
  /** CPU seconds (user + system) it has used so far. */
  cpuSeconds(): number;
  /** SIGTERM (SIGKILL after 10 s) and its exit. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Runs `node [nodeArgs] script args` and resolves once a line of its stdout matches
 * `ready`; rejects if it exits first. Its stdin is a pipe that closes when this process
 * ends, so a child that watches it cannot outlive a crashed benchmark.
 */
async function spawnNode(
  script: string,
  args: string[],
  ready: RegExp,
  opts: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<NodeChild> {
  const child: ChildProcess = spawn(process.execPath, [...(opts.nodeArgs ?? []), script, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...opts.env },
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (l) => {
      if (ready.test(l)) resolve();
    });
    child.once('error', reject);
    void exited.then(() =>
      reject(new Error(`${script} exited (${child.exitCode ?? child.signalCode}) before ready`)),
    );
  });
  const pid = child.pid!;
  return {
    pid,
    cpuSeconds: () => processTreeCpuSeconds(pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The backend: POD in bench/proxy-backend.ts's process. */
export function startBackendProcess(): Promise<NodeChild> {
  return spawnNode(here('./proxy-backend.ts'), [], /^ready$/);
}

/** The gRPC benchmark's backend: bench/grpc-backend.ts's process on `address` (host:port). */
export function startGrpcBackendProcess(address: string): Promise<NodeChild> {
  return spawnNode(here('./grpc-backend.ts'), ['--listen', address], /^ready$/);
}

/** A proxy in front of the backend, as the load tool reaches it. */
export interface ProxyProcess extends NodeChild {
  /** Where the load tool sends its requests (with `Host: HOST`): plain HTTP. */
  url: string;
  /** fedgate's TLS listener (HTTP/2 and HTTP/1.1 by ALPN), when asked for. */
  tlsUrl?: string;
}

/** What a benchmark asks of fedgate beyond the defaults. */
export interface FedgateOptions {
  /** node flags (`--cpu-prof`, say). */
  nodeArgs?: string[];
  /**
   * The Service port (and EndpointSlice port) fedgate proxies to: `http` with no
   * appProtocol by default; `{ name: 'grpc', appProtocol: 'grpc' }` makes fedgate speak
   * HTTP/2 in clear to the backend.
   */
  port?: { name: string; appProtocol?: string };
  /** A TLS listener too, with this certificate (PEM files). */
  tls?: { certFile: string; keyFile: string };
  /**
   * Gateway API objects the member serves (its namespace is POD's): fedgate reads them
   * (gatewayAPI.clusters) and serves their routes on its plain listener (port 80).
   */
  gatewayObjects?: KubeObject[];
  /** The `tracing` block of its config (tracing.enabled and the rest); absent: off. */
  tracing?: Record<string, unknown>;
}

/**
 * The bare Node floor (bench/bare-forwarder.ts): node:http in front of an undici Pool
 * to `upstream`, nothing else, one process. `nodeArgs` go to node (`--cpu-prof`, say).
 */
export async function startBareForwarder(
  upstream: string,
  nodeArgs: string[] = [],
): Promise<ProxyProcess> {
  const listen = `127.0.0.1:${await freePort()}`;
  const child = await spawnNode(
    here('./bare-forwarder.ts'),
    ['--listen', listen, '--upstream', upstream],
    /^ready /,
    { nodeArgs },
  );
  return { ...child, url: `http://${listen}/` };
}

/**
 * fedgate as it runs for real, in a process of its own like nginx: `fedgate start
 * --workers 1` on a config whose one member cluster is an API simulator in this
 * process, serving a Service, its ServiceExport and an EndpointSlice whose one endpoint
 * is `upstream`, in POD's zone. All of routing is on: host lookup, the plan for
 * fedgate's own zone, p2c, outlier reporting and TCP active checks. The simulator is
 * idle during the runs (a bookmark a second). `dir`: a scratch folder, the caller's to
 * remove.
 */
export async function startFedgate(
  upstream: string,
  dir: string,
  opts: FedgateOptions = {},
): Promise<ProxyProcess> {
  const svcPort = opts.port ?? { name: 'http' };
  await mkdir(dir, { recursive: true });
  const sim = await SimCluster.create({
    name: POD.cluster,
    host: '127.240.0.2',
    port: 0,
    bookmarkIntervalMs: 1000,
  });
  await sim.start();
  const [ip, port] = upstream.split(':') as [string, string];
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: POD.node,
      labels: {
        'topology.kubernetes.io/region': POD.region,
        'topology.kubernetes.io/zone': POD.zone,
      },
    },
    spec: {},
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
  const meta = { namespace: POD.namespace, name: POD.service };
  sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: POD.namespace } });
  sim.apply(node as KubeObject);
  sim.apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta,
    spec: { ports: [{ ...svcPort, port: 80, targetPort: Number(port), protocol: 'TCP' }] },
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
      namespace: POD.namespace,
      name: `${POD.service}-bench`,
      labels: { 'kubernetes.io/service-name': POD.service },
    },
    addressType: 'IPv4',
    endpoints: [
      {
        addresses: [ip],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: POD.node,
        zone: POD.zone,
      },
    ],
    ports: [{ ...svcPort, port: Number(port), protocol: 'TCP' }],
  } as KubeObject);
  for (const o of opts.gatewayObjects ?? []) sim.apply(o);
  const kubeconfig = await sim.writeKubeconfig(dir);
  const httpPort = await freePort();
  const tlsPort = opts.tls ? await freePort() : undefined;
  const config = join(dir, 'fedgate.yaml');
  await writeFile(
    config,
    stringify({
      federation: { name: 'galaxy', domain: 'example.test' },
      clusters: [{ name: POD.cluster, kubeconfig, region: POD.region }],
      self: { region: POD.region, zone: POD.zone },
      dns: { listen: ['127.240.0.3:0'] },
      // wrk is one client with all the load: it may take every slot of the one pod
      // (the per-client accounting still runs, and is measured with the rest).
      http: {
        listen: [`127.0.0.1:${httpPort}`],
        ...(opts.tls && {
          tls: {
            listen: [`127.0.0.1:${tlsPort}`],
            certificates: [{ cert: opts.tls.certFile, key: opts.tls.keyFile }],
          },
        }),
        limits: { clientShare: 1 },
      },
      admin: { listen: '127.240.0.3:0' },
      ...(opts.tracing && { tracing: opts.tracing }),
      ...(opts.gatewayObjects && {
        gatewayAPI: {
          clusters: [POD.cluster],
          listeners: [{ port: 80, protocol: 'HTTP', address: `127.0.0.1:${httpPort}` }],
        },
      }),
    }),
  );
  // One process, as nginx runs one worker: wrk and the backend share the two cores,
  // where more workers only compete (ANCHORS.md: node:cluster gains nothing here).
  let child: NodeChild;
  try {
    child = await spawnNode(
      CLI,
      ['start', '--config', config, '--workers', '1'],
      /^fedgate: ready/,
      { nodeArgs: opts.nodeArgs ?? [], env: { FEDGATE_LOG_LEVEL: 'warn' } },
    );
  } catch (e) {
    await sim.stop();
    throw e;
  }
  return {
    ...child,
    url: `http://127.0.0.1:${httpPort}/`,
    ...(tlsPort !== undefined && { tlsUrl: `https://127.0.0.1:${tlsPort}/` }),
    async stop() {
      await child.stop();
      await sim.stop();
    },
  };
}

/** A certificate for the proxies' TLS listeners (HOST and 127.0.0.1), its files in `dir`. */
export async function writeBenchCertificate(
  dir: string,
): Promise<{ certFile: string; keyFile: string; ca: string }> {
  const pki = await makeClusterPki('bench', ['127.0.0.1', HOST]);
  await mkdir(dir, { recursive: true });
  const certFile = join(dir, 'proxy.crt');
  const keyFile = join(dir, 'proxy.key');
  await writeFile(certFile, pki.serverCert);
  await writeFile(keyFile, pki.serverKey, { mode: 0o600 });
  return { certFile, keyFile, ca: pki.caCert };
}

/** Rejects unless `body` is POD's answer to a request that reached it with `Host: HOST`. */
function expectPod(what: string, status: number | undefined, body: Buffer): void {
  let seen: { pod?: string; host?: string } = {};
  try {
    seen = JSON.parse(body.toString()) as typeof seen;
  } catch {
    // reported below
  }
  if (status !== 200 || seen.pod !== POD.pod || seen.host !== HOST) {
    throw new Error(`${what} did not reach ${POD.pod} with its Host: ${status} ${body}`);
  }
}

/**
 * One GET / through `url` with `Host: HOST`: it must reach POD with the Host intact
 * (nginx sends its upstream's name unless told otherwise).
 */
export function probe(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host: HOST }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          expectPod(`GET ${url} (Host: ${HOST})`, res.statusCode, Buffer.concat(chunks));
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${url}: no answer in 5 s`)));
    req.once('error', reject);
    req.end();
  });
}

/**
 * GET / through `url` with `Host: host` until the pod answers it (a route's host: the
 * table is compiled after fedgate says ready), for at most `timeoutMs`.
 */
export async function probeRouted(url: string, host: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const got = await new Promise<{ status?: number | undefined; body: string }>((resolve) => {
      const req = request(url, { headers: { host }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }),
        );
      });
      req.setTimeout(5_000, () => req.destroy(new Error('no answer in 5 s')));
      req.once('error', (e) => resolve({ body: e.message }));
      req.end();
    });
    if (got.status === 200 && got.body.includes(`"${POD.pod}"`)) return;
    last = `${got.status ?? 'no status'} ${got.body.slice(0, 200)}`;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`GET ${url} (Host: ${host}) never reached ${POD.pod} by a route: ${last}`);
}

/**
 * The same over HTTP/2: h2 by ALPN for https:// (verified against `ca`), h2c with
 * prior knowledge for http://, `:authority: HOST`.
 */
export async function probeH2(url: string, ca?: string): Promise<void> {
  const what = `HTTP/2 GET ${url} (:authority ${HOST})`;
  const session = http2.connect(url, { ...(ca !== undefined && { ca, servername: HOST }) });
  try {
    const { status, body } = await new Promise<{ status: number | undefined; body: Buffer }>(
      (resolve, reject) => {
        session.once('error', reject);
        const stream = session.request({ ':path': '/', ':authority': HOST });
        let status: number | undefined;
        const chunks: Buffer[] = [];
        stream.once('response', (h) => {
          status = Number(h[':status']);
        });
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.once('end', () => resolve({ status, body: Buffer.concat(chunks) }));
        stream.once('error', reject);
        stream.setTimeout(5_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
        stream.once('close', () => reject(new Error('stream closed before its end')));
      },
    );
    expectPod(what, status, body);
  } catch (e) {
    throw new Error(`${what} failed: ${(e as Error).message}`);
  } finally {
    session.destroy();
  }
}
