// h2load (Debian's nghttp2-client) as the HTTP/2 load generator of the benchmarks:
// a C client, far lighter than a Node one on two shared cores. Over TLS it negotiates h2
// by ALPN (and does not verify the certificate); over http:// it speaks h2c with prior
// knowledge. It prints no percentiles: each run writes a per-request log (start,
// status, elapsed µs) and the percentiles are taken from it.
//
//   const r = await runH2load({ url: 'http://127.0.0.1:8080/', clients: 8, streams: 8,
//     durationSec: 10, logFile: '/tmp/h2load.log' });
import { spawnSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { requireTool } from '../test/helpers/tools.ts';
import { runToEnd } from './child.ts';
import { percentile } from './lib.ts';

/** Where h2load is, installed by scripts/ensure-tools.sh if missing (never skipped). */
const h2loadBin = () => requireTool('h2load', 'the HTTP/2 and gRPC benchmarks');

export interface H2loadOptions {
  /** http:// (h2c) or https:// (h2 by ALPN); the path is every request's. */
  url: string;
  /** The :authority of every request; the URL's host:port otherwise. */
  authority?: string;
  /** `-c`: connections. */
  clients: number;
  /** `-m`: streams in flight on each connection. */
  streams: number;
  /** `-D`: seconds of load; h2load stops by itself after them. */
  durationSec: number;
  /** `-t`: threads; 1 by default (two cores, shared with the server and the proxy). */
  threads?: number;
  /** `-d`: a file sent as every request's body (the method becomes POST). */
  bodyFile?: string;
  /** More request headers, `name: value`. */
  headers?: string[];
  /** Where h2load writes its per-request log; removed once read. */
  logFile: string;
}

export interface H2loadSummary {
  requestsPerSec: number;
  /** Requests done in the run (any outcome). */
  requests: number;
  durationSec: number;
  /** Requests done with a 2xx or 3xx answer. */
  succeeded: number;
  /** Requests that failed: non-2xx/3xx answers, resets, connection errors, timeouts. */
  failed: number;
  /** The subset of `failed` that never got an HTTP answer (reset, connection error). */
  errored: number;
  timedOut: number;
  /** Answers by status class (those cut off by the run's end included). */
  status: { '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  /** Bytes read, headers and frames included. */
  bytesRead: number;
  /**
   * DATA frame payload bytes read (the response bodies; gRPC: the framed messages),
   * those of requests cut off by the run's end included.
   */
  dataBytes: number;
}

export interface H2loadResult extends H2loadSummary {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Everything h2load printed, stdout then stderr. */
  raw: string;
}

/** The installed h2load's version, e.g. `1.52.0`. */
export function h2loadVersion(): string {
  const r = spawnSync(h2loadBin(), ['--version'], { encoding: 'utf8' });
  return /nghttp2\/(\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

export function h2loadArgs(o: H2loadOptions): string[] {
  const args = ['-c', String(o.clients), '-m', String(o.streams), '-t', String(o.threads ?? 1)];
  args.push('-D', String(o.durationSec), `--log-file=${o.logFile}`);
  if (o.bodyFile !== undefined) args.push('-d', o.bodyFile);
  if (o.authority !== undefined) args.push('-H', `:authority: ${o.authority}`);
  for (const h of o.headers ?? []) args.push('-H', h);
  return [...args, o.url];
}

/**
 * Runs h2load against `url` for `durationSec` and returns its summary with latency
 * percentiles from its per-request log. Rejects if h2load fails or prints no summary
 * (it could not connect at all, or no protocol was agreed). Failed requests do not
 * reject: they are counted, for the caller to judge.
 */
export async function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  const args = h2loadArgs(o);
  await rm(o.logFile, { force: true });
  const { code, stdout, stderr } = await runToEnd(h2loadBin(), args, (o.durationSec + 30) * 1000);
  const raw = stderr ? `${stdout}${stdout.endsWith('\n') ? '' : '\n'}${stderr}` : stdout;
  const fail = (why: string) =>
    new Error(`h2load ${args.join(' ')} ${why} (exit ${code}):\n${raw.slice(-4000)}`);
  if (code !== 0 || !/^finished in /m.test(stdout)) throw fail('failed');
  const summary = parseH2load(stdout);
  if (summary.requests === 0) throw fail('completed no request');
  const log = await readFile(o.logFile, 'utf8').catch(() => '');
  await rm(o.logFile, { force: true });
  const elapsed = requestTimesMs(log);
  if (elapsed.length === 0) throw fail(`wrote no request to ${o.logFile}`);
  return {
    ...summary,
    p50Ms: percentile(elapsed, 50),
    p90Ms: percentile(elapsed, 90),
    p99Ms: percentile(elapsed, 99),
    maxMs: elapsed.at(-1) ?? Number.NaN,
    raw,
  };
}

/** The elapsed times of h2load's `--log-file` (`start µs \t status \t elapsed µs`), sorted, in ms. */
export function requestTimesMs(log: string): number[] {
  const out: number[] = [];
  for (const line of log.split('\n')) {
    const us = Number(line.split('\t')[2]);
    if (line !== '' && Number.isFinite(us)) out.push(us / 1000);
  }
  return out.sort((a, b) => a - b);
}

const UNIT: Record<string, number> = { s: 1, ms: 1e-3, us: 1e-6 };

/**
 * Parses h2load's summary (checked against Debian's nghttp2 1.52):
 *
 *   finished in 3.00s, 18056.00 req/s, 971.15KB/s
 *   requests: 54168 total, 54232 started, 54168 done, 54168 succeeded, 0 failed, 0 errored, 0 timeout
 *   status codes: 54216 2xx, 0 3xx, 0 4xx, 0 5xx
 *   traffic: 2.85MB (2983376) total, 265.97KB (272352) headers (space savings 96.39%), 1.09MB (1138536) data
 */
export function parseH2load(stdout: string): H2loadSummary {
  const must = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(stdout);
    if (!m) throw new Error(`h2load output has no ${what} line:\n${stdout.slice(-2000)}`);
    return m;
  };
  const fin = must(/^finished in ([0-9.]+)(s|ms|us), ([0-9.]+) req\/s/m, '"finished in"');
  const req = must(
    /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m,
    '"requests:"',
  );
  const st = must(/^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m, '"status codes:"');
  const tr = must(
    /^traffic: \S+ \((\d+)\) total, \S+ \((\d+)\) headers .*?, \S+ \((\d+)\) data/m,
    '"traffic:"',
  );
  return {
    requestsPerSec: Number(fin[3]),
    requests: Number(req[3]),
    durationSec: Number(fin[1]) * UNIT[fin[2]!]!,
    succeeded: Number(req[4]),
    failed: Number(req[5]),
    errored: Number(req[6]),
    timedOut: Number(req[7]),
    status: {
      '2xx': Number(st[1]),
      '3xx': Number(st[2]),
      '4xx': Number(st[3]),
      '5xx': Number(st[4]),
    },
    bytesRead: Number(tr[1]),
    dataBytes: Number(tr[3]),
  };
}

/** A run as the benchmarks' rounds take it (bench/load-rounds.ts): failures as h2load counts them. */
export function h2loadReport(r: H2loadResult, extraErrors: Record<string, number> = {}) {
  return {
    requestsPerSec: r.requestsPerSec,
    requests: r.requests,
    durationSec: r.durationSec,
    bytesRead: r.bytesRead,
    p50Ms: r.p50Ms,
    p90Ms: r.p90Ms,
    p99Ms: r.p99Ms,
    maxMs: r.maxMs,
    errors: { failed: r.failed, ...extraErrors },
  };
}
