// What the proxy benchmarks (HTTP and gRPC) report from their rounds (load-rounds.ts):
// a row per target for the printed table, the targets set for fedgate and whether they
// were reached, each target's entry in the results JSON. And the scratch folder and
// processes a benchmark starts, gone when it ends however it ends.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Run, Summary } from './load-rounds.ts';

const pct = (v: number | undefined) => (v === undefined ? '' : `${(v * 100).toFixed(0)} %`);
/** Two decimals, '' for a ratio not measured. */
export const r2 = (v: number | undefined) => (v === undefined ? '' : v.toFixed(2));

/** Words of the table: `req`/`req/s` for HTTP, `call`/`calls/s` for gRPC; the tool's name. */
export interface Units {
  one: string;
  rate: string;
  tool: string;
}

/**
 * A target's row: its medians, each round's rate, CPU of every party, failures, and its
 * ratio to `anchor` (nginx over the same protocol); `missing` when it was not measured.
 */
export function tableRow(
  name: string,
  s: Summary | undefined,
  rounds: Run[] | undefined,
  u: Units,
  vsAnchor: { requestsPerSec: number; p99: number } | null,
  missing = 'not measured',
): Record<string, string | number> {
  if (s === undefined) return { target: name, [u.rate]: missing };
  return {
    target: name,
    [u.rate]: Math.round(s.requestsPerSec),
    'p50 ms': s.p50Ms.toFixed(2),
    'p99 ms': s.p99Ms.toFixed(2),
    [`rounds ${u.rate}`]: (rounds ?? []).map((r) => Math.round(r.requestsPerSec)).join(' / '),
    [`proxy µs/${u.one}`]: s.proxyUsPerRequest === undefined ? '' : s.proxyUsPerRequest.toFixed(1),
    [`backend µs/${u.one}`]: s.backendUsPerRequest.toFixed(1),
    'proxy cpu': pct(s.proxyCpu),
    'backend cpu': pct(s.backendCpu),
    [`${u.tool} cpu`]: pct(s.loadCpu),
    'others cpu': pct(s.othersCpu),
    failed: s.failedRequests,
    busy: s.busyRounds,
    [`${u.rate} vs nginx`]: r2(vsAnchor?.requestsPerSec),
    'p99 vs nginx': r2(vsAnchor?.p99),
  };
}

/** A target set for fedgate: a ratio, its bound, and whether it was reached. */
export interface TargetMet {
  value: number | null;
  /** The same ratio round by round, when it is one of rates. */
  paired?: number[] | null;
  target: string;
  verdict: 'reached' | 'not reached' | 'not measured';
}

/** `value` (undefined: not measured) against `bound`: at least (>=) or at most (<=). */
export function targetMet(
  value: number | undefined,
  cmp: '>=' | '<=',
  bound: number,
  paired?: number[] | null,
): TargetMet {
  const ok = value === undefined ? undefined : cmp === '>=' ? value >= bound : value <= bound;
  return {
    value: value ?? null,
    ...(paired !== undefined && { paired }),
    target: `${cmp} ${bound}`,
    verdict: ok === undefined ? 'not measured' : ok ? 'reached' : 'not reached',
  };
}

/** A row of the printed targets table (verdict '' for a ratio with no target). */
export function targetRow(
  ratio: string,
  t: Pick<TargetMet, 'value' | 'paired' | 'target'> & { verdict: string },
): Record<string, string> {
  return {
    ratio,
    value: r2(t.value ?? undefined),
    'per round': t.paired?.map(r2).join(' / ') ?? '',
    target: t.target,
    verdict: t.verdict,
  };
}

/** Each target's entry in the results JSON: its medians and rounds, or why it has none. */
export function targetsJson(
  names: readonly string[],
  med: Record<string, Summary>,
  runs: Record<string, Run[]>,
  why: Record<string, string>,
  whyKey: 'reason' | 'failed' = 'reason',
) {
  return Object.fromEntries(
    names.map((name) => [
      name,
      med[name] === undefined
        ? { measured: false, [whyKey]: why[name] ?? 'not measured' }
        : { measured: true, median: med[name], rounds: runs[name] },
    ]),
  );
}

/** What a benchmark's body gets: its scratch folder, and where to leave what to stop. */
export interface Scratch {
  dir: string;
  /** Called in reverse order at the end (the backend, pushed first, stops last). */
  onEnd(stop: () => Promise<void>): void;
}

/**
 * Runs `body` with a fresh scratch folder; at its end, or on SIGINT/SIGTERM (Ctrl-C, a
 * busy machine), stops every process it registered (nginx, fedgate, the backend) and
 * removes the folder. Resolves with the exit code: `body`'s, or 1 if it threw.
 */
export async function withScratch(
  prefix: string,
  body: (s: Scratch) => Promise<number>,
): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
    await rm(dir, { recursive: true, force: true });
  };
  const interrupted = () => void stopAll().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    return await body({ dir, onEnd: (stop) => stops.push(stop) });
  } catch (e) {
    console.error(e);
    return 1;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await stopAll();
  }
}

/** Targets that could not be measured, each with why (its process did not start, its check failed). */
export function unmeasured<Name extends string>() {
  const why: Partial<Record<Name, string>> = {};
  return {
    why,
    mark(name: Name, e: unknown): void {
      why[name] = (e as Error).message;
      console.error(`${name}: FAILED, not measured: ${why[name]}`);
    },
    /** The benchmark's exit code: 1, saying which and why, when any was not measured. */
    exitCode(bench: string): number {
      const missing = Object.entries(why) as [string, string][];
      if (missing.length === 0) return 0;
      const list = missing.map(([n, w]) => `${n}: ${w.split('\n')[0]}`).join('; ');
      console.error(`\n${bench} bench FAILED, not measured: ${list}`);
      return 1;
    },
  };
}
