// Active health checks: the probe targets of the services that are checked (the
// config's scope, else the fedgate.io/health-check annotation) are probed by TCP
// connect, HTTP GET or gRPC Health/Check, and thresholds turn results into the verdict the health store
// keeps for routing. Every probe starts through one ProbeQueue, so probes in flight
// and starts per second stay under the config's caps whatever the number of
// targets; when the targets cannot all be probed within one interval, every
// target's interval stretches evenly. One probe per target at a time; a target
// that leaves stops at once and never writes again.

import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { isDescriptorExhaustion } from '../observe/exhaustion.ts';
import type { Logger } from '../observe/log.ts';
import type { CheckState } from '../routing/types.ts';
import { Probers } from './probers.ts';
import { abortDetail, errorDetail, type ProbeTls } from './probes.ts';
import { ProbeQueue, type QueueLimits, type Timers } from './queue.ts';
import type { HealthStore } from './store.ts';
import {
  type ActiveCheckConfig,
  type Addressing,
  isChecked,
  type ProbeTarget,
  serviceTargets,
} from './targets.ts';

export interface ProbeResult {
  readonly ok: boolean;
  /** Why it failed: 'HTTP 503', 'connect ECONNREFUSED', 'timeout after 1000ms'. */
  readonly detail?: string | undefined;
  readonly durationMs: number;
}

export interface ActiveCheckerOptions {
  config: ActiveCheckConfig;
  addressing: Addressing;
  store: HealthStore;
  log: Logger;
  now?: () => number;
  random?: () => number;
  /** The queue's timers; tests replace them to step time by hand. */
  timers?: Timers;
  /** Every probe's result, before any verdict it causes (for metrics); not for aborted probes. */
  onResult?: (target: ProbeTarget, result: ProbeResult) => void;
  /**
   * The probe could not even start for want of a descriptor (EMFILE, ENFILE): the
   * process's fault, not the endpoint's, so no result is recorded.
   */
  onExhausted?: (err: unknown) => void;
  /** Whether an error means the process is out of descriptors (default: EMFILE, ENFILE). */
  isExhaustion?: (err: unknown) => boolean;
  /** A service's backend TLS settings: its endpoints are probed over TLS with them. */
  tls?: ((svc: FederatedService) => ProbeTls | undefined) | undefined;
}

export interface ActiveCheckStats {
  readonly targets: number;
  readonly inFlight: number;
  /** Waiting in the queue for their time, a slot or the rate. */
  readonly queued: number;
  /** The interval every target is probed at now: the configured one or, stretched, more. */
  readonly effectiveIntervalMs: number;
  readonly probes: number;
  readonly passed: number;
  readonly failed: number;
  /** Probes that could not open a socket for want of descriptors (not counted as failed). */
  readonly exhausted: number;
}

/** How one service is checked, for /debug and the status page. */
export interface ServiceCheck {
  /** Probed on a schedule. */
  readonly checked: boolean;
  /** What decided it. */
  readonly by: 'annotation' | 'scope';
  /** Targets probed now: every one when checked, else those checked on demand. */
  readonly targets: number;
  readonly effectiveIntervalMs: number;
}

/** What the checker needs of a catalog. */
export interface SnapshotSource {
  current(): Snapshot;
  subscribe(fn: (snapshot: Snapshot) => void): () => void;
}

/** A target and its probing state in one object: 200,000 of them are held at scale. */
interface Probe extends ProbeTarget {
  state: CheckState;
  successes: number;
  failures: number;
  /** Probing at fastInterval until a verdict, after the proxy saw this endpoint fail. */
  fast: boolean;
  /**
   * Of a service not checked on a schedule: started because the proxy saw the
   * endpoint fail, and dropped again once the endpoint is not failing.
   */
  onDemand: boolean;
  stopped: boolean;
  abort: AbortController | undefined;
  running: Promise<void> | undefined;
}

/** What the checker holds for one service of the catalog. */
interface Tracked {
  /** The catalog's object it was last derived from: unchanged services cost nothing. */
  svc: FederatedService | undefined;
  readonly probes: Map<string, Probe>;
}

