// The DNS benchmark's load runs: dnsperf flat out, and at a fixed rate with every
// query's latency, against one server, with that server's CPU share over the run.
import { join } from 'node:path';
import { type DnsperfResult, runDnsperf } from './dns-knot.ts';
import { summarize } from './lib.ts';

/** One server under load: where it listens and the CPU seconds it has used so far. */
export interface Target {
  name: string;
  port: number;
  cpuSeconds(): number;
}

/** dnsperf's settings, the same for every server. */
export interface LoadSettings {
  queriesFile: string;
  /** Where dnsperf's -v output goes. */
  workDir: string;
  /** dnsperf clients, each its own socket: the source ports SO_REUSEPORT spreads by. */
  clients: number;
  outstanding: number;
  /** dnsperf waits this long after the run for stragglers. */
  timeoutSeconds: number;
}

export interface RateRun {
  qps: number;
  lost: number;
  completedPct: number;
  /** The server's CPU seconds over dnsperf's run time: 1 = one core busy. */
  cpuShare: number;
}

export interface LatencyRun {
  qps: number;
  timedOut: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  cpuShare: number;
}

/** One dnsperf run against `t`; throws if any answer was not NOERROR. */
export async function load(
  t: Target,
  s: LoadSettings,
  seconds: number,
  extra: { rate?: number; verbose?: boolean } = {},
): Promise<{ r: DnsperfResult; cpuShare: number }> {
  const cpu0 = t.cpuSeconds();
  let cpu1 = Number.NaN;
  // The load ends when dnsperf does: parsing its output after is not the server's work.
  const ended = () => {
    if (Number.isNaN(cpu1)) cpu1 = t.cpuSeconds();
  };
  const r = await runDnsperf({
    server: '127.0.0.1',
    port: t.port,
    queriesFile: s.queriesFile,
    seconds,
    clients: s.clients,
    outstanding: s.outstanding,
    timeoutSeconds: s.timeoutSeconds,
    ...extra,
    onExit: ended,
    ...(extra.verbose ? { outFile: join(s.workDir, 'dnsperf.out') } : {}),
  }).finally(ended);
  const noerror = r.rcodes.NOERROR ?? 0;
  if (noerror < r.completed) {
    throw new Error(`${t.name} answered some queries with errors: ${JSON.stringify(r.rcodes)}`);
  }
  return { r, cpuShare: (cpu1 - cpu0) / r.runSeconds };
}

/** One flat-out run. */
export async function measureRate(t: Target, s: LoadSettings, seconds: number): Promise<RateRun> {
  const { r, cpuShare } = await load(t, s, seconds);
  return { qps: r.qps, lost: r.lost, completedPct: r.completedPct, cpuShare };
}

/** One run at `rate` queries/s with every query's latency. */
export async function measureLatency(
  t: Target,
  s: LoadSettings,
  seconds: number,
  rate: number,
): Promise<LatencyRun> {
  const { r, cpuShare } = await load(t, s, seconds, { rate, verbose: true });
  const lat = summarize((r.latencies ?? []).map((x) => x * 1e6));
  return {
    qps: r.qps,
    timedOut: r.timedOut ?? 0,
    p50Us: lat.p50,
    p90Us: lat.p90,
    p99Us: lat.p99,
    maxUs: lat.max,
    cpuShare,
  };
}
