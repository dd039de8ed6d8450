import { describe, expect, it } from 'vitest';
import { localityLabel, mergeTraffic, TrafficRing } from './traffic.ts';

const clock = (start: number) => {
  const c = { t: start, now: () => c.t };
  return c;
};
const http = (cluster: string, failed = false, seconds = 0.004) => ({
  service: 'shop/web',
  from: 'us-east/us-east-a',
  cluster,
  zone: `${cluster}-z`,
  failed,
  seconds,
});

describe('TrafficRing', () => {
  it('counts requests into the slot of now and keeps only the last slots', () => {
    const c = clock(1_000_000);
    const ring = new TrafficRing({ now: c.now, slotMs: 10_000, slots: 3 });
    ring.http(http('east'));
    ring.http(http('east', true));
    c.t += 10_000;
    ring.http(http('west'));
    let j = ring.json();
    expect(j.slots.map((s) => s.at)).toEqual([100, 101]);
    expect(j.slots[0]?.flows).toEqual([
      expect.objectContaining({ cluster: 'east', count: 2, failed: 1, protocol: 'http' }),
    ]);
    expect(j.slots[0]?.services['shop/web']).toMatchObject({ requests: 2, errors: 1 });
    expect(j.slots[0]?.clusters.east).toMatchObject({ requests: 2, errors: 1 });
    // Three slots on, the first slot's place is reused: its counts are gone.
    c.t += 20_000;
    ring.http(http('west'));
    j = ring.json();
    expect(j.slots.map((s) => s.at)).toEqual([101, 103]);
    expect(j.slots[1]?.flows[0]).toMatchObject({ cluster: 'west', count: 1 });
  });

  it('leaves out slots older than the ring even when nothing overwrote them', () => {
    const c = clock(0);
    const ring = new TrafficRing({ now: c.now, slotMs: 1000, slots: 4 });
    ring.http(http('east'));
    c.t = 10_000;
    expect(ring.json().slots).toEqual([]);
  });

  it('spreads a DNS answer over its addresses and counts an empty one as failed', () => {
    const ring = new TrafficRing({ now: () => 5 });
    const targets = [
      { cluster: 'east', zone: 'a' },
      { cluster: 'east', zone: 'a' },
      { cluster: 'west', zone: 'b' },
      { cluster: 'west', zone: 'c' },
    ];
    ring.dns('shop/web', 'r/a', targets);
    ring.dns('shop/web', 'r/a', []);
    const [slot] = ring.json().slots;
    const by = Object.fromEntries(slot?.flows.map((f) => [`${f.cluster}/${f.zone}`, f]) ?? []);
    expect(by['east/a']).toMatchObject({ protocol: 'dns', count: 0.5, failed: 0 });
    expect(by['west/b']).toMatchObject({ count: 0.25 });
    expect(by['/']).toMatchObject({ count: 1, failed: 1 });
    expect(slot?.services['shop/web']).toMatchObject({ requests: 2, errors: 1 });
  });

  it('hands out copies: counting on does not change what was handed out', () => {
    const ring = new TrafficRing({ now: () => 0 });
    ring.http(http('east'));
    const before = ring.json();
    ring.http(http('east'));
    expect(before.slots[0]?.flows[0]?.count).toBe(1);
    expect(before.slots[0]?.services['shop/web']?.requests).toBe(1);
  });
});

describe('mergeTraffic', () => {
  it('sums the rings of several processes slot by slot', () => {
    const c = clock(20_000);
    const a = new TrafficRing({ now: c.now });
    const b = new TrafficRing({ now: c.now });
    a.http(http('east'));
    b.http(http('east', true));
    b.http(http('west'));
    c.t += 10_000;
    a.http(http('west'));
    const m = mergeTraffic([a.json(), b.json()]);
    expect(m.slots.map((s) => s.at)).toEqual([2, 3]);
    const first = m.slots[0];
    expect(first?.flows.map((f) => [f.cluster, f.count, f.failed])).toEqual([
      ['east', 2, 1],
      ['west', 1, 0],
    ]);
    expect(first?.services['shop/web']).toMatchObject({ requests: 3, errors: 1 });
    expect(m.slots[1]?.clusters.west?.requests).toBe(1);
  });
});

describe('localityLabel', () => {
  it('names a locality by region and zone, and none by the empty string', () => {
    expect(localityLabel({ region: 'us-east', zone: 'us-east-a' })).toBe('us-east/us-east-a');
    expect(localityLabel({ region: 'us-east' })).toBe('us-east');
    expect(localityLabel(undefined)).toBe('');
  });
});
