// Registries' series merged across processes: the primary of worker processes
// (--workers ≥ 2) merges its own with every worker's at scrape time, and keeps what
// exited workers counted. prom-client's AggregatorRegistry.aggregate does the
// merging: counters and histograms summed, gauges as each says.

import { type Aggregator, AggregatorRegistry, type Registry } from 'prom-client';

/** A registry's series as getMetricsAsJSON gives them: what a worker sends the primary. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/**
 * How series that are not plain sums merge across processes (prom-client's default
 * metrics say 'omit' for the start time and nothing for the fd limit): the earliest
 * start (the primary's), and one process's limit.
 */
const MERGE_OVERRIDES: Readonly<Record<string, Aggregator>> = {
  process_start_time_seconds: 'min',
  process_max_fds: 'first',
};

/** Merges registries' JSON into one exposition, as AggregatorRegistry does for a cluster. */
export async function mergeMetrics(
  parts: readonly MetricsJson[],
  contentType: string,
): Promise<string> {
  const adjusted = parts.map((metrics) =>
    metrics.map((m) => {
      const over = MERGE_OVERRIDES[m.name];
      return over ? { ...m, aggregator: over } : m;
    }),
  );
  const merged = AggregatorRegistry.aggregate(adjusted);
  merged.setContentType(contentType as never);
  return merged.metrics();
}

/** Several registries' JSON merged into one (as mergeMetrics does), still as JSON. */
export function mergeJson(parts: readonly MetricsJson[]): MetricsJson {
  return AggregatorRegistry.aggregate([...parts])
    .getMetricsAsArray()
    .map((wrapper) => {
      // aggregate() wraps each merged metric with a get(): the metric is the rest.
      const { get: _get, ...metric } = wrapper as unknown as Record<string, unknown>;
      return metric as unknown as MetricsJson[number];
    });
}

/** The series that only rise (counters and histograms): what a retired worker leaves behind. */
export function risingOnly(metrics: MetricsJson): MetricsJson {
  return metrics.filter((m) => {
    const type = String(m.type);
    return type === 'counter' || type === 'histogram';
  });
}
