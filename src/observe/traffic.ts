// The last 15 minutes of traffic, in process and bounded: a ring of time slots (one
// per 10 s, 90 of them), each holding flows (client locality → serving cluster and
// zone, per service: what the status page draws as bands) and request, error and
// latency counts per service and per cluster (its sparklines). Slots are numbered by
// wall-clock time (floor(now / slotMs)), not by when a process started, so the rings
// of worker processes merge slot by slot into one picture. The clock is injected:
// tests replay exactly.

import type { Locality } from '../routing/types.ts';

/** Latency buckets, seconds (upper bounds; one more slot counts everything above). */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;

/** A client locality as the picture names it: `region/zone` (`/subzone`), `region`, or '' when unknown. */
export function localityLabel(l: Locality | undefined): string {
  if (!l) return '';
  // A locality is one of a few long-lived objects: its label is built once.
  let label = labels.get(l);
  if (label === undefined) {
    label =
      l.region || l.zone
        ? [l.region ?? '', l.zone, l.subzone].filter((x) => x !== undefined).join('/')
        : '';
    labels.set(l, label);
  }
  return label;
}
const labels = new WeakMap<Locality, string>();

export const SLOT_MS = 10_000;
export const SLOTS = 90;

/** Counts of one slot for one service or cluster. */
export interface RateCounts {
  requests: number;
  errors: number;
  /** Requests per latency bucket (not cumulative); DNS answers have none. */
  readonly latency: number[];
}

/** One band of the flow picture in one slot. */
export interface FlowCounts {
  readonly protocol: 'http' | 'dns';
  readonly service: string;
  /** The client's locality as fedgate classified it ('' when it could not). */
  readonly from: string;
  /** The serving cluster and zone; '' when nothing served (fedgate answered itself, or a DNS answer without records). */
  readonly cluster: string;
  readonly zone: string;
  /** Requests (HTTP) or answers (DNS); a DNS answer spread over several clusters counts in fractions. */
  count: number;
  failed: number;
}

export interface TrafficSlot {
  /** floor(time / slotMs). */
  readonly at: number;
  readonly flows: FlowCounts[];
  readonly services: Record<string, RateCounts>;
  readonly clusters: Record<string, RateCounts>;
}

/** A ring as plain data: what a worker hands the primary, and what merges. */
export interface TrafficJson {
  readonly slotMs: number;
  readonly slots: readonly TrafficSlot[];
}

export interface HttpSample {
  readonly service: string;
  readonly from: string;
  readonly cluster: string;
  readonly zone: string;
  readonly failed: boolean;
  readonly seconds: number;
}

/** Where a DNS answer's addresses are, one entry per address; empty: no records. */
export type DnsTargets = readonly { readonly cluster: string; readonly zone: string }[];

/** The counts of `name` in `rec`, made when new. */
function countsOf(rec: Record<string, RateCounts>, name: string): RateCounts {
  let c = rec[name];
  if (!c) {
    c = { requests: 0, errors: 0, latency: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0) };
    rec[name] = c;
  }
  return c;
}

interface LiveSlot extends TrafficSlot {
  /** Flows by their key, for counting in place. */
  /** Flows by protocol, service, locality, cluster and zone (nested: no key string to build per request). */
  readonly index: Map<string, Nested>;
}

type Nested = Map<string, unknown>;

function level(m: Nested, key: string): Nested {
  let next = m.get(key) as Nested | undefined;
  if (!next) {
    next = new Map();
    m.set(key, next);
  }
  return next;
}

/**
 * The slot's flow of this protocol, service, locality, cluster and zone, made when
 * new. Per request: Map lookups by the catalog's own strings (V8 keeps their hashes), nothing made.
 */
function flowIn(
  s: LiveSlot,
  protocol: FlowCounts['protocol'],
  service: string,
  from: string,
  cluster: string,
  zone: string,
): FlowCounts {
  const byZone = level(level(level(level(s.index, protocol), service), from), cluster);
  let c = byZone.get(zone) as FlowCounts | undefined;
  if (!c) {
    c = { protocol, service, from, cluster, zone, count: 0, failed: 0 };
    byZone.set(zone, c);
    s.flows.push(c);
  }
  return c;
}

