// Write-back: every replica campaigns for the Lease in the first config cluster; the
// one that leads lists what the members hold (ServiceExports, fedgate's
// ServiceImports, Gateway API objects a status report names) and writes only what
// differs from what should be (member-writer.ts, one per member). Losing the lease
// stops the writing at once; every replica keeps serving DNS and the proxy whatever
// happens here.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog } from '../catalog/catalog.ts';
import type { Config } from '../config/schema.ts';
import type { StatusReport } from '../gateway/status.ts';
import type { Logger } from '../observe/log.ts';
import { ApiClient } from '../watch/api-client.ts';
import { loadKubeConfig } from '../watch/cluster-watcher.ts';
import { type Clock, LeaderElector } from './election.ts';
import { KubeApi } from './kube-api.ts';
import { ApiLeaseLock } from './lease-lock.ts';
import type { McsView } from './mcs.ts';
import { MemberWriter } from './member-writer.ts';
import type { WriteVerb } from './writer.ts';

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

export const REAL_CLOCK: Clock = {
  now: Date.now,
  sleep: (ms, signal) => sleep(ms, undefined, { signal }).catch(() => {}),
};

/**
 * Where the Lease is: the first of gatewayAPI.clusters (the config clusters, which every
 * replica reads), else the first member.
 */
export function leaseCluster(config: Config): string {
  return config.gatewayAPI.clusters[0] ?? config.clusters[0]?.name ?? '';
}

export function defaultIdentity(): string {
  return `${hostname()}_${process.pid}_${randomBytes(3).toString('hex')}`;
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
  #members: MemberWriter[] = [];
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
    const leaseClient = this.#clients.get(leaseCluster(config));
    if (!leaseClient) throw new Error('write-back needs a member cluster');
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
    const lease = `${leaseCluster(config)}/${config.writeBack.lease.namespace}/${config.writeBack.lease.name}`;
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
    const { config, log } = this.#opts;
    const skip = new Set(config.writeBack.skipServiceImports);
    this.#members = config.clusters.map(
      (c) =>
        new MemberWriter({
          name: c.name,
          client: this.#clients.get(c.name) as ApiClient,
          watch: {
            silenceLimitMs: config.watch.silenceLimit,
            listTimeoutMs: config.watch.listTimeout,
          },
          skipImports: skip.has(c.name),
          log,
          wrote: (cluster, resource, verb) => this.#counted(cluster, resource, verb),
          failed: () => {
            this.#failures++;
          },
          view: () => this.#view(),
          gatewayReport: () => this.#gatewayReport,
        }),
    );
    for (const m of this.#members) m.start();
    this.#unsubscribe = this.#opts.catalog.subscribe(() => {
      for (const m of this.#members) m.schedule();
    });
  }

  #unlead(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const m of this.#members) m.stop();
    this.#members = [];
  }

  #counted(cluster: string, resource: string, verb: WriteVerb): void {
    const key = `${cluster}\t${resource}\t${verb}`;
    const had = this.#writes.get(key);
    if (had) had.count++;
    else this.#writes.set(key, { cluster, resource, verb, count: 1 });
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

  /**
   * Gateway API status to write (route compilation's report, src/gateway/status.ts):
   * the latest replaces the one before. While leading, each object the report names
   * gets its status written when it differs; objects it no longer names are left as
   * they are.
   */
  setGatewayStatus(report: StatusReport): void {
    this.#gatewayReport = report;
    for (const m of this.#members) m.schedule();
  }

  /** Stops campaigning; a leader releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    this.#unlead();
    this.#leaseApi.close();
  }
}
