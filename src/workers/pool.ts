// The primary's side of `fedgate start --workers N` (N ≥ 2): N worker processes
// (node:cluster) serve DNS and the proxy on the configured listeners, while this
// process keeps discovery (watchers, catalog, active checks, outlier detection), the
// admin listener, reloads and signals. What crosses the IPC channel is in
// protocol.ts.
//
// Listeners. TCP (the proxy, DNS over TCP) is shared the node:cluster way: this
// process holds each listening socket and hands accepted connections to the workers
// in turn (round robin). DNS over UDP: each worker binds a socket of its own on the
// same address with SO_REUSEPORT (dgram's `reusePort`), and the kernel spreads the
// datagrams among them by a hash of the client's address and port, so every worker
// reads its own queue and no datagram wakes the others. (node:cluster's way for UDP
// gives every worker the handle of one socket bound here: all of them wake for each
// datagram and whichever reads first answers it.) A worker that exits takes its
// socket with it and the others' share grows until its replacement binds again. Port
// 0 in dns.listen is pinned here to one free port, the same for every worker, kept
// across reloads and restarts. On platforms whose kernel does not spread datagrams
// among such sockets (REUSE_PORT_PLATFORMS) the workers share one socket as before.
//
// A worker that exits unexpectedly is started again (after a short, growing delay),
// at most WORKER_RESTART_LIMIT times in WORKER_RESTART_WINDOW_MS; past that the pool
// gives up and fedgate stops, so whatever runs it can start it afresh.

import cluster, { type Worker } from 'node:cluster';
import { createSocket } from 'node:dgram';
import { createServer, isIPv6 } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Snapshot } from '../catalog/model.ts';
import type { Config, ListenAddress } from '../config/schema.ts';
import { FedgateError } from '../errors.ts';
import type { RouteTables } from '../gateway/attached.ts';
import type { Outcome } from '../health/outlier.ts';
import type { HealthStore, ServiceHealthEntry } from '../health/store.ts';
import { hostPort } from '../host-port.ts';
import type { Logger } from '../observe/log.ts';
import { type MetricsJson, mergeJson, risingOnly } from '../observe/metrics-merge.ts';
import type { WorkerMetricsSource } from '../observe/metrics-workers.ts';
import type { TrafficJson } from '../observe/traffic.ts';
import type { Locality } from '../routing/types.ts';
import {
  type Answer,
  type Ask,
  type FromWorker,
  isFromWorker,
  type ServingAddresses,
  type ServingChanges,
  snapshotDelta,
  type ToWorker,
} from './protocol.ts';
import { routesDelta } from './routes-delta.ts';
import { ListenError, type Serving, type StagedServing } from './serving.ts';

/** Unexpected worker exits tolerated within WORKER_RESTART_WINDOW_MS before fedgate gives up. */
export const WORKER_RESTART_LIMIT = 10;
export const WORKER_RESTART_WINDOW_MS = 60_000;
/** The first restart waits this long; each one more within the window waits twice as long, up to the max. */
export const WORKER_RESTART_DELAY_MS = 100;
export const WORKER_RESTART_MAX_DELAY_MS = 5_000;
/** How long every worker has to start serving at start. */
const START_TIMEOUT_MS = 60_000;
/** How long a worker has to stage a reload (bind new listeners, read certificates), and to commit or abort it. */
const STAGE_TIMEOUT_MS = 30_000;
/** How long a worker has to answer a scrape; one that does not counts with its last answer. */
const METRICS_TIMEOUT_MS = 5_000;
/** Past the drain's grace period, how long a worker has to say it is done and exit. */
const EXIT_SLACK_MS = 5_000;
/** Where SO_REUSEPORT spreads datagrams among sockets (libuv refuses it elsewhere). */
const REUSE_PORT_PLATFORMS: ReadonlySet<string> = new Set(['linux', 'freebsd']);
/** Tries for a port free for both UDP and TCP when dns.listen says port 0. */
const PIN_ATTEMPTS = 5;

