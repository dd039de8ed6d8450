// /debug/traffic: the ring (one process's, or the workers' merged) as the status page
// draws it. Per service the flows of the last minute (client locality → serving
// cluster and zone, with the failed count), and per service and per cluster a point
// per slot of the last 15 minutes: request rate, error rate and p99 latency.
import { LATENCY_BUCKETS, type RateCounts, type TrafficJson } from './traffic.ts';

/** The flow picture's window: the last minute. */
export const FLOW_WINDOW_MS = 60_000;

export interface TrafficPoint {
  /** Requests (or DNS answers) per second over the slot. */
  readonly rate: number;
  /** Failed share of them; null with none. */
  readonly errorRate: number | null;
  /** 99th percentile latency, milliseconds (a bucket's upper bound); null without proxied requests. */
  readonly p99Ms: number | null;
}

export interface FlowJson {
  readonly protocol: 'http' | 'dns';
  readonly from: string;
  readonly cluster: string;
  readonly zone: string;
  readonly count: number;
  readonly failed: number;
}

export interface TrafficView {
  readonly now: string;
  readonly slotSeconds: number;
  readonly windowSeconds: number;
  /** Per service: the last minute's flows, and its series (oldest point first, the last is the slot now filling). */
  readonly services: readonly {
    readonly service: string;
    readonly flows: readonly FlowJson[];
    readonly series: readonly TrafficPoint[];
  }[];
  readonly clusters: readonly {
    readonly cluster: string;
    readonly series: readonly TrafficPoint[];
  }[];
}

/** The 99th percentile of a bucketed count: the upper bound of the bucket it falls in, ms. */
export function p99Ms(latency: readonly number[]): number | null {
  const total = latency.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const want = total * 0.99;
  let acc = 0;
  for (let i = 0; i < latency.length; i++) {
    acc += latency[i] ?? 0;
    // Above the last bound: the last bound is all that can be said.
    if (acc >= want) return (LATENCY_BUCKETS[i] ?? LATENCY_BUCKETS.at(-1)!) * 1000;
  }
  return null;
}

const point = (c: RateCounts | undefined, slotSeconds: number): TrafficPoint => ({
  rate: c ? c.requests / slotSeconds : 0,
  errorRate: c && c.requests > 0 ? c.errors / c.requests : null,
  p99Ms: c ? p99Ms(c.latency) : null,
});

const round = (n: number) => Math.round(n * 1000) / 1000;

/** The view at `now` of a ring of `slots` slots. */
export function trafficView(t: TrafficJson, now: number, slots: number): TrafficView {
  const nowSlot = Math.floor(now / t.slotMs);
  const slotSeconds = t.slotMs / 1000;
  const first = nowSlot - slots + 1;
  const flowFrom = nowSlot - Math.ceil(FLOW_WINDOW_MS / t.slotMs) + 1;
  const byAt = new Map(t.slots.map((s) => [s.at, s]));
  const names = (pick: 'services' | 'clusters') =>
    [...new Set(t.slots.filter((s) => s.at >= first).flatMap((s) => Object.keys(s[pick])))].sort();
  const series = (pick: 'services' | 'clusters', name: string) => {
    const out: TrafficPoint[] = [];
    for (let at = first; at <= nowSlot; at++)
      out.push(point(byAt.get(at)?.[pick][name], slotSeconds));
    return out;
  };
  const flows = new Map<string, Map<string, { -readonly [K in keyof FlowJson]: FlowJson[K] }>>();
  for (const s of t.slots) {
    if (s.at < flowFrom || s.at > nowSlot) continue;
    for (const f of s.flows) {
      const own = flows.get(f.service) ?? new Map();
      flows.set(f.service, own);
      const key = `${f.protocol}\n${f.from}\n${f.cluster}\n${f.zone}`;
      const c = own.get(key) ?? {
        protocol: f.protocol,
        from: f.from,
        cluster: f.cluster,
        zone: f.zone,
        count: 0,
        failed: 0,
      };
      c.count += f.count;
      c.failed += f.failed;
      own.set(key, c);
    }
  }
  return {
    now: new Date(now).toISOString(),
    slotSeconds,
    windowSeconds: FLOW_WINDOW_MS / 1000,
    services: names('services').map((service) => ({
      service,
      flows: [...(flows.get(service)?.values() ?? [])]
        .map((f) => ({ ...f, count: round(f.count), failed: round(f.failed) }))
        .sort(
          (a, b) =>
            a.from.localeCompare(b.from) ||
            a.cluster.localeCompare(b.cluster) ||
            a.zone.localeCompare(b.zone),
        ),
      series: series('services', service),
    })),
    clusters: names('clusters').map((cluster) => ({
      cluster,
      series: series('clusters', cluster),
    })),
  };
}
