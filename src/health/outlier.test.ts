import { describe, expect, it } from 'vitest';
import { endpoints, service } from '../../test/fixtures/services.ts';
import type { Snapshot } from '../catalog/model.ts';
import { type OutlierConfig, OutlierDetector, type OutlierEvent } from './outlier.ts';
import { HealthStore } from './store.ts';

const CONFIG: OutlierConfig = {
  consecutive5xx: 5,
  consecutiveGatewayFailure: 5,
  baseEjectionTime: 30_000,
  maxEjectionTime: 300_000,
  maxEjectionPercent: 10,
  interval: 10_000,
};
const SVC = 'shop/web';
const ZONE = { region: 'us-east', zone: 'us-east-a' };

function setup(n = 20, config = CONFIG) {
  let now = 1_000_000;
  const events: OutlierEvent[] = [];
  const store = new HealthStore();
  const detector = new OutlierDetector({
    config,
    store,
    now: () => now,
    onEvent: (e) => events.push(e),
  });
  const snapshot = (count: number) =>
    ({
      services: new Map([[SVC, service([{ cluster: 'a', endpoints: endpoints(0, count, ZONE) }])]]),
    }) as unknown as Snapshot;
  detector.update(snapshot(n));
  const id = (i: number) => `a/127.10.0.${i}`;
  const fail5xx = (i: number, times = 5) => {
    for (let k = 0; k < times; k++)
      detector.report(SVC, id(i), { origin: 'upstream', status: 503 });
  };
  const tick = (ms: number) => {
    // The clock moves in evaluation steps, as the interval timer would.
    for (let t = 0; t < ms; t += config.interval) {
      now += config.interval;
      detector.evaluate();
    }
  };
  return { detector, store, events, id, fail5xx, tick, snapshot, now: () => now };
}

