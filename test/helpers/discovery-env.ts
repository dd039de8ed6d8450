// A test bench for fedgate's discovery pipeline: simulated member clusters on
// loopback, kubeconfigs and a fedgate config in a temporary directory, Discovery
// started on them with a logger whose lines are kept, and every snapshot the
// catalog publishes recorded. `cleanup()` stops all of it.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import type { Catalog } from '../../src/catalog/catalog.ts';
import type { ClusterMember, FederatedService, Snapshot } from '../../src/catalog/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { Discovery, type DiscoveryOptions } from '../../src/discovery.ts';
import { SimCluster, type SimClusterOptions } from '../../src/localfed/cluster.ts';
import { LocalFederation } from '../../src/localfed/federation.ts';
import type { KubeObject } from '../../src/localfed/objects.ts';
import { Registry } from '../../src/localfed/registry.ts';
import { typeOfKind } from '../../src/localfed/resources.ts';
import { parseScenario } from '../../src/localfed/scenario.ts';
import type { Logger } from '../../src/observe/log.ts';

/** Small enough that failures show within seconds; bookmarks keep healthy watches well inside silenceLimit. */
export const FAST_WATCH = { silenceLimit: '2s', listTimeout: '2s', startupTimeout: '10s' };
export const BOOKMARK_INTERVAL_MS = 250;

// ---- logs ---------------------------------------------------------------------

export interface LogEntry {
  level: number;
  msg: string;
  cluster?: string;
  [key: string]: unknown;
}

export const WARN = 40;
export const ERROR = 50;

/** A pino logger that writes nowhere but into `entries`. */
export class LogCapture {
  readonly entries: LogEntry[] = [];
  readonly logger: Logger;

  constructor(level = 'debug') {
    this.logger = pino(
      { level, base: null },
      { write: (line: string) => void this.entries.push(JSON.parse(line) as LogEntry) },
    );
  }

  find(pattern: RegExp, cluster?: string): LogEntry[] {
    return this.entries.filter(
      (e) => pattern.test(e.msg) && (cluster === undefined || e.cluster === cluster),
    );
  }

  /** Entries at `level` or above, from index `from` on. */
  atLeast(level: number, from = 0): LogEntry[] {
    return this.entries.slice(from).filter((e) => e.level >= level);
  }
}

// ---- snapshots ----------------------------------------------------------------

/** Every snapshot a catalog publishes from now on, in order. */
export class SnapshotRecorder {
  readonly snapshots: Snapshot[] = [];
  readonly stop: () => void;

  constructor(catalog: Catalog) {
    this.stop = catalog.subscribe((s) => this.snapshots.push(s));
  }

  get count(): number {
    return this.snapshots.length;
  }

  since(index: number): Snapshot[] {
    return this.snapshots.slice(index);
  }
}

export function member(
  s: Snapshot,
  key: string,
  cluster: string,
): { service: FederatedService; member: ClusterMember } | undefined {
  const service = s.services.get(key);
  const m = service?.clusters.find((c) => c.cluster === cluster);
  return service && m ? { service, member: m } : undefined;
}

/** Sorted first addresses of a member's endpoints ([] when the member is absent). */
export function addressesOf(s: Snapshot, key: string, cluster: string): string[] {
  const m = member(s, key, cluster);
  return m ? m.member.endpoints.map((e) => e.addresses[0]!).sort(compareAddresses) : [];
}

export function compareAddresses(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

// ---- Kubernetes objects ---------------------------------------------------------

export function namespace(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}

export interface PortSpec {
  name: string;
  port: number;
}

export function service(
  ns: string,
  name: string,
  opts: {
    ports?: PortSpec[];
    headless?: boolean;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  } = {},
): KubeObject {
  const ports = opts.ports ?? [{ name: 'http', port: 80 }];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: ns,
      labels: { app: name, ...opts.labels },
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    },
    spec: {
      ...(opts.headless ? { clusterIP: 'None' } : {}),
      selector: { app: name },
      ports: ports.map((p) => ({ name: p.name, port: p.port, targetPort: 8080, protocol: 'TCP' })),
    },
  };
}

