// Question: does fedgate's discovery path, run as `fedgate start` runs it (watchers,
// catalog, active health checks on for every service, the router), hold a federation
// of 200,000 endpoints, and how does the cost grow with the number of member
// clusters? Two shapes of the same 200,000 endpoints: 10 clusters × 2,000 services
// × 10 endpoints, and 50 × 400 × 10. Each runs in a process of its own
// (catalog-shape.ts, with its simulated clusters and backends in a child of that,
// catalog-sim.ts), one after the other; this file judges the figures against the
// targets and writes bench/results/catalog.json.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHAPES } from './catalog-fixture.ts';
import { printTable, writeResult } from './lib.ts';

const TARGET = {
  firstCompleteMs: 10_000,
  steadyRssBytes: 600 * 2 ** 20,
  steadyDescriptors: 2_000,
  applyFlushMs: 1,
  propagationP99Ms: 50,
};
/** One shape's whole run, seeding to teardown: a hang ends it as a failure. */
const SHAPE_TIMEOUT_MS = 15 * 60_000;

interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}
interface ShapeResult {
  shape: { name: string; clusters: number; services: number };
  endpoints: number;
  startup: { firstCompleteMs: number | null; allSyncedMs: number | null };
  memory: { steady: { rss: number; heapUsed: number }; steadyMaxRss: number };
  descriptors: { steady: number; steadyMax: number };
  checks: {
    targets: number;
    effectiveIntervalMs: number;
    probesPerSecond: number;
    reachedBackendPerSecond: number;
    maxInFlightSeen: number;
  };
  routing: { plannedServices: number; planAllMs: number };
  catalogApplyFlushMs: Summary;
  propagationMs: Summary & { missed: number; boundHit: boolean };
}

const dir = await mkdtemp(join(tmpdir(), 'fedgate-catalog-bench-'));
const results: ShapeResult[] = [];
const failures: string[] = [];
for (const shape of SHAPES) {
  console.log(
    `\n--- ${shape.name}: ${shape.clusters} clusters × ${shape.services} services × 10 endpoints`,
  );
  const out = join(dir, `${shape.name}.json`);
  const run = spawnSync(
    process.execPath,
    [new URL('./catalog-shape.ts', import.meta.url).pathname, shape.name, out],
    { stdio: 'inherit', timeout: SHAPE_TIMEOUT_MS, killSignal: 'SIGKILL' },
  );
  if (run.status !== 0) {
    failures.push(`${shape.name}: exited ${run.status ?? run.signal}`);
    continue;
  }
  results.push(JSON.parse(await readFile(out, 'utf8')) as ShapeResult);
}
await rm(dir, { recursive: true, force: true });

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const ms = (v: number | null | undefined) => (v == null ? 'n/a' : `${v.toFixed(3)} ms`);

/** One row per figure, a column per shape, and whether each shape met the target. */
function judged(r: ShapeResult) {
  return {
    firstComplete:
      r.startup.firstCompleteMs !== null && r.startup.firstCompleteMs < TARGET.firstCompleteMs,
    rss: r.memory.steady.rss < TARGET.steadyRssBytes,
    descriptors: r.descriptors.steady < TARGET.steadyDescriptors,
    applyFlushP50: r.catalogApplyFlushMs.p50 < TARGET.applyFlushMs,
    applyFlushP99: r.catalogApplyFlushMs.p99 < TARGET.applyFlushMs,
    propagationP99:
      r.propagationMs.missed === 0 &&
      !r.propagationMs.boundHit &&
      r.propagationMs.p99 < TARGET.propagationP99Ms,
  };
}
const verdicts = results.map(judged);
const cell = (value: string, ok?: boolean) =>
  ok === undefined ? value : `${value} ${ok ? 'pass' : 'NOT REACHED'}`;
const row = (figure: string, target: string, f: (r: ShapeResult, i: number) => string) => ({
  figure,
  target,
  ...Object.fromEntries(results.map((r, i) => [r.shape.name, f(r, i)])),
});
printTable('catalog: 200,000 endpoints, health checks on for every service', [
  row('first complete snapshot', '< 10 s', (r, i) =>
    cell(
      r.startup.firstCompleteMs === null
        ? 'none'
        : `${(r.startup.firstCompleteMs / 1000).toFixed(2)} s`,
      verdicts[i]!.firstComplete,
    ),
  ),
  row('fedgate RSS at the end of 45 s, checks running', '< 600 MiB', (r, i) =>
    cell(mib(r.memory.steady.rss), verdicts[i]!.rss),
  ),
  row('  … max in the window (the startup peak, not yet returned)', '', (r) =>
    mib(r.memory.steadyMaxRss),
  ),
  row('descriptors held, steady', '< 2,000', (r, i) =>
    cell(String(r.descriptors.steady), verdicts[i]!.descriptors),
  ),
  row('  … max during the window', '', (r) => String(r.descriptors.steadyMax)),
  row('one slice change, apply + flush, p50', '< 1 ms', (r, i) =>
    cell(ms(r.catalogApplyFlushMs.p50), verdicts[i]!.applyFlushP50),
  ),
  row('  … p99', '< 1 ms', (r, i) =>
    cell(ms(r.catalogApplyFlushMs.p99), verdicts[i]!.applyFlushP99),
  ),
  row('write → snapshot, p99', '< 50 ms', (r, i) =>
    cell(ms(r.propagationMs.p99), verdicts[i]!.propagationP99),
  ),
  row('  … p50', '', (r) => ms(r.propagationMs.p50)),
  row('probes per second', 'reported', (r) => r.checks.probesPerSecond.toFixed(0)),
  row('  … that reached a backend', '', (r) => r.checks.reachedBackendPerSecond.toFixed(0)),
  row(
    'effective check interval',
    'reported',
    (r) => `${(r.checks.effectiveIntervalMs / 1000).toFixed(0)} s`,
  ),
  row(
    '  … targets / most in flight',
    '',
    (r) => `${r.checks.targets} / ${r.checks.maxInFlightSeen}`,
  ),
  row(
    'one plan per service, all',
    '',
    (r) => `${r.routing.planAllMs.toFixed(0)} ms (${r.routing.plannedServices})`,
  ),
]);
for (const f of failures) console.log(`FAILED: ${f}`);

const path = await writeResult('catalog', {
  targets: TARGET,
  shapes: Object.fromEntries(
    results.map((r, i) => [r.shape.name, { ...r, verdicts: verdicts[i] }]),
  ),
  failures,
});
console.log(`\nwritten to ${path}`);
// A target not reached is a figure to report, not a failed run; a shape that did not finish is.
process.exit(failures.length === 0 ? 0 : 1);
