// Question: how many picks per second does one core make with each picker
// (src/routing/pickers.ts), over plans of 100 and 10,000 endpoints, in one tier and
// in three? Target: at least 5 million p2c picks per second.
// Measured, each as its own function below:
//   1. picks per second, per picker × plan size × tier count: warm-up rounds, then
//      timed rounds of PICKS_PER_ROUND picks, median reported. p2c reads outstanding
//      counts from a Map by target id, as the proxy would; maglev cycles through
//      precomputed key hashes (hashing the key is measured apart, in 2).
//   2. hashKey on client addresses, per second: what maglev callers pay per request.
//   3. the first pick on a fresh plan, which builds what the picker derives from it
//      (alias tables, Maglev tables): paid once per plan.
//   4. rebuilding the plan of a service with 1,000 endpoints over 10 clusters (5 zones
//      in 2 regions) through the Router, as a health change forces it: all passing,
//      and with 10 % failing their checks. Target: under 100 µs.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { HealthStore } from '../src/health/store.ts';
import { createPicker, hashKey, type PickerKind } from '../src/routing/pickers.ts';
import { seededRandom } from '../src/routing/random.ts';
import { Router } from '../src/routing/router.ts';
import type { Plan, Tier } from '../src/routing/types.ts';
import { plan, targets, tier } from '../test/fixtures/plans.ts';
import { endpoints as endpointSpecs, service } from '../test/fixtures/services.ts';
import { median, printTable, writeResult } from './lib.ts';

const SIZES = [100, 10_000];
const TIER_COUNTS = [1, 3];
const KINDS: PickerKind[] = ['p2c', 'maglev', 'random', 'round-robin'];
const WARMUP_ROUNDS = 3;
const ROUNDS = 7;
const PICKS_PER_ROUND = 1_000_000;
const KEYS = 65_536; // a power of two: the key cursor wraps with a mask
const FIRST_PICK_PLANS = 5;
const TARGET_P2C_PICKS_PER_SECOND = 5_000_000;
const REBUILD_CLUSTERS = 10;
const REBUILD_PER_CLUSTER = 100;
const REBUILDS_PER_ROUND = 2_000;
const TARGET_REBUILD_US = 100;

/**
 * `endpoints` split over `tierCount` tiers (half, then a third of the rest, …) with
 * loads 0.6 / 0.3 / 0.1; in each tier two clusters of weights 1 and 2, so the
 * weighted paths run, not the equal-weight shortcuts.
 */
function benchPlan(endpoints: number, tierCount: number, salt = ''): Plan {
  const loads = tierCount === 1 ? [1] : [0.6, 0.3, 0.1];
  const sizes = tierCount === 1 ? [endpoints] : [0.5, 0.3, 0.2].map((f) => endpoints * f);
  let next = 0;
  const tiers: Tier[] = sizes.map((size, p) => {
    const half = size >> 1;
    const specs = [
      ...targets(half, `c${2 * p}${salt}`, 1, next),
      ...targets(size - half, `c${2 * p + 1}${salt}`, 2, next + half),
    ];
    next += size;
    return tier(p, loads[p]!, specs);
  });
  return plan(tiers);
}

/** Outstanding requests per target id, 0..7, as a proxy's in-flight counter map would hold. */
function outstandingMap(p: Plan): Map<string, number> {
  const random = seededRandom(9);
  const map = new Map<string, number>();
  for (const t of p.tiers) for (const x of t.targets) map.set(x.id, Math.floor(random() * 8));
  return map;
}

/** 1. Median picks per second of one picker over one plan. */
function measurePicks(kind: PickerKind, p: Plan): { median: number; rounds: number[] } {
  const picker = createPicker(kind, { random: seededRandom(42) });
  const inFlight = outstandingMap(p);
  const outstanding = (id: string) => inFlight.get(id) ?? 0;
  const keyRandom = seededRandom(7);
  const hashes = Uint32Array.from({ length: KEYS }, () => Math.floor(keyRandom() * 2 ** 32));
  const ctx = { hash: 0, outstanding };
  let sink = 0;
  const round = (): number => {
    const t0 = performance.now();
    for (let i = 0; i < PICKS_PER_ROUND; i++) {
      ctx.hash = hashes[i & (KEYS - 1)]!;
      sink += picker.pick(p, ctx)!.weight;
    }
    return PICKS_PER_ROUND / ((performance.now() - t0) / 1000);
  };
  for (let r = 0; r < WARMUP_ROUNDS; r++) round();
  const rounds = Array.from({ length: ROUNDS }, round);
  if (sink === 0) throw new Error('no picks');
  return { median: median(rounds), rounds };
}