export function serviceExport(ns: string, name: string): KubeObject {
  return {
    apiVersion: 'multicluster.x-k8s.io/v1alpha1',
    kind: 'ServiceExport',
    metadata: { name, namespace: ns },
  };
}

export interface EndpointSpec {
  address: string;
  /** Omitted: no conditions at all (every condition nil). */
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  nodeName?: string;
  zone?: string;
  hostname?: string;
}

export function slice(
  ns: string,
  svc: string,
  name: string,
  endpoints: EndpointSpec[],
  opts: { labels?: Record<string, string>; ports?: PortSpec[] } = {},
): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: ns,
      labels: {
        'kubernetes.io/service-name': svc,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        ...opts.labels,
      },
    },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({
      addresses: [e.address],
      ...(e.conditions ? { conditions: e.conditions } : {}),
      ...(e.nodeName ? { nodeName: e.nodeName } : {}),
      ...(e.zone ? { zone: e.zone } : {}),
      ...(e.hostname ? { hostname: e.hostname } : {}),
    })),
    ports: (opts.ports ?? [{ name: 'http', port: 8080 }]).map((p) => ({
      name: p.name,
      port: p.port,
      protocol: 'TCP',
    })),
  };
}

/** `count` ready endpoints 127.11.<third>.1.. */
export function readyEndpoints(third: number, count: number, from = 1): EndpointSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    address: `127.11.${third}.${from + i}`,
    conditions: { ready: true, serving: true, terminating: false },
  }));
}

export function node(name: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels },
    spec: {},
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

/**
 * Writes an object straight into the cluster's store with a creation time of
 * our choosing, as if it had been created then: the API server always stamps
 * "now" (to the second), and merge conflicts are decided by creation time.
 */
export function putCreatedAt(sim: SimCluster, obj: KubeObject, creationTimestamp: string): void {
  const t = typeOfKind(obj.apiVersion, obj.kind);
  if (!t) throw new Error(`no type for ${obj.apiVersion} ${obj.kind}`);
  const stored = sim.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
  const base: KubeObject = stored ?? {
    ...obj,
    metadata: { ...obj.metadata, uid: randomUUID(), generation: 1 },
  };
  sim.store.put(Registry.keyOf(t), { ...base, metadata: { ...base.metadata, creationTimestamp } });
}

// ---- the bench ------------------------------------------------------------------

export interface ClusterEntry {
  sim: SimCluster;
  region?: string;
  weight?: number;
  /** Kubeconfig path; default: the one `cluster()` wrote. */
  kubeconfig?: string;
}

export class DiscoveryEnv {
  readonly log = new LogCapture();
  readonly #sims: SimCluster[] = [];
  readonly #discoveries: Discovery[] = [];
  readonly #kubeconfigs = new Map<SimCluster, string>();
  #dir: string | undefined;

  async dir(): Promise<string> {
    this.#dir ??= await mkdtemp(join(tmpdir(), 'fedgate-discovery-'));
    return this.#dir;
  }

  /** A started simulated cluster on a loopback address, with its kubeconfig written. */
  async cluster(
    name: string,
    opts: Partial<Omit<SimClusterOptions, 'name'>> = {},
  ): Promise<SimCluster> {
    const sim = await SimCluster.create({
      name,
      host: '127.0.0.1',
      port: 0,
      bookmarkIntervalMs: BOOKMARK_INTERVAL_MS,
      ...opts,
    });
    this.#sims.push(sim);
    await sim.start();
    this.#kubeconfigs.set(sim, await sim.writeKubeconfig(await this.dir()));
    return sim;
  }

  /** Rewrites the cluster's kubeconfig with another token. */
  async breakToken(sim: SimCluster, token: string): Promise<void> {
    const path = this.#kubeconfigs.get(sim)!;
    const text = await readFile(path, 'utf8');
    if (!text.includes(sim.token)) throw new Error('token not found in kubeconfig');
    await writeFile(path, text.replace(sim.token, token));
  }

