// The HTTP benchmarks' measuring tools: wrk as the HTTP/1.1 load generator (a real
// Debian binary driven as a child process), and the CPU each process and the whole
// machine used. A library, not a benchmark: bench/proxy.bench.ts measures the anchors
// (nginx, in bench/nginx.ts) and fedgate's proxy with these.
//
//   const r = await runWrk({ url: nginx.url, host: 'web.shop.example.test', durationSec: 10 });
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { requireTool } from '../test/helpers/tools.ts';
import { runToEnd } from './child.ts';

/** Where a system tool is, installed by scripts/ensure-tools.sh if missing (never skipped). */
const tool = (name: string) => requireTool(name, 'the HTTP proxy benchmark');

const CLOCK_TICKS_PER_SECOND = 100; // Linux USER_HZ, for /proc/PID/stat

// ---- process CPU --------------------------------------------------------------------

/** `[ppid, utime + stime in seconds]` of a process from /proc, or undefined if it is gone. */
function procStat(pid: number): [number, number] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state is field 3, ppid 4, utime 14 and stime 15 (1-based).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(f[1]), (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_SECOND];
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds (user + system) used so far by `pid` and its direct children, e.g. an
 * nginx master and its worker. Children are found by scanning /proc for their parent:
 * this kernel has no /proc/PID/task/TID/children. NaN if `pid` is gone.
 */
export function processTreeCpuSeconds(pid: number): number {
  const own = procStat(pid);
  if (own === undefined) return Number.NaN;
  let total = own[1];
  for (const entry of readdirSync('/proc')) {
    const child = Number(entry);
    if (!Number.isInteger(child) || child === pid) continue;
    const s = procStat(child);
    if (s !== undefined && s[0] === pid) total += s[1];
  }
  return total;
}

/**
 * CPU seconds used by the children this process has already waited for (a finished
 * wrk, say): cutime and cstime of /proc/self/stat. Children still running count not.
 */
export function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / CLOCK_TICKS_PER_SECOND;
}

/**
 * CPU seconds all cores have spent busy since boot (user, nice, system, irq, softirq:
 * not idle or iowait), and those the hypervisor stole, from /proc/stat. On a shared
 * machine the busy time nobody in the benchmark accounts for is someone else's load.
 */
export function machineCpuSeconds(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map((x) => Number(x) / CLOCK_TICKS_PER_SECOND);
  return { busy: user! + nice! + system! + irq! + softirq!, steal: steal ?? 0 };
}

/**
 * Waits, at most `maxSeconds`, for 3 s in which the machine's cores are under 10 %
 * busy: other work (tests others run on the same two cores) skews every figure.
 * Resolves with the seconds waited.
 */
export async function waitForQuietMachine(maxSeconds: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const a = machineCpuSeconds();
    await new Promise((r) => setTimeout(r, 3_000));
    const busy = (machineCpuSeconds().busy - a.busy) / 3 / cpus().length;
    const waited = (Date.now() - started) / 1000;
    if (busy < 0.1 || waited >= maxSeconds) return waited;
  }
}

// ---- wrk -----------------------------------------------------------------------------

export interface WrkOptions {
  url: string;
  /** Sent as `-H 'Host: ...'`; wrk sends the URL's host:port otherwise. */
  host?: string;
  /** `-t`; 2 by default, as in ANCHORS.md. */
  threads?: number;
  /** `-c`; 64 by default, as in ANCHORS.md. */
  connections?: number;
  /** `-d`, seconds; 10 by default, as in ANCHORS.md. */
  durationSec?: number;
  /** `--latency`: the percentile table; on by default. */
  latency?: boolean;
  /** `--timeout`, seconds: a request slower than this counts as a timeout (wrk: 2 s). */
  timeoutSec?: number;
  /** More wrk flags, e.g. `['-H', 'Accept: application/json']`. */
  extraArgs?: string[];
}

export interface WrkErrors {
  connect: number;
  read: number;
  write: number;
  timeout: number;
  /** Responses with a status outside 200–399. */
  non2xx3xx: number;
}

export interface WrkResult {
  requestsPerSec: number;
  /** Completed requests (any status). */
  requests: number;
  /** The run's length as wrk measured it. */
  durationSec: number;
  /** Response bytes read over the run. */
  bytesRead: number;
  /** From the thread stats line. */
  meanMs: number;
  maxMs: number;
  /** From the `--latency` table; NaN without it. */
  p50Ms: number;
  p75Ms: number;
  p90Ms: number;
  p99Ms: number;
  errors: WrkErrors;
  /** Everything wrk printed, stdout then stderr. */
  raw: string;
}