/** What the pool reads and tells on the primary's side. */
export interface PoolDiscovery {
  readonly catalog: {
    current(): Snapshot;
    subscribe(fn: (s: Snapshot) => void): () => void;
  };
  readonly health: {
    readonly store: HealthStore;
    report(service: string, id: string, outcome: Outcome): void;
  };
  planUsed(service: string, locality: Locality | undefined): void;
}

export interface WorkerPoolOptions {
  /** How many worker processes: 2 or more. */
  readonly workers: number;
  readonly config: Config;
  readonly discovery: PoolDiscovery;
  readonly log: Logger;
  /** The module a worker runs (default: main.ts beside this file). */
  readonly exec?: string;
  /** Workers keep exiting: the pool gave up restarting them, and fedgate should stop. */
  readonly onFatal?: (problem: string) => void;
  /** Workers bind DNS's UDP sockets with SO_REUSEPORT (default: where the platform spreads by it). */
  readonly reusePort?: boolean;
  /** Restart bounds (default: the WORKER_RESTART_* constants). */
  readonly restarts?: {
    readonly limit?: number;
    readonly windowMs?: number;
    readonly delayMs?: number;
    readonly maxDelayMs?: number;
  };
}

type SlotState = 'starting' | 'listening' | 'draining' | 'down';
type Asked = Answer | 'gone' | 'timeout';

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  pid: number | undefined;
  state: SlotState;
  /** init was sent: the worker gets snapshots, health and asks from then on. */
  initSent: boolean;
  addresses: ServingAddresses | undefined;
  /** Its series as last scraped: what it leaves behind when it exits. */
  lastMetrics: MetricsJson | undefined;
  readonly asks: Map<number, (a: Asked) => void>;
  drained: ((cut: { proxyCut: number; dnsCut: number }) => void) | undefined;
  /** Resolves when the current worker has exited (at once when there is none). */
  exited: Promise<void>;
  restartTimer: NodeJS.Timeout | undefined;
}

const NOTHING_CUT = { proxyCut: 0, dnsCut: 0 };

export class WorkerPool implements Serving, WorkerMetricsSource {
  readonly #slots: Slot[];
  readonly #log: Logger;
  readonly #discovery: PoolDiscovery;
  readonly #exec: string;
  readonly #onFatal: ((problem: string) => void) | undefined;
  readonly #bounds: { limit: number; windowMs: number; delayMs: number; maxDelayMs: number };
  #config: Config;
  /** #config as the workers get it: dns.listen's port 0 pinned (#pin). */
  #workerConfig: Config;
  /** Each UDP socket is a worker's own (SO_REUSEPORT); otherwise one is shared. */
  readonly #reusePort: boolean;
  /** dns.listen's `host:0` → the port every worker binds for it. */
  readonly #pins = new Map<string, number>();
  /** The Gateway API routes handed over last: a worker started later gets them too. */
  #routes: RouteTables | undefined;
  /** The snapshot the workers hold: deltas are made against it. */
  #sent: Snapshot;
  readonly #healthChanged = new Set<string>();
  #healthFlush: NodeJS.Immediate | undefined;
  readonly #unsubscribe: Array<() => void> = [];
  #askSeq = 0;
  #reloadSeq = 0;
  /** A reload between stage and commit or abort: new workers wait for it to settle. */
  #reloading: Promise<void> | undefined;
  #started: { resolve(): void; reject(e: unknown): void } | undefined;
  #stopping = false;
  #drained: Promise<{ proxyCut: number; dnsCut: number }> | undefined;
  #restarts = 0;
  /** Past the restart bound: no worker is started again, and the fatal problem told once. */
  #gaveUp = false;
  #recentExits: number[] = [];
  /** Counters and histograms of workers that exited, as last scraped. */
  readonly #retired: MetricsJson[] = [];
  #addresses: ServingAddresses = { udp: [], http: [], https: [] };
  readonly #serialBase = Math.floor(Date.now() / 1000);

