import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TalliedCounter, TalliedHistogram } from './tallies.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];

describe('tallied series', () => {
  it('expose exactly what prom-client Counter and Histogram would, as text and as JSON', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const requests = {
      name: 'r_total',
      help: 'h',
      labelNames: ['service', 'cluster', 'zone', 'code'],
    };
    const duration = {
      name: 'd_seconds',
      help: 'h',
      labelNames: ['service', 'code'],
      buckets: BUCKETS,
    };
    const c1 = new Counter({ ...requests, registers: [theirs] });
    const h1 = new Histogram({ ...duration, registers: [theirs] });
    const c2 = new TalliedCounter({ ...requests, registers: [ours] });
    const h2 = new TalliedHistogram({ ...duration, registers: [ours] });
    const seen: [string, string, string, string, number][] = [
      ['shop/web', 'alpha', 'a', '2xx', 0.002],
      ['shop/web', '', '', '5xx', 40],
      ['shop/api', 'beta', 'b', '2xx', 0.001],
      ['shop/web', 'alpha', 'a', '2xx', 0.3],
      ['shop/web', 'alpha', 'b', '2xx', 10],
    ];
    for (const [service, cluster, zone, code, s] of seen) {
      c1.inc({ service, cluster, zone, code });
      h1.observe({ service, code }, s);
      c2.at(service, cluster, zone, code).value++;
      h2.observe(h2.at(service, code), s);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
    expect(() => h2.observe(h2.at('shop/web', '2xx'), Number.NaN)).toThrow(TypeError);
  });
});
