// Active health checks: every probe target the catalog yields is probed on its own
// timer (TCP connect or HTTP GET), and thresholds turn the results into the
// verdict the health store keeps for routing. One probe per target at a time; a
// target that leaves the catalog stops at once and never writes again.
import type { Logger } from 'pino';
import { Agent } from 'undici';
import type { Snapshot } from '../catalog/model.ts';
import type { CheckState } from '../routing/types.ts';
import { abortDetail, errorDetail, httpProbe, tcpProbe } from './probes.ts';
import type { HealthStore } from './store.ts';
import {
  type ActiveCheckConfig,
  type Addressing,
  type ProbeTarget,
  probeTargets,
  targetKey,
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
  /** Every probe's result, before any verdict it causes (for metrics); not for aborted probes. */
  onResult?: (target: ProbeTarget, result: ProbeResult) => void;
}

export interface ActiveCheckStats {
  readonly targets: number;
  readonly inFlight: number;
  readonly probes: number;
  readonly passed: number;
  readonly failed: number;
}

/** What the checker needs of a catalog. */
export interface SnapshotSource {
  current(): Snapshot;
  subscribe(fn: (snapshot: Snapshot) => void): () => void;
}

interface Probe {
  readonly target: ProbeTarget;
  state: CheckState;
  successes: number;
  failures: number;
  /** Probing at fastInterval until a verdict, after the proxy saw this endpoint fail. */
  fast: boolean;
  stopped: boolean;
  timer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
  running: Promise<void> | undefined;
}

