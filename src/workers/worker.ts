// A worker process of `fedgate start --workers N` (N ≥ 2): DNS and the proxy on the
// configured listeners (TCP ones shared through node:cluster, DNS's UDP sockets its
// own on the shared port, SO_REUSEPORT: see pool.ts), routing with
// its own Router over mirrors of the primary's catalog and health. It watches
// nothing and probes nothing: the primary does, once, and hands every snapshot and
// health change over. What the proxy learns about endpoints (outcomes) and which
// plans traffic used (for failover notes) go back to the primary.
//
// Signals are the primary's business: SIGINT, SIGTERM and SIGHUP sent to the whole
// process group (Ctrl-C, systemd) are ignored here, and the primary drains the
// workers over IPC. A worker whose primary is gone (the IPC channel closes without
// a drain) is ended at once by node:cluster itself: with the primary went the TCP
// listeners, and whatever runs fedgate starts it again.

import type { Config } from '../config/schema.ts';
import { FedgateError } from '../errors.ts';
import type { RouteTables } from '../gateway/attached.ts';
import type { Outcome } from '../health/outlier.ts';
import { HealthStore } from '../health/store.ts';
import { ExhaustionTracker } from '../observe/exhaustion.ts';
import { createLogger, type Logger } from '../observe/log.ts';
import { Metrics } from '../observe/metrics.ts';
import { withAccessLog } from '../proxy/access-log.ts';
import { Router, routerOptions } from '../routing/router.ts';
import { CatalogMirror } from './mirror.ts';
import {
  type Answer,
  type Ask,
  type FromWorker,
  isToWorker,
  type Report,
  type ToWorker,
} from './protocol.ts';
import { applyRoutesDelta } from './routes-delta.ts';
import { ListenError, LocalServing, type StagedServing } from './serving.ts';

/** Outcome reports wait at most this long, or until this many, before going to the primary. */
const REPORT_FLUSH_MS = 5;
const REPORT_BATCH = 512;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Runs this process as a worker until the primary drains it (or goes away). */
export function runWorker(): void {
  new WorkerProcess(createLogger('fedgate')).run();
}

class WorkerProcess {
  /** Its lines carry the worker's slot once init has said it. */
  #log: Logger;
  readonly #catalog: CatalogMirror;
  readonly #health = new HealthStore();
  /** Made at init: its series are labelled with the slot. */
  #metrics: Metrics | undefined;
  #router: Router | undefined;
  #serving: LocalServing | undefined;
  /** The Gateway API routes the primary sent last. */
  #routes: RouteTables | undefined;
  /** Reloads staged here, by the primary's reload number, until it says commit or abort. */
  readonly #staged = new Map<number, { config: Config; serving: StagedServing }>();
  /** Init, reload steps and drain run one at a time, in the order they came. */
  #control: Promise<void> = Promise.resolve();
  #draining = false;
  #reports: Report[] = [];
  #flush: NodeJS.Timeout | undefined;

  constructor(log: Logger) {
    this.#log = log;
    this.#catalog = new CatalogMirror(log);
  }

  run(): void {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(signal, () =>
        this.#log.debug({ signal }, 'signal ignored: the primary process drains the workers'),
      );
    }
    process.on('message', (m: unknown) => this.#receive(m));
    this.#send({ type: 'hello' });
  }

