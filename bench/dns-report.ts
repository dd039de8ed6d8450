// The DNS benchmark's report: the tables it prints and the figures it writes to
// bench/results/dns.json, from the rounds bench/dns.bench.ts measured.
import type { LatencyRun, RateRun } from './dns-load.ts';
import type { MixCheck } from './dns-mix.ts';
import { median, printTable } from './lib.ts';

export const FEDGATES = ['fedgate-w1', 'fedgate-w2', 'fedgate-inproc'] as const;
/** What fedgate is held to: two authoritative servers and the bare Node floor. */
export const ANCHORS = ['knot', 'coredns', 'floor'] as const;
export type FedgateName = (typeof FEDGATES)[number];
export type AnchorName = (typeof ANCHORS)[number];
export type TargetName = FedgateName | AnchorName;
export const TARGETS: readonly TargetName[] = [...FEDGATES, ...ANCHORS];

export interface Settings {
  clients: number;
  outstanding: number;
  rateSeconds: number;
  rateRounds: number;
  latencyQps: number;
  latencySeconds: number;
  latencyRounds: number;
  targetRatio: number;
  targetP50Us: number;
}

export interface Measured {
  rates: Record<TargetName, RateRun[]>;
  latencies: Record<TargetName, LatencyRun[]>;
  /** For each anchor that answers from zone files or a cache, how it answered the mix. */
  mix: Record<AnchorName, MixCheck[]>;
  /** fedgate --workers 2: queries answered by each worker. */
  answeredByWorker: number[];
  loadAverage: { before: number; after: number };
}

const kq = (v: number) => `${(v / 1000).toFixed(1)} k`;
const pct = (v: number) => `${(v * 100).toFixed(0)} %`;