  /** A fedgate Config for these clusters, parsed from YAML as a user would write it. */
  async config(
    clusters: ClusterEntry[],
    watch: Record<string, unknown> = FAST_WATCH,
  ): Promise<Config> {
    const dir = await this.dir();
    const yaml = stringify({
      federation: { name: 'testfed', domain: 'example.test' },
      clusters: clusters.map((c) => ({
        name: c.sim.name,
        kubeconfig: c.kubeconfig ?? this.#kubeconfigs.get(c.sim)!,
        ...(c.region ? { region: c.region } : {}),
        ...(c.weight ? { weight: c.weight } : {}),
      })),
      watch,
    });
    return parseConfig(yaml, join(dir, 'fedgate.yaml'));
  }

  start(config: Config, opts: DiscoveryOptions = {}): Discovery {
    const d = Discovery.start(config, this.log.logger, opts);
    this.#discoveries.push(d);
    return d;
  }

  /** Starts discovery and waits until every cluster has synced once. */
  async startSynced(config: Config, opts: DiscoveryOptions = {}): Promise<Discovery> {
    const d = this.start(config, opts);
    const r = await d.catalog.whenReady(15_000);
    if (!r.ready) throw new Error(`discovery not ready; missing: ${r.missing.join(', ')}`);
    return d;
  }

  async cleanup(): Promise<void> {
    for (const d of this.#discoveries.splice(0)) await d.stop();
    for (const s of this.#sims.splice(0)) await s.stop();
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }
}

// ---- a whole local federation with fedgate on it ------------------------------------

/**
 * Health checks fast enough for tests, for every service whatever its annotation:
 * HTTP /healthz every 100 ms, one pass up, two failures down.
 */
export const FAST_HEALTH = {
  active: {
    scope: 'all',
    type: 'http',
    path: '/healthz',
    interval: '100ms',
    timeout: '500ms',
    healthyThreshold: 1,
    unhealthyThreshold: 2,
  },
};

/**
 * A local federation of `scenario` on 127.(addressBlock+i).0.0/16 with fast bookmarks,
 * and a kubeconfig per cluster written to `dir`. Stop with `fed.stop()`.
 */
export async function launchFederation(
  scenario: string,
  addressBlock: number,
  dir: string,
): Promise<{ fed: LocalFederation; kubeconfigs: Record<string, string> }> {
  const fed = await LocalFederation.start(parseScenario(scenario), {
    addressBlock,
    apiPort: 0,
    bookmarkIntervalMs: BOOKMARK_INTERVAL_MS,
  });
  const kubeconfigs: Record<string, string> = {};
  for (const c of fed.clusters) kubeconfigs[c.name] = await c.writeKubeconfig(dir);
  return { fed, kubeconfigs };
}

/** The default galaxy's three clusters and four zones, with shop/web in all of them. */
export const GALAXY_WEB = `
federation: { name: galaxy, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }, { name: us-east-b, nodes: 1 }]
  - name: beta
    region: us-east
    zones: [{ name: us-east-c, nodes: 1 }]
  - name: gamma
    region: eu-west
    zones: [{ name: eu-west-a, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha, beta, gamma], replicasPerZone: 2 }
`;

/**
 * Starts a local federation from scenario YAML on its own address block, and fedgate's
 * discovery (with health and routing) on it, synced. `overrides` are merged over the
 * federation's own config (watch is always FAST_WATCH). Stop with `fed.stop()` and
 * `env.cleanup()`.
 */
export async function startFederation(
  env: DiscoveryEnv,
  scenario: string,
  addressBlock: number,
  overrides: Record<string, unknown>,
): Promise<{ fed: LocalFederation; d: Discovery; config: Config }> {
  const dir = await env.dir();
  const { fed, kubeconfigs } = await launchFederation(scenario, addressBlock, dir);
  const raw = parse(fed.fedgateConfig(kubeconfigs)) as Record<string, unknown>;
  const config = parseConfig(
    stringify({ ...raw, ...overrides, watch: FAST_WATCH }),
    join(dir, 'fedgate.yaml'),
  );
  return { fed, d: await env.startSynced(config), config };
}