  #send(m: FromWorker, then?: () => void): void {
    if (!process.connected || !process.send) {
      then?.();
      return;
    }
    process.send(m, undefined, undefined, () => then?.());
  }

  #queue(step: () => Promise<void>): void {
    this.#control = this.#control.then(step).catch((err: unknown) => {
      this.#log.error({ err }, 'worker: control step failed');
    });
  }

  #receive(m: unknown): void {
    if (!isToWorker(m)) return;
    switch (m.type) {
      case 'init':
        this.#init(m);
        return;
      case 'snapshot':
        if (!this.#catalog.apply(m.delta)) this.#send({ type: 'resync' });
        return;
      case 'health':
        for (const e of m.entries) this.#health.mirror(e);
        return;
      case 'ask':
        if (m.ask.op === 'ping') {
          this.#answer(m.id, { ok: true });
        } else if (m.ask.op === 'metrics') {
          const metrics = this.#metrics?.json() ?? Promise.resolve([]);
          metrics.then(
            (json) => this.#answer(m.id, { ok: true, metrics: json }),
            (e: unknown) => this.#answer(m.id, failure(e)),
          );
        } else if (m.ask.op === 'traffic') {
          const traffic = this.#metrics?.traffic.json();
          this.#answer(m.id, traffic ? { ok: true, traffic } : { ok: true });
        } else {
          const { id, ask } = m;
          this.#queue(() => this.#reload(id, ask));
        }
        return;
      case 'drain':
        this.#queue(() => this.#drain(m.graceMs));
        return;
      case 'routes': {
        const tables = applyRoutesDelta(this.#routes, m.delta);
        if (tables === undefined) {
          // It names a host not held here: the routes in force stay until the whole tables come.
          this.#routes = undefined;
          this.#send({ type: 'resync' });
          return;
        }
        // Before the proxy is up they wait for it (#init applies them).
        this.#routes = tables;
        this.#serving?.setRoutes(tables);
        return;
      }
    }
  }

  #answer(id: number, answer: Answer): void {
    this.#send({ type: 'answer', id, answer });
  }

  /** The mirrors take the primary's state at once; the listeners open in turn. */
  #init(m: Extract<ToWorker, { type: 'init' }>): void {
    this.#log = this.#log.child({ worker: m.slot });
    // The worker's own: its accepts and upstream connects, summed into /metrics by the primary.
    const exhaustion = new ExhaustionTracker({ log: this.#log });
    const metrics = new Metrics({ worker: String(m.slot), exhaustion });
    this.#metrics = metrics;
    const config = deepFreeze(m.config);
    this.#catalog.apply(m.snapshot);
    for (const e of m.health) this.#health.mirror(e);
    const router = new Router(routerOptions(config), this.#health, undefined, (plan) =>
      this.#send({ type: 'used', service: plan.service, locality: plan.locality }),
    );
    this.#router = router;
    this.#catalog.subscribe((s) => router.prune(s));
    this.#queue(async () => {
      const log = this.#log;
      try {
        this.#serving = await LocalServing.start({
          config,
          catalog: this.#catalog,
          health: this.#health,
          report: this,
          router,
          log,
          metrics,
          observer: (c) => (c.http.accessLog ? withAccessLog(metrics, log) : metrics),
          serialBase: m.serialBase,
          exhaustion,
          dnsReusePort: m.reusePort,
        });
      } catch (e) {
        const setting = e instanceof ListenError ? e.setting : 'the listeners';
        this.#draining = true;
        this.#send({ type: 'failed', setting, message: (e as Error).message }, () =>
          process.exit(1),
        );
        return;
      }
      if (this.#routes) this.#serving.setRoutes(this.#routes);
      log.info('worker serving');
      this.#send({ type: 'listening', addresses: this.#serving.addresses() });
    });
  }

  /** The proxy's outcome reports, batched to the primary's outlier detection. */
  report(service: string, id: string, outcome: Outcome): void {
    this.#reports.push([service, id, outcome]);
    if (this.#reports.length >= REPORT_BATCH) this.#flushReports();
    else this.#flush ??= setTimeout(() => this.#flushReports(), REPORT_FLUSH_MS);
  }

  #flushReports(): void {
    clearTimeout(this.#flush);
    this.#flush = undefined;
    if (this.#reports.length === 0) return;
    const reports = this.#reports;
    this.#reports = [];
    this.#send({ type: 'reports', reports });
  }

  async #reload(
    id: number,
    ask: Exclude<Ask, { op: 'metrics' | 'ping' | 'traffic' }>,
  ): Promise<void> {
    const serving = this.#serving;
    if (!serving) {
      this.#answer(id, { ok: false, code: 'RELOAD_FAILED', problem: 'the worker is not serving' });
      return;
    }
    if (ask.op === 'stage') {
      try {
        const config = deepFreeze(ask.config);
        const staged = await serving.stage(config);
        this.#staged.set(ask.reload, { config, serving: staged });
        const { opened, closed, certificatesChanged } = staged;
        this.#answer(id, { ok: true, staged: { opened, closed, certificatesChanged } });
      } catch (e) {
        this.#answer(id, failure(e));
      }
      return;
    }
    const staged = this.#staged.get(ask.reload);
    this.#staged.delete(ask.reload);
    if (ask.op === 'abort') {
      await staged?.serving.abort();
      this.#answer(id, { ok: true });
      return;
    }
    if (staged) {
      // The router first, as in one process (Discovery commits before serving): the
      // proxy's commit reads this replica's locality from it.
      this.#router?.reconfigure(routerOptions(staged.config));
      staged.serving.commit();
    }
    this.#answer(id, { ok: true });
    this.#send({ type: 'listening', addresses: serving.addresses() });
  }

  async #drain(graceMs: number): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    const cut = this.#serving ? await this.#serving.drain(graceMs) : { proxyCut: 0, dnsCut: 0 };
    this.#flushReports();
    await this.#serving?.stop();
    this.#send({ type: 'drained', ...cut }, () => process.exit(0));
  }
}

function failure(e: unknown): Answer {
  return {
    ok: false,
    code: e instanceof FedgateError ? e.code : 'RELOAD_FAILED',
    problem: (e as Error).message,
  };
}
