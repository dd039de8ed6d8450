import { describe, expect, it } from 'vitest';
import { TrafficRing } from './traffic.ts';
import { p99Ms, trafficView } from './traffic-view.ts';

const http = (cluster: string, failed = false, seconds = 0.004) => ({
  service: 'shop/web',
  from: 'us-east/us-east-a',
  cluster,
  zone: `${cluster}-z`,
  failed,
  seconds,
});

describe('trafficView', () => {
  it('draws the last minute of flows and a point per slot, zero where nothing happened', () => {
    const c = { t: 1_000_000 };
    const now = () => c.t;
    const ring = new TrafficRing({ now });
    ring.http(http('east'));
    c.t += 70_000; // out of the minute's window, still in the series
    for (let i = 0; i < 10; i++) ring.http(http('west', i === 0, 0.02));
    const v = trafficView(ring.json(), c.t, 90);
    const svc = v.services[0];
    expect(svc?.service).toBe('shop/web');
    expect(svc?.flows).toEqual([
      {
        protocol: 'http',
        from: 'us-east/us-east-a',
        cluster: 'west',
        zone: 'west-z',
        count: 10,
        failed: 1,
      },
    ]);
    expect(svc?.series).toHaveLength(90);
    expect(svc?.series.at(-1)).toEqual({ rate: 1, errorRate: 0.1, p99Ms: 25 });
    expect(svc?.series.at(-8)).toEqual({ rate: 0.1, errorRate: 0, p99Ms: 5 });
    expect(svc?.series.at(-2)).toEqual({ rate: 0, errorRate: null, p99Ms: null });
    expect(v.clusters.map((x) => x.cluster)).toEqual(['east', 'west']);
  });

  it('takes the p99 as the bucket bound the 99th percentile falls under', () => {
    const latency = new Array<number>(15).fill(0);
    latency[0] = 98; // ≤ 1 ms
    latency[6] = 2; // ≤ 100 ms
    expect(p99Ms(latency)).toBe(100);
    latency[0] = 990;
    expect(p99Ms(latency)).toBe(1);
    expect(p99Ms(new Array<number>(15).fill(0))).toBeNull();
  });
});