/** 2. hashKey over client addresses (IPv4 strings), per second. */
function measureHashKey(): number {
  const addresses = Array.from({ length: KEYS }, (_, i) => `127.168.${i >> 8}.${i & 255}`);
  let sink = 0;
  const round = (): number => {
    const t0 = performance.now();
    for (let i = 0; i < PICKS_PER_ROUND; i++) sink ^= hashKey(addresses[i & (KEYS - 1)]!);
    return PICKS_PER_ROUND / ((performance.now() - t0) / 1000);
  };
  for (let r = 0; r < WARMUP_ROUNDS; r++) round();
  const rate = median(Array.from({ length: ROUNDS }, round));
  if (sink === 0.5) throw new Error('unreachable');
  return rate;
}

/**
 * 3. Median time of the first pick on a fresh plan (its tables get built), in ms.
 * `sameTargets`: each plan is new but holds the targets of the one before, as after a
 * health change elsewhere in the service (Maglev tables come back from its cache).
 */
function measureFirstPick(
  kind: PickerKind,
  endpoints: number,
  tierCount: number,
  sameTargets: boolean,
): number {
  const times: number[] = [];
  for (let n = 0; n < FIRST_PICK_PLANS; n++) {
    const p = benchPlan(endpoints, tierCount, sameTargets ? '' : `-${kind}-${endpoints}-${n}`);
    const picker = createPicker(kind, { random: seededRandom(n) });
    const t0 = performance.now();
    // Every tier gets its tables: a few picks with keys spread over the tiers.
    for (let i = 0; i < 64; i++) picker.pick(p, { hash: hashKey(`k${i}`), outstanding: () => 0 });
    times.push(performance.now() - t0);
  }
  return median(times);
}

/**
 * 4. Median µs to rebuild one plan: each iteration bumps the service's health version
 * (one endpoint's check flips) and asks the Router for the plan, which rebuilds it.
 */
function measureRebuild(failingFraction: number): { median: number; rounds: number[] } {
  const zones = [
    ['us-east', 'us-east-a'],
    ['us-east', 'us-east-b'],
    ['us-east', 'us-east-c'],
    ['eu-west', 'eu-west-a'],
    ['eu-west', 'eu-west-b'],
  ] as const;
  const svc = service(
    Array.from({ length: REBUILD_CLUSTERS }, (_, c) => ({
      cluster: `c${c}`,
      weight: 1 + (c % 3),
      endpoints: endpointSpecs(c, REBUILD_PER_CLUSTER, {
        region: zones[c % zones.length]![0],
        zone: zones[c % zones.length]![1],
      }),
    })),
  );
  const store = new HealthStore();
  const ids = svc.clusters.flatMap((m) => m.endpoints.map((e) => `${m.cluster}/${e.addresses[0]}`));
  ids.forEach((id, i) => {
    const failing = i % Math.round(1 / failingFraction) === 0 && failingFraction > 0;
    store.setCheck(
      svc.key,
      id,
      failing ? 'unhealthy' : 'healthy',
      failing ? 'HTTP 503' : undefined,
    );
  });
  const router = new Router(
    {
      overprovisioning: 1.4,
      panicThreshold: 0.5,
      failoverOrder: {},
      localities: [],
      self: undefined,
    },
    store,
  );
  const client = { region: 'us-east', zone: 'us-east-a' };
  // Flipping the detail text of an endpoint already failing (or passing) bumps the
  // version without changing which endpoints are eligible: every round builds the same plan.
  const flip = ids[1]!;
  let sink = 0;
  const round = (): number => {
    const t0 = performance.now();
    for (let i = 0; i < REBUILDS_PER_ROUND; i++) {
      store.setCheck(svc.key, flip, 'healthy', i & 1 ? 'a' : 'b');
      sink += router.plan(svc, client).tiers.length;
    }
    return ((performance.now() - t0) * 1000) / REBUILDS_PER_ROUND;
  };
  for (let r = 0; r < WARMUP_ROUNDS; r++) round();
  const rounds = Array.from({ length: ROUNDS }, round);
  if (sink === 0 || router.builds < REBUILDS_PER_ROUND * (ROUNDS + WARMUP_ROUNDS)) {
    throw new Error('plans were not rebuilt');
  }
  return { median: median(rounds), rounds };
}