/** Prints the tables and returns the figures for the JSON result. */
export function report(s: Settings, m: Measured) {
  const qps = Object.fromEntries(
    TARGETS.map((n) => [n, median(m.rates[n].map((r) => r.qps))]),
  ) as Record<TargetName, number>;
  const ratio = (f: TargetName, a: AnchorName) => qps[f] / qps[a];
  // Each round against the anchor's round of the same pass: robust to the machine
  // drifting between rounds (it does, by up to a third, on shared 2-vCPU hosts).
  const paired = (f: TargetName, a: AnchorName) =>
    m.rates[f].map((r, i) => r.qps / (m.rates[a][i]?.qps ?? Number.NaN));
  const lat = (n: TargetName) => {
    const runs = m.latencies[n];
    const med = (f: (r: LatencyRun) => number) => median(runs.map(f));
    return {
      qps: med((r) => r.qps),
      p50Us: med((r) => r.p50Us),
      p90Us: med((r) => r.p90Us),
      p99Us: med((r) => r.p99Us),
      maxUs: Math.max(...runs.map((r) => r.maxUs)),
      timedOut: runs.reduce((a, r) => a + r.timedOut, 0),
      cpuShare: med((r) => r.cpuShare),
    };
  };
  const latency = Object.fromEntries(TARGETS.map((n) => [n, lat(n)])) as Record<
    TargetName,
    ReturnType<typeof lat>
  >;
  const isFedgate = (n: TargetName): n is FedgateName =>
    (FEDGATES as readonly string[]).includes(n);
  const pass = (n: FedgateName) => ({
    ratio: ratio(n, 'knot') >= s.targetRatio,
    p50: latency[n].p50Us < s.targetP50Us,
  });

  printTable(
    `dns: queries per second flat out (dnsperf -c ${s.clients} -T 1 -q ${s.outstanding}, ${s.rateSeconds} s, median of ${s.rateRounds} alternating rounds)`,
    TARGETS.map((n) => ({
      server: n,
      'q/s': kq(qps[n]),
      rounds: m.rates[n].map((r) => kq(r.qps)).join(' / '),
      'server cpu': pct(median(m.rates[n].map((r) => r.cpuShare))),
      lost: m.rates[n].reduce((a, r) => a + r.lost, 0),
      'vs knot': ratio(n, 'knot').toFixed(2),
      'vs coredns': ratio(n, 'coredns').toFixed(2),
      'vs floor': ratio(n, 'floor').toFixed(2),
      'per round vs knot': paired(n, 'knot')
        .map((x) => x.toFixed(2))
        .join(' / '),
      target: isFedgate(n) ? `>= ${s.targetRatio.toFixed(2)} x knot` : '',
      result: isFedgate(n) ? (pass(n).ratio ? 'pass' : 'FAIL') : '',
    })),
  );
  printTable(
    `dns: latency at ${kq(s.latencyQps)} q/s (dnsperf -Q ${s.latencyQps} -v, ${s.latencySeconds} s, median of ${s.latencyRounds} alternating rounds)`,
    TARGETS.map((n) => ({
      server: n,
      'q/s': kq(latency[n].qps),
      'p50 µs': latency[n].p50Us.toFixed(0),
      'p90 µs': latency[n].p90Us.toFixed(0),
      'p99 µs': latency[n].p99Us.toFixed(0),
      'max µs': latency[n].maxUs.toFixed(0),
      'timed out': latency[n].timedOut,
      'server cpu': pct(latency[n].cpuShare),
      target: isFedgate(n) ? `p50 < ${s.targetP50Us} µs` : '',
      result: isFedgate(n) ? (pass(n).p50 ? 'pass' : 'FAIL') : '',
    })),
  );
  const queries = m.mix.knot.length;
  const meanBytes = (checks: MixCheck[], k: 'fedgateBytes' | 'anchorBytes') =>
    (checks.reduce((a, c) => a + c[k], 0) / checks.length).toFixed(1);
  const sum = m.answeredByWorker.reduce((a, n) => a + n, 0);
  printTable('dns: the query mix, and who answered the runs', [
    { figure: 'queries in the mix', value: `${queries}` },
    {
      figure: 'response bytes, mean: fedgate / knot / coredns / floor',
      value: [
        meanBytes(m.mix.knot, 'fedgateBytes'),
        ...ANCHORS.map((a) => meanBytes(m.mix[a], 'anchorBytes')),
      ].join(' / '),
    },
    ...ANCHORS.map((a) => ({
      figure: `${a}: answers with the same records as fedgate / responses larger than fedgate's`,
      value: `${m.mix[a].filter((c) => c.sameRecords).length} / ${m.mix[a].filter((c) => c.anchorBytes > c.fedgateBytes).length} of ${queries}`,
    })),
    {
      figure: `fedgate --workers 2: queries answered by worker 0 / 1 (${s.clients} source ports)`,
      value: `${m.answeredByWorker.join(' / ')} (${m.answeredByWorker.map((n) => pct(n / sum)).join(' / ')})`,
    },
    {
      figure: 'absolute q/s: knot / coredns / floor',
      value: ANCHORS.map((a) => kq(qps[a])).join(' / '),
    },
    {
      figure: '1-minute load average before the run / after',
      value: `${m.loadAverage.before.toFixed(2)} / ${m.loadAverage.after.toFixed(2)}`,
    },
  ]);

  const byAnchor = <T>(f: (a: AnchorName) => T) =>
    Object.fromEntries(ANCHORS.map((a) => [a, f(a)])) as Record<AnchorName, T>;
  return {
    queries: m.mix.knot.map((k, i) => ({
      name: k.name,
      type: k.type,
      fedgateBytes: k.fedgateBytes,
      ...Object.fromEntries(ANCHORS.map((a) => [`${a}Bytes`, m.mix[a][i]?.anchorBytes])),
      sameRecords: byAnchor((a) => m.mix[a][i]?.sameRecords ?? false),
    })),
    queriesPerSecond: {
      ...qps,
      ratio: Object.fromEntries(TARGETS.map((n) => [n, byAnchor((a) => ratio(n, a))])),
      pairedRatios: Object.fromEntries(TARGETS.map((n) => [n, byAnchor((a) => paired(n, a))])),
      workers2OverWorkers1: qps['fedgate-w2'] / qps['fedgate-w1'],
      rounds: m.rates,
    },
    latency: { ...latency, rounds: m.latencies },
    answeredByWorker: { 'fedgate-w2': m.answeredByWorker },
    loadAverage: m.loadAverage,
    targets: Object.fromEntries(
      FEDGATES.map((n) => [
        n,
        {
          ratioToKnot: { target: s.targetRatio, value: ratio(n, 'knot'), pass: pass(n).ratio },
          p50MicrosAt20k: { target: s.targetP50Us, value: latency[n].p50Us, pass: pass(n).p50 },
        },
      ]),
    ),
  };
}
