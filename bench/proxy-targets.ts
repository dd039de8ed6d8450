// What the HTTP proxy benchmark (proxy.bench.ts) and profile (proxy-profile.ts) put
// load on, started the same way by both: the backend pod, fedgate's proxy (`fedgate
// start --workers 1`) and the bare Node forwarder, each a Node process of its own. A
// library: nginx and wrk are in http-anchors.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { PodInfo } from '../src/localfed/backends.ts';
import { SimCluster } from '../src/localfed/cluster.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
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

/** A proxy in front of the backend, as wrk reaches it. */
export interface ProxyProcess extends NodeChild {
  /** Where wrk sends its requests (with `Host: HOST`). */
  url: string;
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
 * remove; `nodeArgs` go to node (`--cpu-prof`, say).
 */
export async function startFedgate(
  upstream: string,
  dir: string,
  nodeArgs: string[] = [],
): Promise<ProxyProcess> {
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
    ports: [{ name: 'http', port: Number(port), protocol: 'TCP' }],
  } as KubeObject);
  const kubeconfig = await sim.writeKubeconfig(dir);
  const httpPort = await freePort();
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
      http: { listen: [`127.0.0.1:${httpPort}`], limits: { clientShare: 1 } },
      admin: { listen: '127.240.0.3:0' },
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
      { nodeArgs, env: { FEDGATE_LOG_LEVEL: 'warn' } },
    );
  } catch (e) {
    await sim.stop();
    throw e;
  }
  return {
    ...child,
    url: `http://127.0.0.1:${httpPort}/`,
    async stop() {
      await child.stop();
      await sim.stop();
    },
  };
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
