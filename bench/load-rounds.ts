// Measuring a target under load on a shared two-core machine, for the proxy benchmarks
// (HTTP and gRPC): a warm-up, a timed run with the CPU of every party (the proxy, the
// backend, the load tool, everyone else) taken from /proc, a run measured again when
// other work skewed it, and the medians over rounds. The load tool (wrk, h2load) is the
// caller's: each target says how to put load on it.
import { loadavg } from 'node:os';
import {
  machineCpuSeconds,
  reapedChildrenCpuSeconds,
  waitForQuietMachine,
} from './http-anchors.ts';
import { median } from './lib.ts';

/** What a load tool reports for one run. */
export interface LoadReport {
  requestsPerSec: number;
  /** Completed requests (any outcome). */
  requests: number;
  /** The run's length as the tool measured it. */
  durationSec: number;
  /** Response bytes read over the run, headers included. */
  bytesRead: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Failed requests by the tool's kinds of failure (all zero: none failed). */
  errors: Record<string, number>;
}

/** One way to reach the backend under load. */
export interface LoadTarget {
  name: string;
  /** Runs the load tool against the target for `durationSec` (the tool a child process). */
  load(durationSec: number): Promise<LoadReport>;
  /** CPU seconds used so far by the proxy in between (none when straight to the backend). */
  proxyCpuSeconds?: () => number;
}

export interface RoundsConfig {
  warmupSeconds: number;
  runSeconds: number;
  /**
   * Other engineers' tests share the two cores: a run in which more than this share of
   * a core went to work outside the benchmark is measured again, up to `busyRetries`
   * times, and the quietest try kept (flagged `busy` if even it was over).
   */
  maxOthersCpu: number;
  busyRetries: number;
  /** How long to wait for a quiet machine before measuring a busy run again, at most. */
  retryWaitSeconds: number;
}

/** FEDGATE_PROXY_ROUNDS: more rounds for a comparison the machine's noise hides in 3. */
const roundsFromEnv = Number(process.env.FEDGATE_PROXY_ROUNDS);

/**
 * How the proxy benchmarks measure (ANCHORS.md's wrk runs: 10 s), a 2 s warm-up before
 * each run, medians of 3 rounds (or FEDGATE_PROXY_ROUNDS, 1 to 15), up to 2 minutes'
 * wait for a quiet machine at the start.
 */
export const PROXY_ROUNDS: RoundsConfig & { rounds: number; quietWaitSeconds: number } = {
  warmupSeconds: 2,
  runSeconds: 10,
  maxOthersCpu: 0.15,
  busyRetries: 2,
  retryWaitSeconds: 30,
  rounds:
    Number.isInteger(roundsFromEnv) && roundsFromEnv >= 1 && roundsFromEnv <= 15
      ? roundsFromEnv
      : 3,
  quietWaitSeconds: 120,
};

export interface Run extends Omit<LoadReport, 'durationSec' | 'bytesRead'> {
  /** Bytes read per response, headers included. */
  responseBytes: number;
  /** CPU seconds over the tool's run time: 1 = one core busy. */
  backendCpu: number;
  proxyCpu?: number;
  /** CPU microseconds per request the tool counted. */
  backendUsPerRequest: number;
  proxyUsPerRequest?: number;
  /** The load tool itself. */
  loadCpu: number;
  /**
   * Busy CPU on the machine that none of the above used: other work skewing the run
   * (and this process, idle unless the proxy under test runs in it, and kernel work
   * charged to no process: so an upper bound on others' load).
   */
  othersCpu: number;
  /** CPU the hypervisor gave to other guests while we wanted it. */
  stealCpu: number;
  /** Runs thrown away before this one because others' CPU was over maxOthersCpu. */
  busyRetries: number;
  /** Even this run, the quietest, had others' CPU over maxOthersCpu. */
  busy: boolean;
  /** The machine's 1-minute load average at the end of the run. */
  load1: number;
}