  private constructor(opts: WorkerPoolOptions) {
    this.#config = opts.config;
    this.#workerConfig = opts.config;
    this.#reusePort = opts.reusePort ?? REUSE_PORT_PLATFORMS.has(process.platform);
    this.#log = opts.log;
    this.#discovery = opts.discovery;
    this.#exec = opts.exec ?? fileURLToPath(new URL('./main.ts', import.meta.url));
    this.#onFatal = opts.onFatal;
    this.#bounds = {
      limit: opts.restarts?.limit ?? WORKER_RESTART_LIMIT,
      windowMs: opts.restarts?.windowMs ?? WORKER_RESTART_WINDOW_MS,
      delayMs: opts.restarts?.delayMs ?? WORKER_RESTART_DELAY_MS,
      maxDelayMs: opts.restarts?.maxDelayMs ?? WORKER_RESTART_MAX_DELAY_MS,
    };
    this.#slots = Array.from({ length: opts.workers }, (_, index) => ({
      index,
      worker: undefined,
      pid: undefined,
      state: 'down',
      initSent: false,
      addresses: undefined,
      lastMetrics: undefined,
      asks: new Map(),
      drained: undefined,
      exited: Promise.resolve(),
      restartTimer: undefined,
    }));
    this.#sent = opts.discovery.catalog.current();
  }

  /**
   * Forks every worker and resolves once all of them listen. A worker that cannot
   * open a listener rejects with ListenError (naming the setting); whatever started
   * is stopped first.
   */
  static async start(opts: WorkerPoolOptions): Promise<WorkerPool> {
    if (!cluster.isPrimary) throw new Error('a worker pool runs in the primary process only');
    const pool = new WorkerPool(opts);
    pool.#workerConfig = await pool.#pin(opts.config).catch((e: unknown) => {
      throw new ListenError('dns.listen', e);
    });
    pool.#follow();
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        pool.#started = { resolve, reject };
        timer = setTimeout(
          () => reject(new Error(`the workers did not start within ${START_TIMEOUT_MS / 1000} s`)),
          START_TIMEOUT_MS,
        );
        for (const slot of pool.#slots) pool.#fork(slot);
      });
    } catch (e) {
      await pool.drain(0);
      await pool.stop();
      throw e;
    } finally {
      clearTimeout(timer);
      pool.#started = undefined;
    }
    return pool;
  }

  get size(): number {
    return this.#slots.length;
  }

  /** Workers started again after exiting unexpectedly. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Worker processes by state (a slot waiting for its replacement is `down`). */
  states(): ReadonlyMap<string, number> {
    const out = new Map<string, number>();
    for (const s of this.#slots) out.set(s.state, (out.get(s.state) ?? 0) + 1);
    return out;
  }

  addresses(): ServingAddresses {
    return this.#addresses;
  }

  readiness(): { ready: boolean; reason: string } {
    const n = this.#slots.length;
    const notUp = this.#slots.filter((s) => s.state !== 'listening');
    if (notUp.length === 0) return { ready: true, reason: `${n} workers listening` };
    const which = notUp.map((s) => `${s.index} ${s.state}`).join(', ');
    return { ready: false, reason: `workers not listening (of ${n}): ${which}` };
  }

  // ---- the catalog and health, handed to the workers

  #follow(): void {
    this.#unsubscribe.push(
      this.#discovery.catalog.subscribe((s) => {
        const delta = snapshotDelta(this.#sent, s);
        this.#sent = s;
        this.#broadcast({ type: 'snapshot', delta });
      }),
      this.#discovery.health.store.watchVersions((service) => {
        this.#healthChanged.add(service);
        this.#healthFlush ??= setImmediate(() => this.#flushHealth());
      }),
    );
  }

  /** Health changes go out together, once per turn of the event loop. */
  #flushHealth(): void {
    clearImmediate(this.#healthFlush);
    this.#healthFlush = undefined;
    const entries = this.#healthEntries(this.#healthChanged);
    this.#healthChanged.clear();
    if (entries.length > 0) this.#broadcast({ type: 'health', entries });
  }

  #healthEntries(services: Iterable<string>): ServiceHealthEntry[] {
    const store = this.#discovery.health.store;
    const out: ServiceHealthEntry[] = [];
    for (const service of services) {
      const e = store.exportService(service);
      if (e) out.push(e);
    }
    return out;
  }

  #broadcast(m: ToWorker): void {
    for (const s of this.#slots) if (s.initSent && s.worker) this.#send(s.worker, m);
  }

  #send(worker: Worker, m: ToWorker): void {
    if (!worker.isConnected()) return;
    try {
      worker.send(m);
    } catch (err) {
      this.#log.debug({ err }, 'worker: send failed');
    }
  }

  // ---- worker lifecycle

  #fork(slot: Slot): void {
    slot.restartTimer = undefined;
    cluster.setupPrimary({ exec: this.#exec, args: [], serialization: 'advanced' });
    const worker = cluster.fork();
    slot.worker = worker;
    slot.pid = worker.process.pid;
    slot.state = 'starting';
    slot.initSent = false;
    slot.addresses = undefined;
    let exited!: () => void;
    slot.exited = new Promise((resolve) => {
      exited = resolve;
    });
    worker.on('message', (m: unknown) => {
      if (slot.worker === worker && isFromWorker(m)) this.#receive(slot, worker, m);
    });
    // IPC errors (the channel closing under a send) must not take the primary down.
    worker.on('error', (err) => this.#log.debug({ err, worker: slot.index }, 'worker: IPC error'));
    worker.on('exit', (code, signal) => {
      exited();
      this.#exited(slot, worker, code, signal);
    });
  }

  #receive(slot: Slot, worker: Worker, m: FromWorker): void {
    switch (m.type) {
      case 'hello':
        void this.#init(slot, worker);
        return;
      case 'listening':
        slot.addresses = m.addresses;
        this.#addresses = m.addresses;
        if (slot.state === 'starting') slot.state = 'listening';
        if (this.#started && this.#slots.every((s) => s.state === 'listening')) {
          this.#started.resolve();
        }
        return;
      case 'failed': {
        const problem = `worker ${slot.index} cannot listen on ${m.setting}: ${m.message}`;
        if (this.#started) this.#started.reject(new ListenError(m.setting, new Error(m.message)));
        else this.#log.error({ worker: slot.index, setting: m.setting }, problem);
        return;
      }
      case 'reports':
        for (const [service, id, outcome] of m.reports) {
          this.#discovery.health.report(service, id, outcome);
        }
        return;
      case 'used':
        this.#discovery.planUsed(m.service, m.locality);
        return;
      case 'resync':
        this.#send(worker, { type: 'snapshot', delta: snapshotDelta(undefined, this.#sent) });
        if (this.#routes) {
          this.#send(worker, { type: 'routes', delta: routesDelta(undefined, this.#routes) });
        }
        this.#send(worker, {
          type: 'health',
          entries: this.#healthEntries(this.#discovery.health.store.services()),
        });
        return;
      case 'answer':
        slot.asks.get(m.id)?.(m.answer);
        return;
      case 'drained':
        slot.drained?.({ proxyCut: m.proxyCut, dnsCut: m.dnsCut });
        return;
    }
  }

  /** A new worker gets the running configuration: never one a reload is still deciding on. */
  async #init(slot: Slot, worker: Worker): Promise<void> {
    while (this.#reloading) await this.#reloading;
    if (slot.worker !== worker) return;
    if (this.#stopping) {
      worker.kill();
      return;
    }
    this.#send(worker, {
      type: 'init',
      slot: slot.index,
      config: this.#workerConfig,
      serialBase: this.#serialBase,
      reusePort: this.#reusePort,
      snapshot: snapshotDelta(undefined, this.#sent),
      health: this.#healthEntries(this.#discovery.health.store.services()),
    });
    if (this.#routes) {
      this.#send(worker, { type: 'routes', delta: routesDelta(undefined, this.#routes) });
    }
    slot.initSent = true;
  }

  #exited(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    for (const done of [...slot.asks.values()]) done('gone');
    slot.asks.clear();
    slot.drained?.(NOTHING_CUT);
    slot.drained = undefined;
    // What it counted stays counted: sums across workers never fall.
    if (slot.lastMetrics) this.#retire(slot.lastMetrics);
    slot.lastMetrics = undefined;
    slot.worker = undefined;
    slot.state = 'down';
    slot.initSent = false;
    slot.addresses = undefined;
    if (this.#stopping || this.#gaveUp) return;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    if (this.#started) {
      this.#started.reject(new Error(`worker ${slot.index} exited while starting (${how})`));
      return;
    }
    const { limit, windowMs, delayMs, maxDelayMs } = this.#bounds;
    const now = Date.now();
    this.#recentExits = this.#recentExits.filter((t) => now - t < windowMs);
    this.#recentExits.push(now);
    const recent = this.#recentExits.length;
    if (recent > limit) {
      const problem = `workers exited ${recent} times within ${windowMs / 1000} s (last: worker ${slot.index}, ${how}): giving up`;
      this.#log.error({ worker: slot.index, pid: slot.pid, code, signal }, problem);
      // The other slots' exits and pending restarts end here too: one verdict, told once.
      this.#gaveUp = true;
      this.#onFatal?.(problem);
      return;
    }
    const delay = Math.min(maxDelayMs, delayMs * 2 ** (recent - 1));
    this.#log.warn(
      { worker: slot.index, pid: slot.pid, code, signal, restartInMs: delay },
      `worker ${slot.index} exited unexpectedly (${how}): starting another`,
    );
    this.#restarts++;
    slot.restartTimer = setTimeout(() => {
      if (!this.#stopping && !this.#gaveUp) this.#fork(slot);
    }, delay);
  }

  #ask(slot: Slot, ask: Ask, timeoutMs: number): Promise<Asked> {
    const worker = slot.worker;
    if (!worker || !slot.initSent || !worker.isConnected()) return Promise.resolve('gone');
    const id = ++this.#askSeq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        slot.asks.delete(id);
        resolve('timeout');
      }, timeoutMs);
      slot.asks.set(id, (a) => {
        clearTimeout(timer);
        slot.asks.delete(id);
        resolve(a);
      });
      this.#send(worker, { type: 'ask', id, ask });
    });
  }

  /**
   * Resolves once every worker has taken in all that was sent to it before now (a
   * round trip: the channel keeps order), so readiness is never said before the
   * workers hold the snapshot it is about. A worker that exits meanwhile is not
   * waited for.
   */
  /** Sent to every worker now, and to each worker started later, after its init. */
  setRoutes(tables: RouteTables): void {
    // Every worker holds the tables sent last (at its init or since): the hosts kept go by name.
    const delta = routesDelta(this.#routes, tables);
    this.#routes = tables;
    this.#broadcast({ type: 'routes', delta });
  }

  async sync(): Promise<void> {
    this.#flushHealth();
    await Promise.all(this.#slots.map((s) => this.#ask(s, { op: 'ping' }, METRICS_TIMEOUT_MS)));
  }

  // ---- metrics

  /** Keeps an exited worker's counters and histograms, merged into one set however many exit. */
  #retire(metrics: MetricsJson): void {
    const all = [...this.#retired, risingOnly(metrics)];
    this.#retired.length = 0;
    this.#retired.push(all.length === 1 ? all[0]! : mergeJson(all));
  }

  /** Every worker's series (one that does not answer in time counts with its last). */
  async collect(): Promise<MetricsJson[]> {
    const live = this.#slots.filter((s) => s.worker && s.initSent);
    const got = await Promise.all(
      live.map(async (s) => {
        const a = await this.#ask(s, { op: 'metrics' }, METRICS_TIMEOUT_MS);
        if (typeof a === 'object' && a.ok && a.metrics) {
          s.lastMetrics = a.metrics;
          return a.metrics;
        }
        return s.lastMetrics;
      }),
    );
    return [...this.#retired, ...got.filter((m): m is MetricsJson => m !== undefined)];
  }

  /** Every live worker's traffic ring; one that does not answer in time is left out. */
  async traffic(): Promise<TrafficJson[]> {
    const live = this.#slots.filter((s) => s.worker && s.initSent);
    const got = await Promise.all(
      live.map((s) => this.#ask(s, { op: 'traffic' }, METRICS_TIMEOUT_MS)),
    );
    return got.flatMap((a) => (typeof a === 'object' && a.ok && a.traffic ? [a.traffic] : []));
  }

  // ---- reload: stage in every worker, then commit (or abort) in every worker

  async stage(next: Config): Promise<StagedServing> {
    while (this.#reloading) await this.#reloading;
    let settle!: () => void;
    this.#reloading = new Promise((resolve) => {
      settle = resolve;
    });
    const end = () => {
      this.#reloading = undefined;
      settle();
    };
    const reload = ++this.#reloadSeq;
    let sent: Config;
    try {
      sent = await this.#pin(next);
    } catch (e) {
      end();
      throw new FedgateError('LISTEN_FAILED', `dns.listen: ${(e as Error).message}`, { cause: e });
    }
    const targets = this.#slots
      .filter((s) => s.worker && s.initSent && s.state !== 'draining')
      .map((slot) => ({ slot, worker: slot.worker! }));
    const answers = await Promise.all(
      targets.map(async (t) => ({
        ...t,
        answer: await this.#ask(t.slot, { op: 'stage', reload, config: sent }, STAGE_TIMEOUT_MS),
      })),
    );
    const step = async (op: 'commit' | 'abort') => {
      await Promise.all(
        answers
          .filter((a) => a.slot.worker === a.worker)
          .map((a) => this.#ask(a.slot, { op, reload }, STAGE_TIMEOUT_MS)),
      );
    };
    const bad = answers.find((a) => a.answer === 'timeout' || (isAnswer(a.answer) && !a.answer.ok));
    if (bad) {
      await step('abort');
      this.#unpin(this.#config);
      end();
      if (isAnswer(bad.answer) && !bad.answer.ok) {
        throw new FedgateError(bad.answer.code, bad.answer.problem);
      }
      throw new FedgateError(
        'RELOAD_FAILED',
        `worker ${bad.slot.index} did not answer the reload within ${STAGE_TIMEOUT_MS / 1000} s`,
      );
    }
    const first = answers.map((a) => a.answer).find(isAnswer);
    const changes: ServingChanges =
      first?.ok && first.staged ? first.staged : listenerChanges(this.#workerConfig, sent);
    return {
      ...changes,
      commit: () => {
        this.#config = next;
        this.#workerConfig = sent;
        this.#unpin(next);
        // Sent in order on each channel: the worker commits before anything sent later.
        void step('commit');
        end();
      },
      abort: async () => {
        await step('abort');
        this.#unpin(this.#config);
        end();
      },
    };
  }

  /**
   * `config` with each dns.listen port 0 replaced by one port, the same in every
   * worker: with SO_REUSEPORT each would otherwise bind a port of its own. A pinned
   * address keeps its port while it stays configured, so a reload keeps its
   * listeners and a replaced worker joins the others.
   */
  async #pin(config: Config): Promise<Config> {
    // Stand-in configs in tests may have no dns section.
    const listen = config.dns?.listen ?? [];
    if (!this.#reusePort || !listen.some((l) => l.port === 0)) return config;
    const pinned: ListenAddress[] = [];
    for (const at of listen) {
      if (at.port !== 0) {
        pinned.push(at);
        continue;
      }
      const key = hostPort(at);
      let port = this.#pins.get(key);
      if (port === undefined) {
        port = await freeDnsPort(at.host);
        this.#pins.set(key, port);
      }
      pinned.push({ host: at.host, port });
    }
    return { ...config, dns: { ...config.dns, listen: pinned } };
  }

  /** Forgets the pins of addresses `config` does not have. */
  #unpin(config: Config): void {
    const keep = new Set((config.dns?.listen ?? []).map(hostPort));
    for (const key of this.#pins.keys()) if (!keep.has(key)) this.#pins.delete(key);
  }

  // ---- drain and stop

  /**
   * Every worker drains (the proxy and DNS over TCP stop accepting; what is in flight
   * gets `graceMs`), says what it had to cut, and exits. No worker is restarted from
   * here on.
   */
  drain(graceMs: number): Promise<{ proxyCut: number; dnsCut: number }> {
    this.#drained ??= this.#drainAll(graceMs);
    return this.#drained;
  }

  async #drainAll(graceMs: number): Promise<{ proxyCut: number; dnsCut: number }> {
    this.#stopping = true;
    for (const s of this.#slots) clearTimeout(s.restartTimer);
    const cuts = await Promise.all(this.#slots.map((s) => this.#drainOne(s, graceMs)));
    return {
      proxyCut: cuts.reduce((n, c) => n + c.proxyCut, 0),
      dnsCut: cuts.reduce((n, c) => n + c.dnsCut, 0),
    };
  }

  async #drainOne(slot: Slot, graceMs: number): Promise<{ proxyCut: number; dnsCut: number }> {
    const worker = slot.worker;
    if (!worker) return NOTHING_CUT;
    if (!slot.initSent) {
      // Not serving yet: nothing to drain. Closing the channel ends it (node:cluster).
      worker.kill();
      return NOTHING_CUT;
    }
    slot.state = 'draining';
    const drained = new Promise<{ proxyCut: number; dnsCut: number }>((resolve) => {
      slot.drained = resolve;
    });
    this.#send(worker, { type: 'drain', graceMs });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), graceMs + EXIT_SLACK_MS);
    });
    const cut = await Promise.race([drained, late]);
    clearTimeout(timer);
    if (cut) return cut;
    this.#log.warn(
      { worker: slot.index, pid: slot.pid },
      `worker ${slot.index} did not finish draining in time: killing it`,
    );
    worker.process.kill('SIGKILL');
    return NOTHING_CUT;
  }

  /** Waits for every worker to exit (drained first if drain() was not called), then lets go. */
  async stop(): Promise<void> {
    await this.drain(0);
    await Promise.all(
      this.#slots.map(async (s) => {
        const worker = s.worker;
        if (!worker) return;
        const timer = setTimeout(() => worker.process.kill('SIGKILL'), EXIT_SLACK_MS);
        await s.exited;
        clearTimeout(timer);
      }),
    );
    for (const u of this.#unsubscribe) u();
    clearImmediate(this.#healthFlush);
  }
}

/** A port on `host` that is free for UDP and TCP alike, as DNS needs both. */
async function freeDnsPort(host: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: isIPv6(host) });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, host, () => resolve());
    });
    const port = udp.address().port;
    const tcp = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host, port, ipv6Only: isIPv6(host) }, () => resolve());
      });
      return port;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= PIN_ATTEMPTS) throw e;
    } finally {
      udp.close();
      if (tcp.listening) await new Promise((r) => tcp.close(r));
    }
  }
}

function isAnswer(a: Asked): a is Answer {
  return typeof a === 'object';
}

/** What a reload opens and closes, from the configurations alone (when no worker could say). */
function listenerChanges(before: Config, next: Config): ServingChanges {
  const keys = (c: Config) => {
    const k = (proto: string, l: readonly ListenAddress[]) =>
      l.map((a) => `${proto} ${hostPort(a)}`);
    return new Set([
      ...k('dns', c.dns.listen),
      ...k('http', c.http.listen),
      ...k('https', c.http.tls?.listen ?? []),
    ]);
  };
  const was = keys(before);
  const now = keys(next);
  return {
    opened: [...now].filter((k) => !was.has(k)),
    closed: [...was].filter((k) => !now.has(k)),
    certificatesChanged: false,
  };
}