export class ActiveChecker {
  #config: ActiveCheckConfig;
  #addressing: Addressing;
  readonly #store: HealthStore;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #onResult: ActiveCheckerOptions['onResult'];
  /** By targetKey. */
  readonly #probes = new Map<string, Probe>();
  // Keep-alive off (each request says reset): probes open one connection each and
  // close it, so thousands of targets never hold idle sockets.
  #agent: Agent;
  /** Every probe in flight, including those of targets already removed: stop() waits for all. */
  readonly #running = new Set<Promise<void>>();
  /** "service id" of endpoints in fast probing, so repeated reports cost a lookup. */
  readonly #expedited = new Set<string>();
  #unsubscribe: (() => void) | undefined;
  #stopped = false;
  #counts = { probes: 0, passed: 0, failed: 0 };
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
    this.#agent = new Agent({ connect: { timeout: opts.config.timeout } });
  }

  /** Probes what the catalog holds now and follows every later snapshot. */
  start(catalog: SnapshotSource): void {
    if (this.#stopped || this.#unsubscribe || !this.#config.enabled) return;
    this.update(catalog.current());
    this.#unsubscribe = catalog.subscribe((s) => this.update(s));
  }

  /** Starts probes for new targets and stops those for gone ones. */
  update(snapshot: Snapshot): void {
    if (this.#stopped || !this.#config.enabled) return;
    const { targets, skipped } = probeTargets(snapshot, {
      port: this.#config.port,
      addressing: this.#addressing,
    });
    const wanted = new Map(targets.map((t) => [targetKey(t), t]));
    const stopped: Probe[] = [];
    for (const [key, p] of this.#probes) {
      if (wanted.has(key)) continue;
      this.#stopProbe(p);
      this.#probes.delete(key);
      stopped.push(p);
    }
    for (const [key, t] of wanted) {
      if (!this.#probes.has(key)) this.#startProbe(key, t);
    }
    this.#forget(stopped);
    for (const s of skipped) {
      this.#log.debug({ service: s.service, id: s.id, reason: s.reason }, 'not health-checked');
    }
  }

  /**
   * New settings (reload). Probes keep their counts and verdicts, and the next
   * results are judged by the new thresholds; a changed interval reschedules the
   * waiting probes. Switched off, every verdict it kept is reset to unknown. The
   * caller follows with update(), which starts and stops probes for the targets the
   * new port or addressing gives.
   */
  reconfigure(config: ActiveCheckConfig, addressing: Addressing): void {
    if (this.#stopped) return;
    const before = this.#config;
    this.#config = config;
    this.#addressing = addressing;
    if (config.timeout !== before.timeout) {
      const old = this.#agent;
      this.#agent = new Agent({ connect: { timeout: config.timeout } });
      // Probes in flight finish on the old agent.
      void old.close().catch(() => {});
    }
    if (!config.enabled) {
      const stopped = [...this.#probes.values()];
      for (const p of stopped) this.#stopProbe(p);
      this.#probes.clear();
      this.#forget(stopped);
      return;
    }
    if (config.interval !== before.interval) {
      for (const p of this.#probes.values()) {
        if (p.timer === undefined || p.fast) continue;
        clearTimeout(p.timer);
        this.#schedule(p, this.#random() * config.interval);
      }
    }
  }

  /** Clears every timer, aborts probes in flight and resolves when they have finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const p of this.#probes.values()) this.#stopProbe(p);
    this.#probes.clear();
    await Promise.allSettled([...this.#running]);
    await this.#agent.destroy().catch(() => {});
  }

  /**
   * The proxy could not reach this endpoint: probe it now, and every fastInterval
   * until the check has a verdict (HAProxy's `observe layer4` with `on-error
   * fastinter`). Outlier detection alone may eject only maxEjectionPercent of a
   * service; a dead cluster needs every one of its endpoints out, and soon.
   */
  expedite(service: string, id: string): void {
    if (this.#stopped || !this.#config.enabled) return;
    const key = `${service} ${id}`;
    if (this.#expedited.has(key)) return;
    for (const p of this.#probes.values()) {
      if (p.stopped || p.target.service !== service || p.target.id !== id) continue;
      if (p.state === 'unhealthy') continue;
      this.#expedited.add(key);
      p.fast = true;
      if (p.timer !== undefined) {
        clearTimeout(p.timer);
        this.#schedule(p, 0);
      }
    }
  }

  /** Probe results so far by service, cluster and pass or fail. */
  results(): ReadonlyMap<string, number> {
    return this.#results;
  }

  stats(): ActiveCheckStats {
    let inFlight = 0;
    for (const p of this.#probes.values()) if (p.running) inFlight++;
    return { targets: this.#probes.size, inFlight, ...this.#counts };
  }

  #startProbe(key: string, target: ProbeTarget): void {
    const p: Probe = {
      target,
      state: 'unknown',
      successes: 0,
      failures: 0,
      fast: false,
      stopped: false,
      timer: undefined,
      abort: undefined,
      running: undefined,
    };
    this.#probes.set(key, p);
    // Spread first probes over one interval, so a thousand targets do not fire together.
    this.#schedule(p, this.#random() * this.#config.interval);
  }

  #stopProbe(p: Probe): void {
    p.stopped = true;
    this.#expedited.delete(`${p.target.service} ${p.target.id}`);
    clearTimeout(p.timer);
    p.timer = undefined;
    p.abort?.abort(new Error('stopped'));
  }

  #schedule(p: Probe, delayMs: number): void {
    p.timer = setTimeout(() => {
      p.timer = undefined;
      const running = this.#run(p).finally(() => {
        p.running = undefined;
        this.#running.delete(running);
      });
      p.running = running;
      this.#running.add(running);
    }, delayMs);
    // The checker never keeps the process alive by itself.
    p.timer.unref();
  }

  async #run(p: Probe): Promise<void> {
    if (p.stopped) return;
    try {
      const result = await this.#probe(p);
      // Removed while in flight: its verdict is about an endpoint routing no longer has.
      if (p.stopped) return;
      this.#record(p, result);
      const { interval, jitter, fastInterval } = this.#config;
      if (p.fast && (result.ok || p.state === 'unhealthy')) {
        p.fast = false;
        this.#expedited.delete(`${p.target.service} ${p.target.id}`);
      }
      this.#schedule(p, p.fast ? fastInterval : interval * (1 + jitter * (2 * this.#random() - 1)));
    } catch (err) {
      // Only a bug gets here; keep probing rather than go silent.
      this.#log.error({ err, service: p.target.service, id: p.target.id }, 'health check failed');
      if (!p.stopped) this.#schedule(p, this.#config.interval);
    }
  }

  async #probe(p: Probe): Promise<ProbeResult> {
    const { timeout, type } = this.#config;
    const abort = new AbortController();
    p.abort = abort;
    const timer = setTimeout(() => abort.abort(new Error('timeout')), timeout);
    timer.unref();
    const started = this.#now();
    try {
      const failure =
        type === 'http'
          ? await httpProbe(this.#agent, p.target, this.#config, abort.signal)
          : await tcpProbe(p.target, abort.signal);
      return { ok: failure === undefined, detail: failure, durationMs: this.#now() - started };
    } catch (err) {
      const detail = abort.signal.aborted
        ? abortDetail(abort.signal.reason, timeout)
        : errorDetail(err);
      return { ok: false, detail, durationMs: this.#now() - started };
    } finally {
      clearTimeout(timer);
      p.abort = undefined;
    }
  }

  #record(p: Probe, result: ProbeResult): void {
    this.#counts.probes++;
    if (result.ok) this.#counts.passed++;
    else this.#counts.failed++;
    const rk = `${p.target.service}|${p.target.cluster}|${result.ok ? 'pass' : 'fail'}`;
    this.#results.set(rk, (this.#results.get(rk) ?? 0) + 1);
    // The result before the verdict it may cause, so observers see them in order.
    try {
      this.#onResult?.(p.target, result);
    } catch (err) {
      this.#log.error({ err }, 'health result callback failed');
    }
    const { healthyThreshold, unhealthyThreshold } = this.#config;
    const { service, id } = p.target;
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
    const live = new Set(
      [...this.#probes.values()].map((p) => `${p.target.service} ${p.target.id}`),
    );
    for (const p of stopped) {
      const { service, id } = p.target;
      if (p.state === 'unknown' || live.has(`${service} ${id}`)) continue;
      if (this.#store.endpoint(service, id)?.check !== undefined) {
        this.#store.setCheck(service, id, 'unknown');
      }
    }
  }
}
