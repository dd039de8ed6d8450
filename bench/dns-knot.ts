// The DNS benchmark's tools: Knot DNS as the reference authoritative server
// (configured as in /work/shared/ANCHORS.md) and dnsperf as the load generator, both
// real Debian binaries driven as child processes. A library, not a benchmark:
// bench/dns.bench.ts runs fedgate and Knot side by side with these.
//
//   const knot = await startKnot({ dir, port, zones: [{ origin: 'example.test', text }] });
//   await writeQueriesFile(file, [{ name: 'www.example.test', type: 'A' }]);
//   const r = await runDnsperf({ server: '127.0.0.1', port: knot.port, queriesFile: file, seconds: 10 });
//   await knot.stop();
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool } from '../test/helpers/tools.ts';
import { type DnsProcess, startDnsProcess } from './dns-process.ts';
import { printTable, summarize } from './lib.ts';

// Moved to lib.ts (the HTTP benchmark needs it too); re-exported for existing importers.
export { freePort } from './lib.ts';

/** Where a system tool is, installed by scripts/ensure-tools.sh if missing (never skipped). */
const tool = (name: string) => requireTool(name, 'the DNS benchmark');

// ---- Knot -------------------------------------------------------------------------

export interface KnotZone {
  /** The zone's apex, e.g. `example.test` (a trailing dot is fine). */
  origin: string;
  /** The zone file (RFC 1035 master format) with the apex SOA; `$ORIGIN` defaults to `origin`. */
  text: string;
}

export interface KnotOptions {
  /**
   * Working directory for knot.conf, the zone files, the PID file and Knot's
   * database; created if missing. Must be root-owned when running as root: knotd
   * fails to write its PID file in a folder chowned to the `knot` user.
   */
  dir: string;
  port: number;
  /** Listen address; 127.0.0.1 by default. */
  host?: string;
  zones: KnotZone[];
  /**
   * Extra `server:` settings, e.g. `{ 'edns-client-subnet': 'on' }` to echo ECS the
   * way fedgate does, or more `udp-workers`. Defaults are ANCHORS.md's: one worker each.
   */
  server?: Record<string, string | number>;
  /** How long to wait for every zone to be answered authoritatively; 15 s by default. */
  startTimeoutMs?: number;
}

/** knotd, running: where it answers, its PID and log; stop() ends it. */
export type KnotServer = DnsProcess;

const zoneName = (origin: string) => origin.replace(/\.$/, '');

