// Route tables across the IPC channel: the receiver ends up with tables equal to the
// sender's, its own objects kept for the hosts that did not change.
import { deserialize, serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import type { HostRules, RouteTables } from '../gateway/attached.ts';
import { applyRoutesDelta, routesDelta } from './routes-delta.ts';

/** What crosses the channel (`serialization: 'advanced'`): a V8 structured clone. */
const cross = <T>(v: T): T => deserialize(serialize(v)) as T;

const host = (hostname: string, index: number): HostRules => ({
  hostname,
  rules: [
    {
      route: { kind: 'HTTPRoute', namespace: 'default', name: hostname },
      index,
      createdAt: 0,
      http: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }],
      filters: [],
      backends: [{ serviceKey: 'default/a', port: 80, weight: 1, filters: [] }],
    },
  ],
});

const tables = (...hosts: HostRules[]): RouteTables => ({
  listeners: [{ address: '127.0.0.1:8080', tls: false, gatewayPort: 80, hosts }],
});

describe('routes deltas', () => {
  const a = host('a.test', 0);
  const b = host('b.test', 0);
  const first = tables(a, b);
  const next = tables(a, host('b.test', 1), host('c.test', 0));

  it('the first tables go whole; the next ones name the hosts kept, and the receiver puts its own back', () => {
    const held = applyRoutesDelta(undefined, cross(routesDelta(undefined, first)));
    expect(held).toStrictEqual(first);
    const delta = routesDelta(first, next);
    expect(delta.listeners[0]?.hosts[0]).toEqual({ kept: 'a.test' });
    const got = applyRoutesDelta(held, cross(delta));
    expect(got).toStrictEqual(next);
    expect(got?.listeners[0]?.hosts[0]).toBe(held?.listeners[0]?.hosts[0]);
  });

  it('a delta naming a host the receiver does not hold is refused', () => {
    const held = applyRoutesDelta(undefined, cross(routesDelta(undefined, tables(b))));
    expect(applyRoutesDelta(held, cross(routesDelta(first, next)))).toBeUndefined();
  });
});
