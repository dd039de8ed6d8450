// Question: what do Gateway API routes cost fedgate at 1,000 HTTPRoutes × 10 rules
// (bench/route-set.ts: ~100 hostnames and wildcards, Exact / PathPrefix /
// RegularExpression paths, header, query and method matches; seeded)?
//   1. compile: compileGateways over the whole set (without a cache: the first
//      compilation, or one after a Gateway, grant, namespace or services change).
//   2. rebuild after one route changes (a path of one rule, generation + 1): compile
//      with the cache GatewayFeed keeps, then GatewayRoutes.set on the tables, what
//      ProxyServer.setRoutes runs. Target: under 10 ms. Also the feed's check that
//      the tables changed, between the two, and the three together; and what a
//      worker process (--workers N) does with them: the routes delta (hosts it holds
//      go by name) across a V8 clone, applied, GatewayRoutes.set.
//   3. match: GatewayRoutes.match per request over a seeded mix (route set's
//      requestMix: aimed at routes' rules, some missing, 10 % for hosts no route
//      names): p50, p99, mean in µs, each request timed alone.
// One process, one thread; warm-up rounds first, medians reported.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { loadavg } from 'node:os';
import { deserialize, serialize } from 'node:v8';
import { compileGateways, newCompileCache } from '../src/gateway/compile.ts';
import { sameTables } from '../src/gateway/tables.ts';
import { GatewayRoutes } from '../src/proxy/gateway.ts';
import { applyRoutesDelta, routesDelta } from '../src/workers/routes-delta.ts';
import { median, printTable, summarize, writeResult } from './lib.ts';
import {
  BENCH_LISTENER,
  editedRoute,
  ROUTE_SET,
  requestMix,
  routeSetInput,
  routeSetObjects,
  routeSetRecords,
} from './route-set.ts';

const WARMUP_ROUNDS = 3;
const COMPILE_ROUNDS = 15;
const REBUILD_ROUNDS = 25;
const REQUESTS = 20_000;
const MATCH_ROUNDS = 5;
const TARGET_REBUILD_MS = 10;

const loadBefore = loadavg()[0] ?? Number.NaN;
const objects = routeSetObjects(ROUTE_SET);
const records = routeSetRecords(objects);
const input = routeSetInput(records);

/** 1. Median ms of a full compile. */
function measureCompile(): number[] {
  const round = () => {
    const t0 = performance.now();
    const c = compileGateways(input);
    const ms = performance.now() - t0;
    if (c.tables.listeners.length !== 1) throw new Error('the route set compiled to no table');
    return ms;
  };
  for (let i = 0; i < WARMUP_ROUNDS; i++) round();
  return Array.from({ length: COMPILE_ROUNDS }, round);
}

/**
 * 2. ms of compile + GatewayRoutes.set after one route changed, per round, and of each
 * part: the compile keeps a cache from one round to the next and the edits stay (as
 * GatewayFeed compiles what the watch store hands it), and the feed's check that the
 * tables changed (sameTables) runs between the two.
 */
function measureRebuild(routes: GatewayRoutes) {
  const parts = {
    compile: [] as number[],
    check: [] as number[],
    set: [] as number[],
    worker: [] as number[],
  };
  // A worker's copy (--workers N): the tables as routesDelta sends them, across a V8 clone.
  const workerRoutes = new GatewayRoutes();
  const feed: number[] = [];
  const cache = newCompileCache();
  let current = records.httpRoutes;
  let before = compileGateways(input, cache).tables;
  routes.set(before);
  let held = applyRoutesDelta(undefined, deserialize(serialize(routesDelta(undefined, before))));
  if (held) workerRoutes.set(held);
  const round = (n: number) => {
    const changed = editedRoute(objects, n * 37, n + 1);
    current = current.map((r) => (r.name === changed.name ? changed : r));
    const t0 = performance.now();
    const c = compileGateways({ ...input, objects: { ...records, httpRoutes: current } }, cache);
    const t1 = performance.now();
    const same = sameTables(c.tables, before);
    const t2 = performance.now();
    routes.set(c.tables);
    const t3 = performance.now();
    if (same) throw new Error('an edited route left the tables as they were');
    const t4 = performance.now();
    held = applyRoutesDelta(held, deserialize(serialize(routesDelta(before, c.tables))));
    if (held === undefined) throw new Error('a worker could not apply the routes delta');
    workerRoutes.set(held);
    parts.worker.push(performance.now() - t4);
    before = c.tables;
    parts.compile.push(t1 - t0);
    parts.check.push(t2 - t1);
    parts.set.push(t3 - t2);
    feed.push(t3 - t0);
    return t1 - t0 + (t3 - t2);
  };
  for (let i = 0; i < WARMUP_ROUNDS; i++) round(1000 + i);
  for (const list of [...Object.values(parts), feed]) list.length = 0;
  const total = Array.from({ length: REBUILD_ROUNDS }, (_, n) => round(n));
  return { total, ...parts, feed };
}