/** The installed wrk's version, e.g. `debian/4.1.0-3+b2` (`wrk -v` prints it, then exits 1). */
export function wrkVersion(): string {
  const r = spawnSync(tool('wrk'), ['-v'], { encoding: 'utf8' });
  return /^wrk (\S+)/m.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

function wrkArgs(o: WrkOptions): string[] {
  const args = ['-t', String(o.threads ?? 2), '-c', String(o.connections ?? 64)];
  args.push('-d', `${o.durationSec ?? 10}s`);
  if (o.latency ?? true) args.push('--latency');
  if (o.timeoutSec !== undefined) args.push('--timeout', `${o.timeoutSec}s`);
  if (o.host !== undefined) args.push('-H', `Host: ${o.host}`);
  return [...args, ...(o.extraArgs ?? []), o.url];
}

/**
 * Runs wrk against `url` and parses its summary. Rejects if wrk fails or prints no
 * summary (e.g. it could not connect at all). Failed requests do not reject: they are
 * counted in `errors`, for the caller to judge.
 */
export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const bin = tool('wrk');
  const args = wrkArgs(opts);
  const seconds = opts.durationSec ?? 10;
  // wrk ends by itself after -d; the timeout guards a hang.
  const { code, stdout, stderr } = await runToEnd(bin, args, (seconds + 30) * 1000);
  const raw = stderr ? `${stdout}${stdout.endsWith('\n') ? '' : '\n'}${stderr}` : stdout;
  if (code !== 0 || !/^Requests\/sec:/m.test(stdout)) {
    throw new Error(`wrk ${args.join(' ')} failed (exit ${code}):\n${raw.slice(-4000)}`);
  }
  return { ...parseWrk(stdout), raw };
}

// wrk prints times with the unit it finds readable: 812.00us, 1.26ms, 2.00s, 1.50m, 1.00h.
const TIME_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
const TIME = '([0-9.]+)(us|ms|s|m|h)';
// Byte counts: 60.00MB, 512.00B (binary multiples, as wrk computes them).
const BYTES: Record<string, number> = {
  B: 1,
  KB: 2 ** 10,
  MB: 2 ** 20,
  GB: 2 ** 30,
  TB: 2 ** 40,
  PB: 2 ** 50,
};

function ms(value: string | undefined, unit: string | undefined): number {
  if (value === undefined || unit === undefined) return Number.NaN;
  return Number(value) * TIME_MS[unit]!;
}

/**
 * Parses wrk 4.x output (checked against Debian's 4.1.0):
 *
 *   Running 10s test @ http://127.0.0.1:8080/
 *     2 threads and 64 connections
 *     Thread Stats   Avg      Stdev     Max   +/- Stdev
 *       Latency     1.26ms  500.00us  20.00ms   90.00%
 *       Req/Sec    24.30k     1.20k   27.00k    70.00%
 *     Latency Distribution
 *        50%    1.26ms
 *        75%    1.50ms
 *        90%    1.80ms
 *        99%    3.80ms
 *     483000 requests in 10.00s, 60.00MB read
 *     Socket errors: connect 0, read 0, write 0, timeout 0
 *     Non-2xx or 3xx responses: 12
 *   Requests/sec:  48300.00
 *   Transfer/sec:      6.00MB
 *
 * The socket-error and non-2xx lines appear only when there were any; the
 * distribution only with --latency.
 */
export function parseWrk(stdout: string): Omit<WrkResult, 'raw'> {
  const must = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(stdout);
    if (!m) throw new Error(`wrk output has no ${what} line:\n${stdout.slice(-2000)}`);
    return m;
  };
  const rps = must(/^Requests\/sec:\s+([0-9.]+)/m, '"Requests/sec:"');
  const total = must(
    new RegExp(`^\\s*(\\d+) requests in ${TIME}, ([0-9.]+)([KMGTP]?B) read`, 'm'),
    '"N requests in T, B read"',
  );
  const stats = new RegExp(`^\\s*Latency\\s+${TIME}\\s+${TIME}\\s+${TIME}`, 'm').exec(stdout);
  const pct = (p: number) => {
    const m = new RegExp(`^\\s*${p}(?:\\.0+)?%\\s+${TIME}\\s*$`, 'm').exec(stdout);
    return ms(m?.[1], m?.[2]);
  };
  const sock =
    /^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/m.exec(stdout) ?? [];
  const non2xx = /^\s*Non-2xx or 3xx responses: (\d+)/m.exec(stdout);
  return {
    requestsPerSec: Number(rps[1]),
    requests: Number(total[1]),
    durationSec: ms(total[2], total[3]) / 1000,
    bytesRead: Number(total[4]) * BYTES[total[5]!]!,
    meanMs: ms(stats?.[1], stats?.[2]),
    maxMs: ms(stats?.[5], stats?.[6]),
    p50Ms: pct(50),
    p75Ms: pct(75),
    p90Ms: pct(90),
    p99Ms: pct(99),
    errors: {
      connect: Number(sock[1] ?? 0),
      read: Number(sock[2] ?? 0),
      write: Number(sock[3] ?? 0),
      timeout: Number(sock[4] ?? 0),
      non2xx3xx: Number(non2xx?.[1] ?? 0),
    },
  };
}

/** All failed requests of a run: socket errors of every kind plus non-2xx/3xx responses. */
export function wrkErrorCount(e: WrkErrors): number {
  return e.connect + e.read + e.write + e.timeout + e.non2xx3xx;
}