export class ActiveChecker {
  #config: ActiveCheckConfig;
  #addressing: Addressing;
  readonly #store: HealthStore;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #onResult: ActiveCheckerOptions['onResult'];
  readonly #onExhausted: ActiveCheckerOptions['onExhausted'];
  readonly #isExhaustion: (err: unknown) => boolean;
  readonly #queue: ProbeQueue<Probe>;
  /** By service key. */
  readonly #services = new Map<string, Tracked>();
  #targets = 0;
  /** What probes are sent with: agents, TLS agents, gRPC clients. */
  readonly #probers: Probers;
  #tls: ActiveCheckerOptions['tls'];
  /** Every probe in flight, including those of targets already removed: stop() waits for all. */
  readonly #running = new Set<Promise<void>>();
  /** "service id" of endpoints in fast probing, so repeated reports cost a lookup. */
  readonly #expedited = new Set<string>();
  /** The last snapshot update() saw, for on-demand targets. */
  #snapshot: Snapshot | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;
  #counts = { probes: 0, passed: 0, failed: 0, exhausted: 0 };
  /** Results by "service|cluster|pass" or "…|fail", for metrics. */
  readonly #results = new Map<string, number>();

  constructor(opts: ActiveCheckerOptions) {
    this.#config = opts.config;
    this.#addressing = opts.addressing;
    this.#store = opts.store;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#onResult = opts.onResult;
    this.#onExhausted = opts.onExhausted;
    this.#isExhaustion = opts.isExhaustion ?? isDescriptorExhaustion;
    this.#probers = new Probers(opts.config.timeout);
    this.#tls = opts.tls;
    this.#queue = new ProbeQueue<Probe>({
      limits: limitsOf(opts.config),
      run: (p) => this.#runTracked(p),
      now: this.#now,
      ...(opts.timers ? { timers: opts.timers } : {}),
    });
  }

  /** Probes what the catalog holds now and follows every later snapshot. */
  start(catalog: SnapshotSource): void {
    if (this.#stopped || this.#unsubscribe || !this.#config.enabled) return;
    this.update(catalog.current());
    this.#unsubscribe = catalog.subscribe((s) => this.update(s));
  }

  /** Starts probes for new targets and stops those for gone ones, service by changed service. */
  update(snapshot: Snapshot): void {
    if (this.#stopped || !this.#config.enabled) return;
    this.#snapshot = snapshot;
    const stopped: Probe[] = [];
    for (const [key, t] of this.#services) {
      if (snapshot.services.has(key)) continue;
      for (const p of t.probes.values()) stopped.push(this.#removeProbe(t, p));
      this.#services.delete(key);
    }
    for (const [key, svc] of snapshot.services) {
      let t = this.#services.get(key);
      if (t?.svc === svc) continue;
      // Neither checked nor probed on demand: nothing to hold for it.
      if (!t && !isChecked(svc, this.#config.scope)) continue;
      if (!t) {
        t = { svc, probes: new Map() };
        this.#services.set(key, t);
      }
      t.svc = svc;
      this.#updateService(t, svc, stopped);
      if (t.probes.size === 0 && !isChecked(svc, this.#config.scope)) this.#services.delete(key);
    }
    this.#forget(stopped);
  }

  /**
   * New settings (reload). Probes keep their counts and verdicts, and the next
   * results are judged by the new thresholds; a changed interval or cap reschedules
   * the waiting probes. Switched off, every verdict it kept is reset to unknown. The
   * caller follows with update(), which starts and stops probes for the targets the
   * new scope, port or addressing gives.
   */
  reconfigure(
    config: ActiveCheckConfig,
    addressing: Addressing,
    tls: ActiveCheckerOptions['tls'] = this.#tls,
  ): void {
    if (this.#stopped) return;
    const before = this.#config;
    this.#config = config;
    this.#addressing = addressing;
    const checksChanged =
      config.type !== before.type ||
      config.grpcService !== before.grpcService ||
      JSON.stringify(config.services) !== JSON.stringify(before.services);
    this.#probers.reconfigure(config.timeout, tls !== this.#tls, checksChanged);
    this.#tls = tls;
    this.#queue.setLimits(limitsOf(config));
    // Every service is derived again by the update() that follows.
    for (const t of this.#services.values()) t.svc = undefined;
    if (!config.enabled) {
      const stopped: Probe[] = [];
      for (const t of this.#services.values()) {
        for (const p of t.probes.values()) stopped.push(this.#removeProbe(t, p));
      }
      this.#services.clear();
      this.#forget(stopped);
      return;
    }
    const paced =
      config.interval !== before.interval ||
      config.maxInFlight !== before.maxInFlight ||
      config.maxProbesPerSecond !== before.maxProbesPerSecond;
    if (paced) {
      const every = this.effectiveIntervalMs();
      for (const t of this.#services.values()) {
        for (const p of t.probes.values()) {
          if (p.fast || !this.#queue.isQueued(p)) continue;
          this.#queue.schedule(p, this.#now() + this.#random() * every);
        }
      }
    }
  }

  /** Aborts probes in flight, empties the queue and resolves when every probe has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#queue.stop();
    for (const t of this.#services.values()) for (const p of t.probes.values()) this.#halt(p);
    this.#services.clear();
    this.#targets = 0;
    await Promise.allSettled([...this.#running]);
    await this.#probers.stop();
  }

  /**
   * The proxy could not reach this endpoint: probe it now, and every fastInterval
   * until the check has a verdict (HAProxy's `observe layer4` with `on-error
   * fastinter`). Outlier detection alone may eject only maxEjectionPercent of a
   * service; a dead cluster needs every one of its endpoints out, and soon. A
   * service not checked on a schedule gets a probe for this endpoint until it is
   * found passing again.
   */
  expedite(service: string, id: string): void {
    if (this.#stopped || !this.#config.enabled) return;
    const key = `${service} ${id}`;
    if (this.#expedited.has(key)) return;
    let t = this.#services.get(service);
    const probe = t?.probes.get(id);
    if (probe && !probe.stopped) {
      if (probe.state === 'unhealthy') return;
      this.#expedited.add(key);
      probe.fast = true;
      // Waiting for its time: go now. Running: its result reschedules it fast.
      if (this.#queue.isQueued(probe)) this.#queue.expedite(probe);
      return;
    }
    if (this.#snapshot === undefined) return;
    const svc = this.#snapshot.services.get(service);
    if (svc === undefined) return;
    const target = serviceTargets(svc, this.#targetOptions(svc.key)).targets.find(
      (x) => x.id === id,
    );
    if (target === undefined) return;
    if (!t) {
      t = { svc, probes: new Map() };
      this.#services.set(service, t);
    }
    const p = this.#addProbe(t, target, { onDemand: true });
    p.fast = true;
    this.#expedited.add(key);
    this.#queue.expedite(p);
  }

  /** The interval every target is probed at: the configured one, stretched by the caps. */
  effectiveIntervalMs(): number {
    const { interval, maxProbesPerSecond, maxInFlight } = this.#config;
    const byRate = (this.#targets * 1000) / maxProbesPerSecond;
    const bySlots = (this.#targets * (this.#queue.meanProbeMs ?? 0)) / maxInFlight;
    return Math.max(interval, Math.ceil(byRate), Math.ceil(bySlots));
  }

  /** How a service is checked; undefined when checks are off. */
  serviceCheck(svc: FederatedService): ServiceCheck | undefined {
    if (!this.#config.enabled) return undefined;
    return {
      checked: isChecked(svc, this.#config.scope),
      by: svc.healthCheck === undefined ? 'scope' : 'annotation',
      targets: this.#services.get(svc.key)?.probes.size ?? 0,
      effectiveIntervalMs: this.effectiveIntervalMs(),
    };
  }

  /** Probe results so far by service, cluster and pass or fail. */
  results(): ReadonlyMap<string, number> {
    return this.#results;
  }

  stats(): ActiveCheckStats {
    return {
      targets: this.#targets,
      inFlight: this.#queue.inFlight,
      queued: this.#queue.queued,
      effectiveIntervalMs: this.effectiveIntervalMs(),
      ...this.#counts,
    };
  }

  #targetOptions(service: string) {
    return { port: this.#checkOf(service).port, addressing: this.#addressing };
  }

  /** The check a service gets: health.active, with its health.active.services entry over it. */
  #checkOf(service: string): ActiveCheckConfig {
    const over = this.#config.services[service];
    if (!over) return this.#config;
    const defined = Object.entries(over).filter(([, v]) => v !== undefined);
    return { ...this.#config, ...Object.fromEntries(defined) };
  }

  /** Brings one changed service's probes in line with its targets. */
  #updateService(t: Tracked, svc: FederatedService, stopped: Probe[]): void {
    const checked = isChecked(svc, this.#config.scope);
    // Unchecked and nothing on demand: nothing to derive.
    if (!checked && t.probes.size === 0) return;
    const { targets, skipped } = serviceTargets(svc, this.#targetOptions(svc.key));
    // By endpoint id: within one service, an id names one address and port.
    const wanted = new Map(targets.map((x) => [x.id, x]));
    for (const [id, p] of t.probes) {
      const w = wanted.get(id);
      // A checked service keeps every probe; otherwise only on-demand ones stay.
      // A new address or port for the same id is a new target.
      if (w && w.host === p.host && w.port === p.port && (checked || p.onDemand)) {
        if (checked) p.onDemand = false;
        continue;
      }
      stopped.push(this.#removeProbe(t, p));
    }
    if (checked) {
      for (const [id, target] of wanted) {
        if (!t.probes.has(id)) this.#addProbe(t, target, { onDemand: false });
      }
    }
    for (const s of skipped) {
      this.#log.debug({ service: s.service, id: s.id, reason: s.reason }, 'not health-checked');
    }
  }

  #addProbe(t: Tracked, target: ProbeTarget, opts: { onDemand: boolean }): Probe {
    const p: Probe = {
      service: target.service,
      id: target.id,
      cluster: target.cluster,
      host: target.host,
      port: target.port,
      state: 'unknown',
      successes: 0,
      failures: 0,
      fast: false,
      onDemand: opts.onDemand,
      stopped: false,
      abort: undefined,
      running: undefined,
    };
    t.probes.set(p.id, p);
    this.#targets++;
    // Spread first probes over one interval, so a thousand targets do not fire together.
    if (!opts.onDemand) {
      this.#queue.schedule(p, this.#now() + this.#random() * this.effectiveIntervalMs());
    }
    return p;
  }

  #removeProbe(t: Tracked, p: Probe): Probe {
    this.#halt(p);
    t.probes.delete(p.id);
    this.#targets--;
    return p;
  }

  #halt(p: Probe): void {
    p.stopped = true;
    this.#probers.forget(p);
    this.#expedited.delete(`${p.service} ${p.id}`);
    this.#queue.cancel(p);
    p.abort?.abort(new Error('stopped'));
  }

  #runTracked(p: Probe): Promise<void> {
    const running = this.#run(p).finally(() => {
      p.running = undefined;
      this.#running.delete(running);
    });
    p.running = running;
    this.#running.add(running);
    return running;
  }

  async #run(p: Probe): Promise<void> {
    if (p.stopped) return;
    try {
      const result = await this.#probe(p);
      // Removed while in flight: its verdict is about an endpoint routing no longer has.
      if (p.stopped) return;
      if (result === 'skipped') {
        this.#queue.schedule(p, this.#now() + this.effectiveIntervalMs());
        return;
      }
      if (result === 'exhausted') {
        // Not the endpoint's doing: no verdict, and no probe at all for a moment, so
        // checks do not spin on EMFILE or take the descriptors the proxy frees.
        this.#queue.exhausted(EXHAUSTED_PAUSE_MS);
        this.#queue.schedule(p, this.#now() + EXHAUSTED_PAUSE_MS);
        return;
      }
      this.#record(p, result);
      const { jitter, fastInterval } = this.#config;
      if (p.fast && (result.ok || p.state === 'unhealthy')) {
        p.fast = false;
        this.#expedited.delete(`${p.service} ${p.id}`);
      }
      if (p.onDemand && !p.fast && p.state !== 'unhealthy') {
        this.#dropOnDemand(p);
        return;
      }
      const every = this.effectiveIntervalMs() * (1 + jitter * (2 * this.#random() - 1));
      this.#queue.schedule(p, this.#now() + (p.fast ? fastInterval : every));
    } catch (err) {
      // Only a bug gets here; keep probing rather than go silent.
      this.#log.error({ err, service: p.service, id: p.id }, 'health check failed');
      if (!p.stopped) this.#queue.schedule(p, this.#now() + this.effectiveIntervalMs());
    }
  }

  /** An on-demand probe whose endpoint is not failing: its service is not checked, so stop. */
  #dropOnDemand(p: Probe): void {
    const t = this.#services.get(p.service);
    if (!t || t.probes.get(p.id) !== p) return;
    this.#forget([this.#removeProbe(t, p)]);
    if (t.probes.size === 0 && t.svc && !isChecked(t.svc, this.#config.scope)) {
      this.#services.delete(p.service);
    }
  }

  async #probe(p: Probe): Promise<ProbeResult | 'exhausted' | 'skipped'> {
    const check = this.#checkOf(p.service);
    const { timeout } = check;
    const svc = this.#snapshot?.services.get(p.service);
    const tls = svc && this.#tls?.(svc);
    // A profile that does not exist says nothing about the endpoint: no verdict either way.
    if (tls?.problem !== undefined) return 'skipped';
    const abort = new AbortController();
    p.abort = abort;
    const timer = setTimeout(() => abort.abort(new Error('timeout')), timeout);
    timer.unref();
    const started = this.#now();
    try {
      const failure = await this.#probers.probe(check, p, tls, abort.signal);
      return { ok: failure === undefined, detail: failure, durationMs: this.#now() - started };
    } catch (err) {
      if (!abort.signal.aborted && this.#isExhaustion(err)) {
        this.#counts.exhausted++;
        this.#onExhausted?.(err);
        return 'exhausted';
      }
      const detail = abort.signal.aborted
        ? abortDetail(abort.signal.reason, timeout)
        : errorDetail(err);
      return { ok: false, detail, durationMs: this.#now() - started };
    } finally {
      clearTimeout(timer);
      p.abort = undefined;
    }
  }

  /** gRPC clients open now (one per target checked by gRPC). */
  get grpcClients(): number {
    return this.#probers.grpcClients;
  }

  #record(p: Probe, result: ProbeResult): void {
    this.#counts.probes++;
    if (result.ok) this.#counts.passed++;
    else this.#counts.failed++;
    const rk = `${p.service}|${p.cluster}|${result.ok ? 'pass' : 'fail'}`;
    this.#results.set(rk, (this.#results.get(rk) ?? 0) + 1);
    // The result before the verdict it may cause, so observers see them in order.
    try {
      this.#onResult?.(p, result);
    } catch (err) {
      this.#log.error({ err }, 'health result callback failed');
    }
    const { healthyThreshold, unhealthyThreshold } = this.#config;
    const { service, id } = p;
    if (result.ok) {
      p.successes++;
      p.failures = 0;
      if (p.successes >= healthyThreshold && p.state !== 'healthy') {
        const from = p.state;
        p.state = 'healthy';
        this.#store.setCheck(service, id, 'healthy');
        // Coming up at start is expected; only a recovery is news.
        const level = from === 'unhealthy' ? 'info' : 'debug';
        this.#log[level]({ service, id, from }, 'endpoint passes its health check');
      }
    } else {
      p.failures++;
      p.successes = 0;
      if (p.failures >= unhealthyThreshold) {
        const from = p.state;
        p.state = 'unhealthy';
        // While failing, a new reason replaces the old one (the store ignores a repeat).
        this.#store.setCheck(service, id, 'unhealthy', result.detail);
        if (from !== 'unhealthy') {
          this.#log.warn(
            { service, id, from, detail: result.detail },
            'endpoint fails its health check',
          );
        }
      }
    }
  }

  /**
   * Resets to unknown a verdict this checker no longer maintains (e.g. the endpoint is
   * now terminating, or its port stopped mapping). Endpoints gone from the catalog are
   * the HealthMonitor's to forget: outlier state lives in the same store.
   */
  #forget(stopped: readonly Probe[]): void {
    for (const p of stopped) {
      const { service, id } = p;
      if (p.state === 'unknown') continue;
      // Probed again under a new address or port: that probe keeps the verdict.
      if (this.#services.get(service)?.probes.has(id)) continue;
      if (this.#store.endpoint(service, id)?.check !== undefined) {
        this.#store.setCheck(service, id, 'unknown');
      }
    }
  }
}

/** How long no probe starts after one found the process out of descriptors. */
const EXHAUSTED_PAUSE_MS = 1000;

function limitsOf(config: ActiveCheckConfig): QueueLimits {
  return { maxInFlight: config.maxInFlight, maxPerSecond: config.maxProbesPerSecond };
}