describe('OutlierDetector', () => {
  it('counts a gRPC UNAVAILABLE, INTERNAL, UNKNOWN or DATA_LOSS under HTTP 200 as a 5xx; other statuses as success', () => {
    const { detector, store, id } = setup();
    const grpc = (i: number, grpcStatus: number) =>
      detector.report(SVC, id(i), { origin: 'upstream', status: 200, grpcStatus });
    for (const failing of [14, 13, 2, 15, 14]) grpc(0, failing);
    expect(store.endpoint(SVC, id(0))?.ejectionReason).toBe('consecutive-5xx');
    // NOT_FOUND, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED…: the call's outcome, not the server failing.
    for (const status of [14, 14, 14, 14, 5, 4, 8, 14, 14, 14, 14, 0, 3]) grpc(1, status);
    expect(store.endpoint(SVC, id(1))?.ejectedUntil).toBeUndefined();
    expect(detector.stats().reports).toMatchObject({ upstream5xx: 13, ok: 5 });
  });

  it('ejects after 5 consecutive upstream 5xx; a success in between starts over', () => {
    const { detector, store, id, fail5xx, now } = setup();
    fail5xx(0, 4);
    detector.report(SVC, id(0), { origin: 'upstream', status: 200 });
    fail5xx(0, 4);
    expect(store.endpoint(SVC, id(0))?.ejectedUntil).toBeUndefined();
    fail5xx(0, 1);
    expect(store.endpoint(SVC, id(0))).toMatchObject({
      ejectedUntil: now() + 30_000,
      ejectionReason: 'consecutive-5xx',
    });
  });

  it('counts failures the proxy saw itself apart from those the upstream reported', () => {
    const { detector, store, id } = setup();
    const local = (f: 'connect' | 'reset' | 'timeout') =>
      detector.report(SVC, id(1), { origin: 'local', failure: f });
    local('connect');
    local('reset');
    detector.report(SVC, id(1), { origin: 'upstream', status: 502 });
    local('timeout');
    local('connect');
    local('reset');
    local('connect');
    // The 502 proved the path works: the gateway run restarted at it.
    expect(store.endpoint(SVC, id(1))?.ejectedUntil).toBeUndefined();
    local('timeout');
    expect(store.endpoint(SVC, id(1))?.ejectionReason).toBe('consecutive-gateway-failure');
    const s = detector.stats();
    expect(s.reports).toEqual({ upstream5xx: 1, local: 7, ok: 0 });
    expect(s.enforced).toEqual({ 'consecutive-5xx': 0, 'consecutive-gateway-failure': 1 });
  });

  it('ejects for base × times ejected, returns at the tick after, and lowers the multiplier again', () => {
    const { store, id, fail5xx, tick, events, now } = setup();
    fail5xx(0);
    expect(store.endpoint(SVC, id(0))?.ejectedUntil).toBe(now() + 30_000);
    tick(20_000);
    expect(store.endpoint(SVC, id(0))?.ejectedUntil).toBeDefined();
    tick(10_000);
    expect(store.endpoint(SVC, id(0))?.ejectedUntil).toBeUndefined();
    fail5xx(0);
    expect(store.endpoint(SVC, id(0))?.ejectedUntil).toBe(now() + 60_000);
    tick(60_000);
    expect(store.endpoint(SVC, id(0))?.ejectedUntil).toBeUndefined();
    // Two quiet ticks bring the multiplier from 2 back to 0: the next ejection is the base again.
    tick(20_000);
    fail5xx(0);
    expect(store.endpoint(SVC, id(0))?.ejectedUntil).toBe(now() + 30_000);
    expect(events.map((e) => [e.type, e.times])).toEqual([
      ['ejected', 1],
      ['returned', 1],
      ['ejected', 2],
      ['returned', 2],
      ['ejected', 1],
    ]);
  });

  it('caps one ejection at maxEjectionTime', () => {
    const { store, id, fail5xx, tick, now } = setup(20, { ...CONFIG, maxEjectionTime: 45_000 });
    fail5xx(0);
    tick(30_000);
    fail5xx(0);
    expect(store.endpoint(SVC, id(0))?.ejectedUntil).toBe(now() + 45_000);
  });

  it('never ejects more than maxEjectionPercent, but always one; detected and enforced are counted apart', () => {
    const { detector, store, id, fail5xx, tick } = setup(20);
    for (const i of [0, 1, 2, 3]) fail5xx(i);
    const ejected = [0, 1, 2, 3].filter(
      (i) => store.endpoint(SVC, id(i))?.ejectedUntil !== undefined,
    );
    expect(ejected).toEqual([0, 1]);
    expect(detector.stats()).toMatchObject({
      detected: { 'consecutive-5xx': 4 },
      enforced: { 'consecutive-5xx': 2 },
      ejected: 2,
    });
    tick(30_000);
    expect(detector.stats()).toMatchObject({ returned: 2, ejected: 0 });

    const small = setup(3, { ...CONFIG, maxEjectionPercent: 0 });
    small.fail5xx(0);
    small.fail5xx(1);
    expect(small.detector.stats()).toMatchObject({
      enforced: { 'consecutive-5xx': 1 },
      ejected: 1,
    });
  });

  it('follows the catalog: gone endpoints are forgotten, unknown ones ignored', () => {
    const { detector, id, fail5xx, snapshot } = setup(5);
    fail5xx(4, 4);
    detector.update(snapshot(4));
    detector.report(SVC, id(4), { origin: 'upstream', status: 500 });
    detector.update(snapshot(5));
    fail5xx(4, 4);
    expect(detector.stats().detected['consecutive-5xx']).toBe(0);
    detector.report('shop/none', id(0), { origin: 'upstream', status: 500 });
    expect(detector.stats().reports.upstream5xx).toBe(8);
  });

  it('bumps the health version routing reads on ejection and return', () => {
    const { store, fail5xx, tick } = setup();
    const v0 = store.serviceVersion(SVC);
    fail5xx(0);
    const v1 = store.serviceVersion(SVC);
    expect(v1).toBeGreaterThan(v0);
    tick(30_000);
    expect(store.serviceVersion(SVC)).toBeGreaterThan(v1);
  });
});
