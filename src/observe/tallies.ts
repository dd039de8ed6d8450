// Series counted once per proxied request, without prom-client's per-call work: its
// inc() and observe() build a key string from the labels, check every label name and,
// for a histogram, make a closure, on every call, which was most of what metrics cost
// a request. Here a series is found through one Map per label (the label values are
// the catalog's own strings, whose hashes V8 keeps) and counted in place; at scrape
// time the series are handed out in the shape prom-client's Counter and Histogram
// give (get() for JSON and the workers' merge, getForPromString() for the text), so
// the exposition is the same, line for line.
import type { Metric, Registry } from 'prom-client';

type Labels<L extends string> = Readonly<Record<L, string>>;

/** Series by their label values (in labelNames order), one Map level per label. */
class SeriesTable<L extends string, S> {
  readonly #names: readonly L[];
  readonly #make: (labels: Labels<L>) => S;
  readonly #root = new Map<string, unknown>();
  /** Every series, in the order first counted (prom-client's order too). */
  readonly all: S[] = [];

  constructor(names: readonly L[], make: (labels: Labels<L>) => S) {
    if (names.length < 1 || names.length > 6) throw new Error('1 to 6 labels');
    this.#names = names;
    this.#make = make;
  }

  at(v0: string, v1 = '', v2 = '', v3 = '', v4 = '', v5 = ''): S {
    const depth = this.#names.length;
    let level = this.#root;
    for (let i = 0; i < depth - 1; i++) {
      const v = i === 0 ? v0 : i === 1 ? v1 : i === 2 ? v2 : i === 3 ? v3 : v4;
      let next = level.get(v) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(v, next);
      }
      level = next;
    }
    const last =
      depth === 1
        ? v0
        : depth === 2
          ? v1
          : depth === 3
            ? v2
            : depth === 4
              ? v3
              : depth === 5
                ? v4
                : v5;
    let s = level.get(last) as S | undefined;
    if (s === undefined) {
      const values = [v0, v1, v2, v3, v4, v5];
      const labels = {} as Record<L, string>;
      this.#names.forEach((name, i) => {
        labels[name] = values[i]!;
      });
      s = this.#make(labels);
      level.set(last, s);
      this.all.push(s);
    }
    return s;
  }
}

/** What prom-client's metrics give the registry. */
interface MetricData<V> {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: V[];
}

interface Config<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
}

export interface CounterSeries {
  readonly labels: Readonly<Record<string, string>>;
  value: number;
}

/** A counter whose series are counted in place: `at(...).value++`. */
export class TalliedCounter<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #series: SeriesTable<L, CounterSeries>;

  constructor(config: Config<L>) {
    this.name = config.name;
    this.help = config.help;
    this.#series = new SeriesTable(config.labelNames, (labels) => ({ labels, value: 0 }));
    // prom-client's Registry takes anything with its Metric's shape; its types list classes.
    for (const r of config.registers) r.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values, in labelNames order. */
  at(v0: string, v1?: string, v2?: string, v3?: string, v4?: string, v5?: string): CounterSeries {
    return this.#series.at(v0, v1, v2, v3, v4, v5);
  }

  get(): Promise<MetricData<{ value: number; labels: Record<string, string> }>> {
    return Promise.resolve({
      help: this.help,
      name: this.name,
      type: this.type,
      values: this.#series.all.map((s) => ({ value: s.value, labels: { ...s.labels } })),
      aggregator: this.aggregator,
    });
  }
}

export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket (not cumulative); the last is above every bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

interface HistogramValue {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  exemplar?: null;
}

/** A histogram whose series are counted in place: `observe(at(...), seconds)`. */
export class TalliedHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #series: SeriesTable<L, HistogramSeries>;

  constructor(config: Config<L> & { readonly buckets: readonly number[] }) {
    this.name = config.name;
    this.help = config.help;
    this.#bounds = config.buckets;
    const n = config.buckets.length + 1;
    this.#series = new SeriesTable(config.labelNames, (labels) => ({
      labels,
      counts: new Array<number>(n).fill(0),
      sum: 0,
      count: 0,
    }));
    for (const r of config.registers) r.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values, in labelNames order. */
  at(v0: string, v1?: string, v2?: string, v3?: string): HistogramSeries {
    return this.#series.at(v0, v1, v2, v3);
  }

  observe(s: HistogramSeries, value: number): void {
    // As prom-client: a value that is not a number is a bug of the caller's.
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** prom-client's Histogram.get(): the series' labels spread into each value's. */
  async get(): Promise<MetricData<HistogramValue>> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({
      ...rest,
      labels: { ...labels, ...sharedLabels },
    }));
    return data;
  }

  /** prom-client's Histogram.getForPromString(): `le` first, then the series' labels. */
  getForPromString(): Promise<MetricData<HistogramValue>> {
    const bucket = `${this.name}_bucket`;
    const values: HistogramValue[] = [];
    for (const s of this.#series.all) {
      const shared = { ...s.labels };
      let acc = 0;
      this.#bounds.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({
          labels: { le },
          sharedLabels: shared,
          value: acc,
          metricName: bucket,
          exemplar: null,
        });
      });
      values.push(
        {
          labels: { le: '+Inf' },
          sharedLabels: shared,
          value: s.count,
          metricName: bucket,
          exemplar: null,
        },
        { labels: {}, sharedLabels: shared, value: s.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: shared, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    });
  }
}