/** All failed requests of a run, of every kind. */
export function failedCount(errors: Record<string, number>): number {
  return Object.values(errors).reduce((a, n) => a + n, 0);
}

/** The quietest of up to 1 + busyRetries runs: the first with others' CPU in bounds. */
export async function measureQuiet(
  t: LoadTarget,
  backend: { cpuSeconds(): number },
  cfg: RoundsConfig,
): Promise<Run> {
  let best: Omit<Run, 'busy'> | undefined;
  for (let i = 0; i <= cfg.busyRetries; i++) {
    const r = { ...(await measureOnce(t, backend, cfg)), busyRetries: i };
    if (best === undefined || r.othersCpu < best.othersCpu) best = r;
    if (r.othersCpu <= cfg.maxOthersCpu) break;
    const waited = i < cfg.busyRetries ? await waitForQuietMachine(cfg.retryWaitSeconds) : 0;
    console.log(
      `  ${t.name}: others used ${(r.othersCpu * 100).toFixed(0)} % of a core${i < cfg.busyRetries ? `, measuring again after ${waited.toFixed(0)} s` : ''}`,
    );
  }
  if (best === undefined) throw new Error('measureQuiet: busyRetries below 0');
  return { ...best, busy: best.othersCpu > cfg.maxOthersCpu };
}

async function measureOnce(
  t: LoadTarget,
  backend: { cpuSeconds(): number },
  cfg: RoundsConfig,
): Promise<Omit<Run, 'busy'>> {
  await t.load(cfg.warmupSeconds);
  const m0 = machineCpuSeconds();
  const w0 = reapedChildrenCpuSeconds();
  const b0 = backend.cpuSeconds();
  const p0 = t.proxyCpuSeconds?.();
  const r = await t.load(cfg.runSeconds);
  const share = (seconds: number) => seconds / r.durationSec;
  const perRequest = (seconds: number) => (seconds * 1e6) / r.requests;
  const backendSeconds = backend.cpuSeconds() - b0;
  const proxySeconds =
    p0 === undefined || t.proxyCpuSeconds === undefined ? undefined : t.proxyCpuSeconds() - p0;
  const backendCpu = share(backendSeconds);
  const proxyCpu = proxySeconds === undefined ? undefined : share(proxySeconds);
  // The tool has been reaped by now, so its CPU is in this process's children's time.
  const loadCpu = share(reapedChildrenCpuSeconds() - w0);
  const m1 = machineCpuSeconds();
  const busy = share(m1.busy - m0.busy);
  return {
    requestsPerSec: r.requestsPerSec,
    p50Ms: r.p50Ms,
    p90Ms: r.p90Ms,
    p99Ms: r.p99Ms,
    maxMs: r.maxMs,
    requests: r.requests,
    responseBytes: r.bytesRead / r.requests,
    errors: r.errors,
    backendCpu,
    ...(proxyCpu !== undefined && { proxyCpu }),
    backendUsPerRequest: perRequest(backendSeconds),
    ...(proxySeconds !== undefined && { proxyUsPerRequest: perRequest(proxySeconds) }),
    loadCpu,
    othersCpu: Math.max(0, busy - backendCpu - (proxyCpu ?? 0) - loadCpu),
    stealCpu: share(m1.steal - m0.steal),
    busyRetries: 0,
    load1: loadavg()[0] ?? Number.NaN,
  };
}

