// A real Prometheus for end-to-end tests: Debian's `prometheus` on 127.0.0.1 and a
// port of its own, a temporary config (one job scraping one target every second) and
// a temporary TSDB, asked through its HTTP API. Plus `promtool check metrics`.
// Both binaries come from requireTool: installed when missing, and a test that
// cannot have them fails naming the tool.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './ports.ts';
import { requireTool } from './tools.ts';
import { sleep, waitFor } from './wait.ts';

/** Generous: Prometheus 2.42 starts in well under a second on an idle machine. */
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 5_000;
/** Times a start is retried when the free port was taken before Prometheus bound it. */
const START_ATTEMPTS = 3;
/** How much of Prometheus's own log a failure message quotes. */
const LOG_TAIL = 4_000;

/** One series of an instant query's result: its labels and its value at the query time. */
export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ScrapeTarget {
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastScrape: Date;
  readonly lastError: string;
  readonly scrapeUrl: string;
}

export interface PrometheusOptions {
  /** host:port of the /metrics to scrape, e.g. fedgate's admin listener. */
  readonly target: string;
  /** The job label; default `fedgate`. */
  readonly job?: string;
  /** Default `/metrics`. */
  readonly metricsPath?: string;
  /** Scrape (and evaluation) interval; default `1s`. */
  readonly scrapeInterval?: string;
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as unknown;
}

export class Prometheus {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly job: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #exited: Promise<void>;
  #log = '';
  #stopped = false;

  private constructor(url: string, job: string, child: ChildProcess, dir: string) {
    this.url = url;
    this.job = job;
    this.#child = child;
    this.#dir = dir;
    const keep = (d: Buffer) => {
      this.#log = (this.#log + d.toString()).slice(-LOG_TAIL);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.#exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  /**
   * Starts Prometheus scraping `opts.target` and resolves once /-/ready answers 200.
   * Rejects, with the end of Prometheus's log, when it exits or is not ready in time.
   */
  static async start(opts: PrometheusOptions): Promise<Prometheus> {
    const bin = requireTool('prometheus', 'the Prometheus end-to-end test');
    const job = opts.job ?? 'fedgate';
    const interval = opts.scrapeInterval ?? '1s';
    const dir = await mkdtemp(join(tmpdir(), 'fedgate-prometheus-'));
    try {
      const config = join(dir, 'prometheus.yml');
      await writeFile(
        config,
        stringify({
          global: {
            scrape_interval: interval,
            scrape_timeout: interval,
            evaluation_interval: interval,
          },
          scrape_configs: [
            {
              job_name: job,
              metrics_path: opts.metricsPath ?? '/metrics',
              static_configs: [{ targets: [opts.target] }],
            },
          ],
        }),
      );
      let lastError: unknown;
      for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        const port = await freePort();
        const child = spawn(
          bin,
          [
            `--config.file=${config}`,
            `--storage.tsdb.path=${join(dir, `data-${attempt}`)}`,
            `--web.listen-address=127.0.0.1:${port}`,
            '--log.level=warn',
          ],
          { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        const p = new Prometheus(`http://127.0.0.1:${port}`, job, child, dir);
        try {
          await p.#waitReady();
          return p;
        } catch (e) {
          lastError = e;
          await p.#kill();
        }
      }
      throw lastError;
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** The end of what Prometheus logged, for failure messages. */
  get log(): string {
    return this.#log;
  }

  async #waitReady(): Promise<void> {
    let exited = false;
    void this.#exited.then(() => {
      exited = true;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exited)
        throw new Error(
          `prometheus exited (${this.#child.exitCode ?? this.#child.signalCode}) before it was ready:\n${this.#log}`,
        );
      try {
        const res = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1000) });
        await res.body?.cancel();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() >= deadline)
        throw new Error(`prometheus not ready within ${READY_TIMEOUT_MS} ms:\n${this.#log}`);
      await sleep(100);
    }
  }

  /** An instant query through /api/v1/query, at the latest time: its vector (or scalar) as samples. */
  async query(expr: string): Promise<Sample[]> {
    const body = (await getJson(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`)) as {
      status: string;
      error?: string;
      data: { resultType: string; result: unknown };
    };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error ?? body.status}`);
    const { resultType, result } = body.data;
    const num = (v: string) => Number(v);
    if (resultType === 'vector') {
      return (result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({
        metric: r.metric,
        value: num(r.value[1]),
      }));
    }
    if (resultType === 'scalar')
      return [{ metric: {}, value: num((result as [number, string])[1]) }];
    throw new Error(`query ${expr}: a ${resultType}, not an instant vector or scalar`);
  }

  /** Polls `expr` until `accept` says yes; the samples it accepted. Bounded by `timeoutMs`. */
  async waitForQuery(
    expr: string,
    accept: (samples: Sample[]) => boolean = (s) => s.length > 0,
    timeoutMs = 20_000,
  ): Promise<Sample[]> {
    let last: Sample[] = [];
    try {
      return await waitFor(
        async () => {
          last = await this.query(expr);
          return accept(last) ? last : undefined;
        },
        timeoutMs,
        `prometheus: ${expr}`,
        250,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}; last result: ${JSON.stringify(last)}`);
    }
  }

  /** The job's scrape targets, from /api/v1/targets. */
  async targets(): Promise<ScrapeTarget[]> {
    const body = (await getJson(`${this.url}/api/v1/targets?state=active`)) as {
      data: {
        activeTargets: {
          labels: Record<string, string>;
          health: ScrapeTarget['health'];
          lastScrape: string;
          lastError: string;
          scrapeUrl: string;
        }[];
      };
    };
    return body.data.activeTargets
      .filter((t) => t.labels.job === this.job)
      .map((t) => ({
        health: t.health,
        lastScrape: new Date(t.lastScrape),
        lastError: t.lastError,
        scrapeUrl: t.scrapeUrl,
      }));
  }

  /**
   * Resolves once every target of the job was scraped successfully, twice, after
   * `after`: the samples of the first such scrape are then committed and queryable.
   */
  async waitForScrape(after = new Date(), timeoutMs = 20_000): Promise<void> {
    const seen = new Set<number>();
    let last: ScrapeTarget[] = [];
    try {
      await waitFor(
        async () => {
          last = await this.targets();
          if (last.length === 0 || last.some((t) => t.health !== 'up')) return false;
          const t = Math.min(...last.map((x) => x.lastScrape.getTime()));
          if (t > after.getTime()) seen.add(t);
          return seen.size >= 2;
        },
        timeoutMs,
        `prometheus to scrape ${this.job} after ${after.toISOString()}`,
        200,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}; targets: ${JSON.stringify(last)}`);
    }
  }

  async #kill(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await this.#exited;
      clearTimeout(timer);
    }
  }

  /** Stops Prometheus (SIGTERM, SIGKILL after 10 s), waits for it to exit, removes its files. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#kill();
    await rm(this.#dir, { recursive: true, force: true });
  }
}

export interface PromtoolResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `promtool check metrics` with the exposition text on its standard input. */
export function promtoolCheckMetrics(text: string): Promise<PromtoolResult> {
  const bin = requireTool('promtool', 'the Prometheus end-to-end test');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(text);
  });
}

/**
 * The sum of every sample of `name` in a Prometheus text exposition whose labels
 * include each of `labels` (each a `k="v"`); 0 when there is none.
 */
export function seriesTotal(exposition: string, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labels.every((l) => (m[2] ?? '').includes(l))) sum += Number(m[3]);
  }
  return sum;
}
