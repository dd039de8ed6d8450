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
import { SimCluster } from '../../src/localfed/cluster.ts';
import { LocalFederation } from '../../src/localfed/federation.ts';
import type { ApiKind, MemberCluster } from '../../src/localfed/member.ts';
import { RealMember } from '../../src/localfed/real-member.ts';
import { parseScenario } from '../../src/localfed/scenario.ts';
import { SimMember } from '../../src/localfed/sim-member.ts';
import type { Logger } from '../../src/observe/log.ts';
import { type MemberOptions, MemberPool, TrackedMember } from './shared-members.ts';

/** Small enough that failures show within seconds; bookmarks keep healthy watches well inside silenceLimit. */
export const FAST_WATCH = { silenceLimit: '2s', listTimeout: '2s', startupTimeout: '10s' };
export const BOOKMARK_INTERVAL_MS = 250;

/**
 * For a real member (RealMember: kube-apiserver 1.37, etcd progress notifications every
 * 2 s), whose watch cache sends a quiet watch a BOOKMARK about every 60 s (the client-node
 * bookmark test in test/informer.test.ts waits 61 s for the first; src/localfed/README.md
 * explains the minute): a silence limit of 90 s keeps healthy watches open. Lists and
 * startup get more time than on the simulator: a real list goes through a separate
 * process on a machine shared with other control planes.
 */
export const REAL_WATCH = { silenceLimit: '90s', listTimeout: '5s', startupTimeout: '20s' };

/**
 * For tests of a hung real API: only the watchdog notices a hang, after up to twice its
 * limit (the open watch, then the one that never opens): at 90 s, minutes. At 5 s it cuts healthy quiet watches too, which fedgate resumes from
 * where they were (a routine restart, not an outage), and a hang shows within ~10 s.
 */
export const REAL_HANG_WATCH = { ...REAL_WATCH, silenceLimit: '5s' };

/** The watch settings for members of `api`: what keeps healthy watches open there. */
export function watchFor(api: ApiKind, hang = false): Record<string, unknown> {
  if (api === 'sim') return FAST_WATCH;
  return hang ? REAL_HANG_WATCH : REAL_WATCH;
}

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

// ---- the bench ------------------------------------------------------------------

/**
 * The default pool's members: simulated ones on 127.0.0.1 with fast bookmarks, all the
 * suites that drive only the simulator need. Suites that run on both kinds pass a pool
 * over members.ts's startMember (discovery-checks.ts does).
 */
async function startSimMember(
  api: ApiKind,
  name: string,
  opts: MemberOptions = {},
): Promise<MemberCluster> {
  if (api !== 'sim')
    throw new Error(`DiscoveryEnv(${api}) needs a pool that starts ${api} members`);
  const sim = await SimCluster.create({
    name,
    host: '127.0.0.1',
    port: 0,
    bookmarkIntervalMs: opts.bookmarkIntervalMs ?? BOOKMARK_INTERVAL_MS,
    serviceExportCRD: opts.serviceExportCRD,
  });
  await sim.start();
  return new SimMember(sim);
}

export { simOf } from '../../src/localfed/sim-member.ts';

/** The RealMember behind a member (shared ones are lent wrapped); fails on a simulated one. */
export function realOf(c: MemberCluster): RealMember {
  const inner = c instanceof TrackedMember ? c.inner : c;
  if (inner instanceof RealMember) return inner;
  throw new Error(`${c.name} is a ${c.api} member: this needs a real one`);
}

export interface ClusterEntry {
  cluster: MemberCluster;
  region?: string;
  weight?: number;
  /** Kubeconfig path; default: the one `cluster()` wrote. */
  kubeconfig?: string;
}

export class DiscoveryEnv {
  readonly api: ApiKind;
  readonly log = new LogCapture();
  readonly #pool: MemberPool;
  readonly #members: { member: MemberCluster; shared: boolean }[] = [];
  readonly #discoveries: Discovery[] = [];
  readonly #kubeconfigs = new Map<MemberCluster, string>();
  #dir: string | undefined;

  /** `pool` shares real members between the tests of a file (stop it in afterAll). */
  constructor(api: ApiKind = 'sim', pool = new MemberPool(startSimMember)) {
    this.api = api;
    this.#pool = pool;
  }

  async dir(): Promise<string> {
    this.#dir ??= await mkdtemp(join(tmpdir(), 'fedgate-discovery-'));
    return this.#dir;
  }

  /**
   * A started member cluster of the env's kind, with its kubeconfig written: the
   * simulator's on a loopback address of its own; a real one shared by the file's tests
   * (see MemberPool), clean of what earlier tests wrote.
   */
  async cluster(name: string, opts: MemberOptions = {}): Promise<MemberCluster> {
    const taken = await this.#pool.take(this.api, name, opts);
    this.#members.push(taken);
    this.#kubeconfigs.set(taken.member, await taken.member.writeKubeconfig(await this.dir()));
    return taken.member;
  }

  /** Rewrites the cluster's kubeconfig with another token. */
  async breakToken(c: MemberCluster, token: string): Promise<void> {
    const path = this.#kubeconfigOf(c);
    const text = await readFile(path, 'utf8');
    if (!text.includes(c.token)) throw new Error('token not found in kubeconfig');
    await writeFile(path, text.replace(c.token, token));
  }

  #kubeconfigOf(c: MemberCluster): string {
    const path = this.#kubeconfigs.get(c);
    if (path === undefined) throw new Error(`${c.name} was not made by this env`);
    return path;
  }

  /** The watch settings for this env's members (FAST_WATCH on the simulator). */
  get watch(): Record<string, unknown> {
    return watchFor(this.api);
  }

  /** A fedgate Config for these clusters, parsed from YAML as a user would write it. */
  async config(clusters: ClusterEntry[], watch = this.watch): Promise<Config> {
    const dir = await this.dir();
    const yaml = stringify({
      federation: { name: 'testfed', domain: 'example.test' },
      clusters: clusters.map((c) => ({
        name: c.cluster.name,
        kubeconfig: c.kubeconfig ?? this.#kubeconfigOf(c.cluster),
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
    const r = await d.catalog.whenReady(this.api === 'real' ? 30_000 : 15_000);
    if (!r.ready) throw new Error(`discovery not ready; missing: ${r.missing.join(', ')}`);
    return d;
  }

  async cleanup(): Promise<void> {
    for (const d of this.#discoveries.splice(0)) await d.stop();
    for (const m of this.#members.splice(0)) await this.#pool.giveBack(m.member, m.shared);
    this.#kubeconfigs.clear();
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