/** The medians of a target's rounds (max of the max), failures summed. */
export function summary(runs: Run[]) {
  const m = (f: (r: Run) => number) => median(runs.map(f));
  const mOpt = (f: (r: Run) => number | undefined) => {
    const xs = runs.map(f).filter((x): x is number => x !== undefined);
    return xs.length === runs.length ? median(xs) : undefined;
  };
  const proxyCpu = mOpt((r) => r.proxyCpu);
  const proxyUsPerRequest = mOpt((r) => r.proxyUsPerRequest);
  return {
    requestsPerSec: m((r) => r.requestsPerSec),
    p50Ms: m((r) => r.p50Ms),
    p90Ms: m((r) => r.p90Ms),
    p99Ms: m((r) => r.p99Ms),
    maxMs: Math.max(...runs.map((r) => r.maxMs)),
    responseBytes: m((r) => r.responseBytes),
    failedRequests: runs.reduce((a, r) => a + failedCount(r.errors), 0),
    backendCpu: m((r) => r.backendCpu),
    ...(proxyCpu !== undefined && { proxyCpu }),
    backendUsPerRequest: m((r) => r.backendUsPerRequest),
    ...(proxyUsPerRequest !== undefined && { proxyUsPerRequest }),
    loadCpu: m((r) => r.loadCpu),
    othersCpu: m((r) => r.othersCpu),
    stealCpu: m((r) => r.stealCpu),
    /** Rounds whose quietest try still had others' CPU over maxOthersCpu. */
    busyRounds: runs.filter((r) => r.busy).length,
  };
}

export type Summary = ReturnType<typeof summary>;

/** The line a benchmark prints after each measured run. */
export function runLine(label: string, r: Run, unit = 'req/s'): string {
  const failed = failedCount(r.errors);
  const us = r.proxyUsPerRequest ?? r.backendUsPerRequest;
  return `${label}: ${Math.round(r.requestsPerSec)} ${unit}, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, ${us.toFixed(1)} µs cpu/req, others' cpu ${(r.othersCpu * 100).toFixed(0)} %${r.busy ? ' (busy)' : ''}, load ${r.load1.toFixed(2)}${failed ? `, ${failed} failed: ${JSON.stringify(r.errors)}` : ''}`;
}

/**
 * Waits (at most `cfg.quietWaitSeconds`) for a quiet machine, then `cfg.rounds` rounds
 * over every target, each measured once a round (a warm-up, then the run), in the
 * targets' order and then in reverse, round by round, so drift on a shared 2-vCPU
 * machine hits all alike and no target always runs right after the same other. Prints
 * a line per run; returns each target's runs by name, the wait, and the load average
 * when the rounds began.
 */
export async function measureRounds(
  targets: readonly LoadTarget[],
  backend: { cpuSeconds(): number },
  cfg: typeof PROXY_ROUNDS,
  unit = 'req/s',
): Promise<{ runs: Record<string, Run[]>; quietWaitSeconds: number; loadAtStart: number }> {
  const quietWaitSeconds = await waitForQuietMachine(cfg.quietWaitSeconds);
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  console.log(
    `waited ${quietWaitSeconds.toFixed(0)} s for a quiet machine; load average ${loadAtStart.toFixed(2)}`,
  );
  const runs: Record<string, Run[]> = {};
  for (let round = 0; round < cfg.rounds; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      const r = await measureQuiet(t, backend, cfg);
      runs[t.name] = [...(runs[t.name] ?? []), r];
      console.log(runLine(`round ${round + 1}/${cfg.rounds} ${t.name}`, r, unit));
    }
  }
  return { runs, quietWaitSeconds, loadAtStart };
}

/** Ratios between measured targets; null when either was not measured. */
export function comparisons(runs: Record<string, Run[]>) {
  const med: Record<string, Summary> = Object.fromEntries(
    Object.entries(runs).map(([name, rs]) => [name, summary(rs)]),
  );
  return {
    med,
    /** a's median over b's, for req/s and p99. */
    ratio(a: string, b: string): { requestsPerSec: number; p99: number } | null {
      const x = med[a];
      const y = med[b];
      return x === undefined || y === undefined
        ? null
        : { requestsPerSec: x.requestsPerSec / y.requestsPerSec, p99: x.p99Ms / y.p99Ms };
    },
    /** a's req/s over b's in the same round: robust to drift between rounds. */
    paired(a: string, b: string): number[] | null {
      const x = runs[a];
      const y = runs[b];
      return x && y
        ? x.map((r, i) => r.requestsPerSec / (y[i]?.requestsPerSec ?? Number.NaN))
        : null;
    },
  };
}
