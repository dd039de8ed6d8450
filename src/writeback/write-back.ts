// Write-back: every replica campaigns for the Lease in the first member cluster; the
// one that leads lists what the members hold (ServiceExports, fedgate's
// ServiceImports) and writes only what differs from what the catalog's merge says
// they should. Losing the lease stops the writing at once; every replica keeps
// serving DNS and the proxy whatever happens here.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog } from '../catalog/catalog.ts';
import type { Config } from '../config/schema.ts';
import { errorCodeOf } from '../errors.ts';
import type { ObjectStatusReport, StatusReport } from '../gateway/status.ts';
import type { Logger } from '../observe/log.ts';
import { ApiClient } from '../watch/api-client.ts';
import { loadKubeConfig } from '../watch/cluster-watcher.ts';
import { type Clock, LeaderElector } from './election.ts';
import { GATEWAY_GVRS, gatewayRef, gatewayStatus } from './gateway-status.ts';
import { KubeApi, type KubeObject } from './kube-api.ts';
import { ApiLeaseLock } from './lease-lock.ts';
import {
  exportStatus,
  MANAGED_BY,
  MANAGED_BY_FEDGATE,
  type McsView,
  SERVICE_EXPORT_GVR,
  SERVICE_IMPORT_GVR,
  serviceImports,
} from './mcs.ts';
import { keyOf, ObjectCache, type ObjectCacheOptions } from './object-cache.ts';
import { ObjectWriter, type WriteVerb } from './writer.ts';

export interface WriteBackOptions {
  readonly config: Config;
  readonly catalog: Pick<Catalog, 'current' | 'subscribe' | 'memberService'>;
  readonly log: Logger;
  readonly clock?: Clock;
}

export interface WriteBackStats {
  readonly leading: boolean;
  /** Times this replica started leading. */
  readonly transitions: number;
  /** Writes that reached an API server, by cluster, resource and verb. */
  readonly writes: ReadonlyMap<
    string,
    { cluster: string; resource: string; verb: WriteVerb; count: number }
  >;
  /** Writes that failed (each is tried again). */
  readonly failures: number;
}

/** A failed object is not tried again for this long (unless a new leader starts over). */
const RETRY_MS = 5_000;
/** Changes arriving within this are written in one pass. */
const COALESCE_MS = 50;

export const REAL_CLOCK: Clock = {
  now: Date.now,
  sleep: (ms, signal) => sleep(ms, undefined, { signal }).catch(() => {}),
};