function tally(c: RateCounts, failed: boolean, bucket: number): void {
  c.requests++;
  if (failed) c.errors++;
  c.latency[bucket]!++;
}

export class TrafficRing {
  readonly #now: () => number;
  readonly #slotMs: number;
  readonly #ring: (LiveSlot | undefined)[];

  constructor(opts: { now?: (() => number) | undefined; slotMs?: number; slots?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#slotMs = opts.slotMs ?? SLOT_MS;
    this.#ring = new Array<LiveSlot | undefined>(opts.slots ?? SLOTS).fill(undefined);
  }

  /** The slot of now, emptied when the ring has come round to it again. */
  #slot(): LiveSlot {
    const at = Math.floor(this.#now() / this.#slotMs);
    const i = at % this.#ring.length;
    let s = this.#ring[i];
    if (s?.at !== at) {
      s = { at, flows: [], index: new Map(), services: {}, clusters: {} };
      this.#ring[i] = s;
    }
    return s;
  }

  http(r: HttpSample): void {
    const s = this.#slot();
    const f = flowIn(s, 'http', r.service, r.from, r.cluster, r.zone);
    f.count++;
    if (r.failed) f.failed++;
    let b = 0;
    while (b < LATENCY_BUCKETS.length && r.seconds > LATENCY_BUCKETS[b]!) b++;
    tally(countsOf(s.services, r.service), r.failed, b);
    if (r.cluster) tally(countsOf(s.clusters, r.cluster), r.failed, b);
  }

  /** One DNS answer for `service` to a client in `from`, spread over its addresses' places. */
  dns(service: string, from: string, targets: DnsTargets): void {
    const s = this.#slot();
    const svc = countsOf(s.services, service);
    svc.requests++;
    if (targets.length === 0) {
      svc.errors++;
      const f = flowIn(s, 'dns', service, from, '', '');
      f.count++;
      f.failed++;
      return;
    }
    const share = 1 / targets.length;
    for (const t of targets) flowIn(s, 'dns', service, from, t.cluster, t.zone).count += share;
  }

  /** The slots of the last `slots.length × slotMs` (the current one too), oldest first, as plain data. */
  json(): TrafficJson {
    const now = Math.floor(this.#now() / this.#slotMs);
    const slots = this.#ring
      .filter(
        (s): s is LiveSlot => s !== undefined && s.at > now - this.#ring.length && s.at <= now,
      )
      .sort((a, b) => a.at - b.at)
      .map(({ at, flows, services, clusters }) => ({
        at,
        flows: flows.map((f) => ({ ...f })),
        services: structuredClone(services),
        clusters: structuredClone(clusters),
      }));
    return { slotMs: this.#slotMs, slots };
  }
}

const addCounts = (into: Record<string, RateCounts>, from: Record<string, RateCounts>) => {
  for (const [k, c] of Object.entries(from)) {
    const t = countsOf(into, k);
    t.requests += c.requests;
    t.errors += c.errors;
    c.latency.forEach((n, i) => {
      t.latency[i] = (t.latency[i] ?? 0) + n;
    });
  }
};

/** Rings of several processes (worker processes) summed slot by slot. */
export function mergeTraffic(parts: readonly TrafficJson[], slotMs = SLOT_MS): TrafficJson {
  const byAt = new Map<number, LiveSlot>();
  for (const p of parts) {
    for (const s of p.slots) {
      let m = byAt.get(s.at);
      if (!m) {
        m = { at: s.at, flows: [], index: new Map(), services: {}, clusters: {} };
        byAt.set(s.at, m);
      }
      for (const f of s.flows) {
        const c = flowIn(m, f.protocol, f.service, f.from, f.cluster, f.zone);
        c.count += f.count;
        c.failed += f.failed;
      }
      addCounts(m.services, s.services);
      addCounts(m.clusters, s.clusters);
    }
  }
  const slots = [...byAt.values()]
    .sort((a, b) => a.at - b.at)
    .map(({ at, flows, services, clusters }) => ({ at, flows, services, clusters }));
  return { slotMs: parts[0]?.slotMs ?? slotMs, slots };
}