// ---- run ------------------------------------------------------------------------

const pickRows = [];
for (const endpoints of SIZES) {
  for (const tierCount of TIER_COUNTS) {
    const p = benchPlan(endpoints, tierCount);
    for (const kind of KINDS) {
      const r = measurePicks(kind, p);
      pickRows.push({ picker: kind, endpoints, tiers: tierCount, ...r });
    }
  }
}
const hashKeyPerSecond = measureHashKey();
const firstPick = SIZES.flatMap((endpoints) =>
  (['p2c', 'maglev'] as const).flatMap((kind) =>
    [false, true].map((sameTargets) => ({
      picker: kind,
      endpoints,
      tiers: 3,
      sameTargets,
      ms: measureFirstPick(kind, endpoints, 3, sameTargets),
    })),
  ),
);
const rebuilds = [0, 0.1].map((failing) => ({ failing, ...measureRebuild(failing) }));

// ---- report -----------------------------------------------------------------------

const p2cMin = Math.min(...pickRows.filter((r) => r.picker === 'p2c').map((r) => r.median));
const p2cPass = p2cMin >= TARGET_P2C_PICKS_PER_SECOND;
const millions = (v: number) => `${(v / 1e6).toFixed(2)} M/s`;

printTable(
  `routing: picks per second, one core (median of ${ROUNDS} rounds × ${PICKS_PER_ROUND.toLocaleString('en')} picks)`,
  pickRows.map((r) => ({
    picker: r.picker,
    endpoints: r.endpoints,
    tiers: r.tiers,
    'picks/s': millions(r.median),
    'ns/pick': (1e9 / r.median).toFixed(1),
    'min..max round': `${millions(Math.min(...r.rounds))} .. ${millions(Math.max(...r.rounds))}`,
    target: r.picker === 'p2c' ? '>= 5 M/s' : '',
    result: r.picker === 'p2c' ? (r.median >= TARGET_P2C_PICKS_PER_SECOND ? 'pass' : 'FAIL') : '',
  })),
);
printTable('routing: other costs', [
  { figure: 'hashKey(client address)', value: millions(hashKeyPerSecond) },
  ...firstPick.map((f) => ({
    figure: `first pick on a ${f.sameTargets ? 'rebuilt plan, same targets' : 'plan with new targets'}: ${f.picker}, ${f.endpoints} endpoints, ${f.tiers} tiers`,
    value: `${f.ms.toFixed(2)} ms`,
  })),
]);
printTable(
  `routing: plan rebuild, ${REBUILD_CLUSTERS * REBUILD_PER_CLUSTER} endpoints over ${REBUILD_CLUSTERS} clusters (median of ${ROUNDS} rounds × ${REBUILDS_PER_ROUND})`,
  rebuilds.map((r) => ({
    'failing checks': `${r.failing * 100} %`,
    'µs/rebuild': r.median.toFixed(1),
    'min..max round': `${Math.min(...r.rounds).toFixed(1)} .. ${Math.max(...r.rounds).toFixed(1)}`,
    target: `< ${TARGET_REBUILD_US} µs`,
    result: r.median < TARGET_REBUILD_US ? 'pass' : 'FAIL',
  })),
);
console.log(`
How measured: one process, one thread. Plans from test/fixtures/plans.ts: one tier, or three
with loads 0.6/0.3/0.1 over 50/30/20 % of the endpoints; two clusters of weights 1 and 2 per
tier. Each picker is warmed up for ${WARMUP_ROUNDS} rounds on its plan first. p2c reads a
Map<id, 0..7> of outstanding requests; maglev takes precomputed 32-bit key hashes.`);

const path = await writeResult('routing', {
  config: {
    sizes: SIZES,
    tierCounts: TIER_COUNTS,
    warmupRounds: WARMUP_ROUNDS,
    rounds: ROUNDS,
    picksPerRound: PICKS_PER_ROUND,
  },
  picksPerSecond: pickRows,
  hashKeyPerSecond,
  firstPickMs: firstPick,
  planRebuildMicros: rebuilds,
  targets: {
    p2cPicksPerSecond: { target: TARGET_P2C_PICKS_PER_SECOND, min: p2cMin, pass: p2cPass },
    planRebuildMicros: {
      target: TARGET_REBUILD_US,
      worst: Math.max(...rebuilds.map((r) => r.median)),
      pass: rebuilds.every((r) => r.median < TARGET_REBUILD_US),
    },
  },
});
console.log(`results: ${path}`);