function knotConf(dir: string, host: string, port: number, opts: KnotOptions): string {
  const server: Record<string, string | number> = {
    rundir: dir,
    pidfile: join(dir, 'knot.pid'),
    listen: `${host}@${port}`,
    'udp-workers': 1,
    'tcp-workers': 1,
    'background-workers': 1,
    ...opts.server,
  };
  const lines = ['server:', ...Object.entries(server).map(([k, v]) => `  ${k}: ${v}`)];
  lines.push(
    'database:',
    `  storage: ${dir}`,
    'log:',
    '  - target: stderr',
    '    any: warning',
    'template:',
    '  - id: default',
    `    storage: ${dir}`,
    // Benchmark zones need no DNSSEC or glue pedantry; ANCHORS.md runs Knot so.
    '    semantic-checks: off',
    'zone:',
  );
  for (const z of opts.zones) {
    lines.push(`  - domain: ${zoneName(z.origin)}`, `    file: ${zoneName(z.origin)}.zone`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes a Knot configuration and zone files into `opts.dir`, starts `knotd -c
 * DIR/knot.conf` in the foreground as a child process, and resolves once it answers
 * every zone's SOA authoritatively over UDP. Rejects with knotd's log if it exits,
 * fails to load a zone, or does not answer in time.
 */
export async function startKnot(opts: KnotOptions): Promise<KnotServer> {
  if (opts.zones.length === 0) throw new Error('startKnot: at least one zone is needed');
  const host = opts.host ?? '127.0.0.1';
  const dir = opts.dir;
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0 && (await stat(dir)).uid !== 0) {
    throw new Error(
      `startKnot: ${dir} must be owned by root when running as root (knotd's PID file)`,
    );
  }
  const knotd = tool('knotd');
  const conf = join(dir, 'knot.conf');
  await writeFile(conf, knotConf(dir, host, opts.port, opts));
  for (const z of opts.zones) {
    await writeFile(join(dir, `${zoneName(z.origin)}.zone`), z.text);
  }

  return startDnsProcess({
    what: 'knotd',
    bin: knotd,
    args: ['-c', conf],
    host,
    port: opts.port,
    apexes: opts.zones.map((z) => z.origin),
    // A zone file Knot rejects is only logged; knotd keeps running.
    loadFailed: /failed to load zone|zone event 'load' failed/,
    ...(opts.startTimeoutMs === undefined ? {} : { startTimeoutMs: opts.startTimeoutMs }),
  });
}

// ---- dnsperf ----------------------------------------------------------------------

/** Writes a dnsperf data file: one `NAME TYPE` line per query, replayed in order and looped. */
export async function writeQueriesFile(
  path: string,
  queries: { name: string; type: string }[],
): Promise<void> {
  if (queries.length === 0) throw new Error('writeQueriesFile: no queries');
  await writeFile(path, `${queries.map((q) => `${q.name} ${q.type}`).join('\n')}\n`);
}

export interface DnsperfOptions {
  server: string;
  port: number;
  /** From writeQueriesFile. */
  queriesFile: string;
  /** `-l`: run time. */
  seconds: number;
  /** `-c`; 1 by default, as in ANCHORS.md. */
  clients?: number;
  /** `-T`; 1 by default, as in ANCHORS.md. */
  threads?: number;
  /** `-q`, queries in flight; 200 by default, as in ANCHORS.md (dnsperf's own default is 100). */
  outstanding?: number;
  /** `-Q`: cap on queries per second, for latency at a fixed load. Unlimited by default. */
  rate?: number;
  /**
   * `-t`: seconds before a query counts as lost; dnsperf's default is 5. dnsperf waits
   * this long after `-l` for stragglers, and a flat-out run nearly always has a few
   * (5–7 here), so a run lasts about `seconds + timeoutSeconds`. Rates use `-l` only.
   */
  timeoutSeconds?: number;
  /** `-v`: one line per query, parsed into `latencies` and `timedOut`. */
  verbose?: boolean;
  /** More dnsperf flags, e.g. `['-e']` for EDNS or `['-m', 'tcp']`. */
  extraArgs?: string[];
  /**
   * dnsperf's output goes to this file (read, then removed) instead of a pipe into
   * this process. For a -v run against a server in this same process: -v prints a
   * line per query, and reading that pipe on the event loop that answers the queries
   * adds to the very latencies being measured (p90 about 3x on 2 vCPUs).
   */
  outFile?: string;
  /** Called as soon as dnsperf has ended, before the (for -v, long) parse: the end of the load. */
  onExit?: () => void;
}

export interface DnsperfResult {
  /** "Queries per second": completed queries over the run time. */
  qps: number;
  sent: number;
  completed: number;
  /** "Queries completed" as a percentage of those sent. */
  completedPct: number;
  lost: number;
  /** Response codes counted by dnsperf: `{ NOERROR: 120252, NXDOMAIN: 60125 }`. */
  rcodes: Record<string, number>;
  runSeconds: number;
  avgLatencyMs: number;
  minLatencyMs: number;
  maxLatencyMs: number;
  /** With `verbose`: every completed query's latency in seconds, in arrival order. */
  latencies?: number[];
  /** With `verbose`: how many queries dnsperf reported as timed out (`> T ...`). */
  timedOut?: number;
  /** Everything dnsperf printed, stdout then stderr. */
  raw: string;
}

function dnsperfArgs(o: DnsperfOptions): string[] {
  const args = ['-s', o.server, '-p', String(o.port), '-d', o.queriesFile, '-l', String(o.seconds)];
  args.push('-c', String(o.clients ?? 1), '-T', String(o.threads ?? 1));
  args.push('-q', String(o.outstanding ?? 200));
  if (o.rate !== undefined) args.push('-Q', String(o.rate));
  if (o.timeoutSeconds !== undefined) args.push('-t', String(o.timeoutSeconds));
  if (o.verbose) args.push('-v');
  return [...args, ...(o.extraArgs ?? [])];
}

/**
 * Runs dnsperf against a server and parses its statistics. Rejects if dnsperf fails
 * or prints no statistics (a bad data file, an unreachable address).
 */
export async function runDnsperf(opts: DnsperfOptions): Promise<DnsperfResult> {
  const bin = tool('dnsperf');
  const args = dnsperfArgs(opts);
  const fd = opts.outFile === undefined ? undefined : openSync(opts.outFile, 'w');
  let result: { code: number | null; stdout: string; stderr: string };
  try {
    result = await new Promise((resolve, reject) => {
      const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', fd ?? 'pipe', 'pipe'] });
      // -v prints a line per query (hundreds of thousands): keep chunks, join once.
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on('data', (d: Buffer) => out.push(d));
      child.stderr?.on('data', (d: Buffer) => err.push(d));
      // dnsperf ends by itself after -l plus the query timeout; this guards a hang.
      const guard = setTimeout(
        () => child.kill('SIGKILL'),
        (opts.seconds + (opts.timeoutSeconds ?? 5) + 30) * 1000,
      );
      child.once('error', reject);
      child.once('close', (c) => {
        clearTimeout(guard);
        opts.onExit?.();
        resolve({
          code: c,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
        });
      });
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (opts.outFile !== undefined) {
    result.stdout = await readFile(opts.outFile, 'utf8');
    await rm(opts.outFile, { force: true });
  }
  const { code, stdout, stderr } = result;
  const raw = stderr ? `${stdout}${stdout.endsWith('\n') ? '' : '\n'}${stderr}` : stdout;
  if (code !== 0 || !stdout.includes('Statistics:')) {
    throw new Error(`dnsperf ${args.join(' ')} failed (exit ${code}):\n${raw.slice(-4000)}`);
  }
  return { ...parseDnsperf(stdout, opts.verbose ?? false), raw };
}

/**
 * Parses dnsperf 2.x output (checked against Debian's 2.10.0). The summary:
 *
 *   Queries sent:         180383
 *   Queries completed:    180377 (100.00%)
 *   Queries lost:         6 (0.00%)
 *   Response codes:       NOERROR 120252 (66.67%), NXDOMAIN 60125 (33.33%)
 *   Run time (s):         2.000495
 *   Queries per second:   90166.183869
 *   Average Latency (s):  0.001764 (min 0.000020, max 0.052235)
 *
 * and with -v, before it, one line per query: `> NOERROR www.example.test A 0.000231`
 * (RCODE, the query as in the data file, latency in seconds) or `> T www.example.test A`
 * for one that timed out.
 */
export function parseDnsperf(stdout: string, verbose: boolean): Omit<DnsperfResult, 'raw'> {
  const num = (label: string): number => {
    const m = new RegExp(`^\\s*${label}:\\s+([0-9.]+)`, 'm').exec(stdout);
    if (!m) throw new Error(`dnsperf output has no "${label}:" line:\n${stdout.slice(-2000)}`);
    return Number(m[1]);
  };
  const completedPct = /^\s*Queries completed:\s+\d+ \(([0-9.]+)%\)/m.exec(stdout);
  const latency = /^\s*Average Latency \(s\):\s+([0-9.]+) \(min ([0-9.]+), max ([0-9.]+)\)/m.exec(
    stdout,
  );
  const rcodes: Record<string, number> = {};
  const rcodeLine = /^\s*Response codes:[ \t]*(.*)$/m.exec(stdout)?.[1] ?? '';
  for (const m of rcodeLine.matchAll(/([A-Z0-9]+) (\d+) \(/g)) rcodes[m[1]!] = Number(m[2]);

  const result: Omit<DnsperfResult, 'raw'> = {
    qps: num('Queries per second'),
    sent: num('Queries sent'),
    completed: num('Queries completed'),
    completedPct: Number(completedPct?.[1] ?? Number.NaN),
    lost: num('Queries lost'),
    rcodes,
    runSeconds: num('Run time \\(s\\)'),
    avgLatencyMs: Number(latency?.[1] ?? Number.NaN) * 1000,
    minLatencyMs: Number(latency?.[2] ?? Number.NaN) * 1000,
    maxLatencyMs: Number(latency?.[3] ?? Number.NaN) * 1000,
  };
  if (verbose) {
    const latencies: number[] = [];
    let timedOut = 0;
    // Scanning by index: a regex per line over ~10^6 lines is needlessly slow.
    let start = 0;
    while (start < stdout.length) {
      let end = stdout.indexOf('\n', start);
      if (end < 0) end = stdout.length;
      if (stdout.charCodeAt(start) === 62 /* > */ && stdout.charCodeAt(start + 1) === 32) {
        if (stdout.startsWith('> T ', start)) timedOut++;
        else {
          const sp = stdout.lastIndexOf(' ', end);
          const seconds = Number(stdout.slice(sp + 1, end));
          if (sp > start && Number.isFinite(seconds)) latencies.push(seconds);
        }
      }
      start = end + 1;
    }
    result.latencies = latencies;
    result.timedOut = timedOut;
  }
  return result;
}

/**
 * A self-check's load: dnsperf (-c 1 -T 1 -q 200) flat out for 3 s, then at a fixed
 * 5,000 queries/s for 2 s with per-query latencies; prints both, throws if dnsperf
 * measured nothing, and returns both runs.
 */
export async function dnsperfSelfCheck(
  what: string,
  port: number,
  queriesFile: string,
): Promise<DnsperfResult[]> {
  const flat = await runDnsperf({ server: '127.0.0.1', port, queriesFile, seconds: 3 });
  const paced = await runDnsperf({
    server: '127.0.0.1',
    port,
    queriesFile,
    seconds: 2,
    rate: 5000,
    verbose: true,
  });
  const runs = { 'flat out, 3 s': flat, '-Q 5000 -v, 2 s': paced };
  printTable(
    `${what} under dnsperf -c 1 -T 1 -q 200`,
    Object.entries(runs).map(([run, r]) => ({
      run,
      'queries/s': Math.round(r.qps),
      'completed %': r.completedPct,
      lost: r.lost,
      'avg latency ms': r.avgLatencyMs,
      rcodes: JSON.stringify(r.rcodes),
    })),
  );
  const lat = summarize((paced.latencies ?? []).map((x) => x * 1e6));
  const timedOut = paced.timedOut ?? 0;
  printTable('Per-query latency at 5,000 queries/s (µs, from dnsperf -v)', [
    { n: lat.n, p50: lat.p50, p90: lat.p90, p99: lat.p99, max: lat.max, 'timed out': timedOut },
  ]);
  if (flat.qps <= 0 || lat.n === 0) throw new Error('dnsperf measured nothing');
  return [flat, paced];
}