/** 3. Per-request µs of GatewayRoutes.match, every request timed alone; and how many matched. */
function measureMatch(routes: GatewayRoutes) {
  const requests = requestMix(objects, REQUESTS, 7);
  let matched = 0;
  const run = (samples: number[] | undefined) => {
    matched = 0;
    for (const req of requests) {
      const t0 = performance.now();
      const m = routes.match(BENCH_LISTENER, req);
      const us = (performance.now() - t0) * 1000;
      samples?.push(us);
      if (m) matched++;
    }
  };
  for (let i = 0; i < WARMUP_ROUNDS; i++) run(undefined);
  const rounds = Array.from({ length: MATCH_ROUNDS }, () => {
    const samples: number[] = [];
    run(samples);
    const s = summarize(samples);
    return { p50: s.p50, p99: s.p99, mean: samples.reduce((a, b) => a + b, 0) / samples.length };
  });
  return { rounds, matched, requests: requests.length };
}

// ---- run ------------------------------------------------------------------------

const routes = new GatewayRoutes();
const compileMs = measureCompile();
const tables = compileGateways(input).tables;
/** GatewayRoutes.set of a whole table into an empty one: what the first table costs. */
const firstSet = (() => {
  const times = Array.from({ length: WARMUP_ROUNDS + COMPILE_ROUNDS }, () => {
    const t0 = performance.now();
    new GatewayRoutes().set(tables);
    return performance.now() - t0;
  });
  return times.slice(WARMUP_ROUNDS);
})();
routes.set(tables);
const rebuild = measureRebuild(routes);
const rebuildMs = rebuild.total;
routes.set(tables);
const match = measureMatch(routes);

// ---- report -----------------------------------------------------------------------

const table = tables.listeners[0];
const rules = table?.hosts.reduce((n, h) => n + h.rules.length, 0) ?? 0;
const rebuildMedian = median(rebuildMs);
const reached = rebuildMedian < TARGET_REBUILD_MS;
const ms = (v: number) => `${v.toFixed(2)} ms`;
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(2)} .. ${Math.max(...xs).toFixed(2)}`;
const matchMedian = {
  p50: median(match.rounds.map((r) => r.p50)),
  p99: median(match.rounds.map((r) => r.p99)),
  mean: median(match.rounds.map((r) => r.mean)),
};

/** A row of the timings table: median and spread of `xs`. */
const row = (figure: string, xs: number[], target = '', result = '') => ({
  figure,
  median: ms(median(xs)),
  'min..max': spread(xs),
  target,
  result,
});

printTable(
  `routes: ${ROUTE_SET.routes} HTTPRoutes × ${ROUTE_SET.rulesPerRoute} rules over ${table?.hosts.length ?? 0} hostnames (${rules} rules in the table: a route's rules under each of its hostnames)`,
  [
    row('compile (full)', compileMs),
    row('GatewayRoutes.set, first table', firstSet),
    row('compile after one route change (cache kept)', rebuild.compile),
    row('GatewayRoutes.set after one route change', rebuild.set),
    row(
      'rebuild after one route change (compile + set)',
      rebuildMs,
      `< ${TARGET_REBUILD_MS} ms`,
      reached ? 'reached' : 'not reached',
    ),
    row("GatewayFeed's tables-changed check (sameTables)", rebuild.check),
    row('rebuild as GatewayFeed runs it (compile + check + set)', rebuild.feed),
    row("a worker's copy: routes delta across a V8 clone, applied, set", rebuild.worker),
  ],
);
printTable(
  `routes: GatewayRoutes.match, ${match.requests.toLocaleString('en')} requests (${match.matched} matched a rule), median of ${MATCH_ROUNDS} rounds`,
  [
    {
      p50: `${matchMedian.p50.toFixed(2)} µs`,
      p99: `${matchMedian.p99.toFixed(2)} µs`,
      mean: `${matchMedian.mean.toFixed(2)} µs`,
      'p99 per round': match.rounds.map((r) => r.p99.toFixed(2)).join(' / '),
    },
  ],
);
console.log(`
How measured: one process, one thread, load average ${loadBefore.toFixed(2)} before. Warm-up: ${WARMUP_ROUNDS} rounds of each.
compile: ${COMPILE_ROUNDS} rounds. rebuild: ${REBUILD_ROUNDS} rounds, each with another route edited (the records of the
others unchanged, as the watchers keep them; earlier edits stay), compiled with the cache GatewayFeed keeps. match: every request timed alone with performance.now().`);

const path = await writeResult('routes', {
  config: {
    ...ROUTE_SET,
    warmupRounds: WARMUP_ROUNDS,
    compileRounds: COMPILE_ROUNDS,
    rebuildRounds: REBUILD_ROUNDS,
    requests: REQUESTS,
    matchRounds: MATCH_ROUNDS,
  },
  table: { hostnames: table?.hosts.length ?? 0, rules },
  compileMs: { median: median(compileMs), rounds: compileMs },
  firstSetMs: { median: median(firstSet), rounds: firstSet },
  rebuildCompileMs: { median: median(rebuild.compile), rounds: rebuild.compile },
  rebuildSetMs: { median: median(rebuild.set), rounds: rebuild.set },
  rebuildCheckMs: { median: median(rebuild.check), rounds: rebuild.check },
  rebuildFeedMs: { median: median(rebuild.feed), rounds: rebuild.feed },
  rebuildWorkerMs: { median: median(rebuild.worker), rounds: rebuild.worker },
  rebuildMs: { median: rebuildMedian, rounds: rebuildMs },
  matchUs: {
    ...matchMedian,
    rounds: match.rounds,
    matched: match.matched,
    requests: match.requests,
  },
  targets: { rebuildMs: { target: TARGET_REBUILD_MS, value: rebuildMedian, reached } },
  loadAverage: { before: loadBefore, after: loadavg()[0] },
});
console.log(`results: ${path}`);