export function defaultIdentity(): string {
  return `${hostname()}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

/** One member while leading: what it holds, and how to write to it. */
interface Member {
  readonly name: string;
  readonly exports: ObjectCache;
  readonly imports: ObjectCache | undefined;
  readonly writer: ObjectWriter;
  readonly api: KubeApi;
  /** Gateway API kinds this member's report names, listed once first needed. */
  readonly gateway: Map<ObjectStatusReport['kind'], ObjectCache>;
  readonly cacheOptions: ObjectCacheOptions;
  /** Object key → when it last failed. */
  readonly failedAt: Map<string, number>;
  running: boolean;
  again: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class WriteBack {
  readonly #opts: WriteBackOptions;
  readonly #clients = new Map<string, ApiClient>();
  readonly #elector: LeaderElector;
  readonly #leaseApi: KubeApi;
  readonly #stop = new AbortController();
  readonly #writes = new Map<
    string,
    { cluster: string; resource: string; verb: WriteVerb; count: number }
  >();
  #failures = 0;
  #members: Member[] = [];
  #unsubscribe: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #gatewayReport: StatusReport | undefined;

  private constructor(opts: WriteBackOptions) {
    this.#opts = opts;
    const { config } = opts;
    // Every kubeconfig is loaded before anything starts (KUBECONFIG_INVALID otherwise).
    for (const c of config.clusters) {
      this.#clients.set(
        c.name,
        new ApiClient(c.name, loadKubeConfig(c.name, c.kubeconfig, c.context)),
      );
    }
    const first = config.clusters[0];
    const leaseClient = first && this.#clients.get(first.name);
    if (!first || !leaseClient) throw new Error('write-back needs a member cluster');
    this.#leaseApi = new KubeApi(leaseClient);
    const { lease } = config.writeBack;
    const lock = new ApiLeaseLock(
      this.#leaseApi,
      lease.namespace,
      lease.name,
      config.writeBack.identity ?? defaultIdentity(),
    );
    this.#elector = new LeaderElector(lock, opts.clock ?? REAL_CLOCK, {
      durationMs: lease.duration,
      renewDeadlineMs: lease.renewDeadline,
      retryPeriodMs: lease.retryPeriod,
    });
  }

  static start(opts: WriteBackOptions): WriteBack {
    const wb = new WriteBack(opts);
    wb.#run();
    return wb;
  }

  get identity(): string {
    return this.#elector.identity;
  }

  stats(): WriteBackStats {
    return {
      leading: this.#elector.leading,
      transitions: this.#elector.transitions,
      writes: this.#writes,
      failures: this.#failures,
    };
  }

  #run(): void {
    const { log, config } = this.#opts;
    const lease = `${config.clusters[0]?.name}/${config.writeBack.lease.namespace}/${config.writeBack.lease.name}`;
    let lastFailure = '';
    this.#loop = this.#elector.run(
      {
        started: () => {
          log.info({ identity: this.identity, lease }, 'leading: this replica writes status back');
          this.#lead();
        },
        stopped: (reason) => {
          this.#unlead();
          if (reason !== 'stopping') {
            log.warn(
              { identity: this.identity, lease, reason },
              'no longer leading: writing stops',
            );
          }
        },
        failed: (e) => {
          // Once per distinct problem: a leader renews every retryPeriod.
          const why = (e as Error).message;
          if (why !== lastFailure) log.warn({ lease, err: why }, 'lease: a try failed');
          lastFailure = why;
        },
      },
      this.#stop.signal,
    );
  }

  #lead(): void {
    const { config } = this.#opts;
    const skip = new Set(config.writeBack.skipServiceImports);
    this.#members = config.clusters.map((c) => {
      const client = this.#clients.get(c.name) as ApiClient;
      const api = new KubeApi(client);
      const cacheOpts = (labelSelector?: string) => ({
        silenceLimitMs: config.watch.silenceLimit,
        listTimeoutMs: config.watch.listTimeout,
        retryMs: 1_000,
        ...(labelSelector ? { labelSelector } : {}),
        changed: () => this.#schedule(member),
        failed: (e: unknown) =>
          this.#opts.log.debug(
            { cluster: c.name, err: (e as Error).message },
            'write-back: list or watch failed',
          ),
      });
      const member: Member = {
        name: c.name,
        api,
        gateway: new Map(),
        cacheOptions: cacheOpts(),
        exports: new ObjectCache(client, SERVICE_EXPORT_GVR, 'ServiceExport', cacheOpts()),
        imports: skip.has(c.name)
          ? undefined
          : new ObjectCache(
              client,
              SERVICE_IMPORT_GVR,
              'ServiceImport',
              cacheOpts(`${MANAGED_BY}=${MANAGED_BY_FEDGATE}`),
            ),
        writer: new ObjectWriter(api, (cluster, resource, verb) =>
          this.#counted(cluster, resource, verb),
        ),
        failedAt: new Map(),
        running: false,
        again: false,
        timer: undefined,
      };
      return member;
    });
    for (const m of this.#members) {
      m.exports.start();
      m.imports?.start();
    }
    this.#unsubscribe = this.#opts.catalog.subscribe(() => {
      for (const m of this.#members) this.#schedule(m);
    });
  }

  #unlead(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    const members = this.#members;
    this.#members = [];
    for (const m of members) {
      clearTimeout(m.timer);
      void m.exports.stop();
      void m.imports?.stop();
      for (const cache of m.gateway.values()) void cache.stop();
      m.api.close();
    }
  }

  #counted(cluster: string, resource: string, verb: WriteVerb): void {
    const key = `${cluster}\t${resource}\t${verb}`;
    const had = this.#writes.get(key);
    if (had) had.count++;
    else this.#writes.set(key, { cluster, resource, verb, count: 1 });
  }

  #schedule(m: Member, delay = COALESCE_MS): void {
    if (m.running) {
      m.again = true;
      return;
    }
    if (m.timer) return;
    m.timer = setTimeout(() => {
      m.timer = undefined;
      void this.#pass(m);
    }, delay);
  }

  /** The catalog's merge is complete only once every member has listed once. */
  #view(): McsView | undefined {
    const { config, catalog } = this.#opts;
    const snapshot = catalog.current();
    for (const c of config.clusters) {
      if (!snapshot.clusters.get(c.name)?.syncedOnce) return undefined;
    }
    return {
      snapshot,
      memberService: (cluster, key) => catalog.memberService(cluster, key),
      addressing: config.dns.addressing,
      edges: config.dns.proxyAddresses,
      regions: new Map(config.clusters.map((c) => [c.name, c.region])),
      federation: config.federation.name,
    };
  }

  /** One pass over a member: every difference written, one object at a time. */
  async #pass(m: Member): Promise<void> {
    const view = this.#view();
    if (!view || !m.exports.synced || (m.imports && !m.imports.synced)) return;
    m.running = true;
    m.again = false;
    let retryIn: number | undefined;
    const now = Date.now();
    const tryObject = async (key: string, write: () => Promise<unknown>) => {
      if (!this.#members.includes(m)) return; // leadership lost mid-pass
      const failed = m.failedAt.get(key);
      if (failed !== undefined && now - failed < RETRY_MS) {
        retryIn = Math.min(retryIn ?? RETRY_MS, RETRY_MS - (now - failed));
        return;
      }
      try {
        await write();
        m.failedAt.delete(key);
      } catch (e) {
        m.failedAt.set(key, Date.now());
        retryIn = RETRY_MS;
        // 404 on a create: the member lacks the namespace. Routine, tried again quietly.
        if (errorCodeOf(e) === 'CLUSTER_RESOURCE_NOT_SERVED') {
          this.#opts.log.debug(
            { cluster: m.name, object: key, err: (e as Error).message },
            'write-back: not there to write (no such namespace?)',
          );
          return;
        }
        this.#failures++;
        this.#opts.log.warn(
          { cluster: m.name, object: key, err: (e as Error).message },
          'write-back: a write failed; trying again',
        );
      }
    };
    try {
      for (const current of [...m.exports.values()]) {
        const ref = refOf(SERVICE_EXPORT_GVR, current);
        await tryObject(`serviceexports/${keyOf(current)}`, () =>
          m.writer.status(m.exports, ref, (cur) => exportStatus(m.name, cur, view)),
        );
      }
      if (m.imports && !m.imports.absent) {
        const imports = m.imports;
        const desired = serviceImports(m.name, view);
        const owned = (o: KubeObject) => o.metadata?.labels?.[MANAGED_BY] === MANAGED_BY_FEDGATE;
        for (const [key, d] of desired) {
          const [namespace = '', name = ''] = key.split('/');
          await tryObject(`serviceimports/${key}`, () =>
            m.writer.object(imports, { gvr: SERVICE_IMPORT_GVR, namespace, name }, d, owned),
          );
        }
        for (const current of [...imports.values()]) {
          if (desired.has(keyOf(current))) continue;
          await tryObject(`serviceimports/${keyOf(current)}`, () =>
            m.writer.object(imports, refOf(SERVICE_IMPORT_GVR, current), undefined, owned),
          );
        }
      }
      for (const report of this.#gatewayReport?.objects ?? []) {
        if (report.cluster !== m.name) continue;
        const cache = this.#gatewayCache(m, report.kind);
        if (!cache.synced) continue; // its list's end schedules another pass
        const ref = gatewayRef(report);
        await tryObject(`${ref.gvr.resource}/${ref.namespace}/${ref.name}`, () =>
          m.writer.status(cache, ref, (cur) => gatewayStatus(report, cur)),
        );
      }
    } finally {
      m.running = false;
    }
    if (m.again) this.#schedule(m);
    else if (retryIn !== undefined) this.#schedule(m, retryIn);
  }

  /**
   * Gateway API status to write (route compilation's report, src/gateway/status.ts):
   * the latest replaces the one before. While leading, each object the report names
   * gets its status written when it differs; objects it no longer names are left as
   * they are.
   */
  setGatewayStatus(report: StatusReport): void {
    this.#gatewayReport = report;
    for (const m of this.#members) this.#schedule(m);
  }

  /** The member's cache of a Gateway API kind, started on first use. */
  #gatewayCache(m: Member, kind: ObjectStatusReport['kind']): ObjectCache {
    let cache = m.gateway.get(kind);
    if (!cache) {
      const gvr = GATEWAY_GVRS[kind];
      cache = new ObjectCache(this.#clients.get(m.name) as ApiClient, gvr, kind, m.cacheOptions);
      m.gateway.set(kind, cache);
      cache.start();
    }
    return cache;
  }

  /** Stops campaigning; a leader releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    this.#unlead();
    this.#leaseApi.close();
  }
}

function refOf(gvr: typeof SERVICE_EXPORT_GVR, o: KubeObject) {
  return { gvr, namespace: o.metadata?.namespace ?? '', name: o.metadata?.name ?? '' };
}
