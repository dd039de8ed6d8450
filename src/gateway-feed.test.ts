import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { service } from '../test/fixtures/services.ts';
import {
  backendRef,
  emptyObjects,
  gateway,
  gatewayClass,
  httpRoute,
  listener,
  parentRef,
  rule,
} from '../test/helpers/gateway-objects.ts';
import type { FederatedService, Snapshot } from './catalog/model.ts';
import { parseConfig } from './config/load.ts';
import type { RouteTables } from './gateway/attached.ts';
import type { StatusReport } from './gateway/status.ts';
import { GatewayFeed } from './gateway-feed.ts';
import type { GatewayObjects } from './watch/gateway-records.ts';

/** A configuration naming one member; its kubeconfig is never dialled. */
const DIR = mkdtempSync(join(tmpdir(), 'fedgate-feed-'));
writeFileSync(
  join(DIR, 'east.kubeconfig'),
  stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'east', cluster: { server: 'https://127.0.0.1:1' } }],
    users: [{ name: 'u', user: {} }],
    contexts: [{ name: 'east', context: { cluster: 'east', user: 'u' } }],
    'current-context': 'east',
  }),
);

const config = (port: number) =>
  parseConfig(
    stringify({
      federation: { name: 'galaxy', domain: 'example.test' },
      clusters: [{ name: 'east', kubeconfig: 'east.kubeconfig' }],
      http: { listen: [`127.0.0.1:${port}`] },
      gatewayAPI: {
        clusters: ['east'],
        listeners: [{ port: 80, protocol: 'HTTP', address: `127.0.0.1:${port}` }],
      },
    }),
    join(DIR, 'fedgate.yaml'),
  );

const objects: GatewayObjects = {
  ...emptyObjects(),
  gatewayClasses: [gatewayClass()],
  gateways: [gateway({ name: 'edge' }, [listener({})])],
  httpRoutes: [
    httpRoute(
      { name: 'r' },
      {
        parentRefs: [parentRef({ name: 'edge' })],
        hostnames: ['a.test'],
        rules: [rule({ backendRefs: [backendRef({ name: 'web', port: 80 })] })],
      },
    ),
  ],
};

const snapshot = (version: number, services: FederatedService[]): Snapshot => ({
  version,
  createdAt: 0,
  services: new Map(services.map((s) => [s.key, s])),
  clusters: new Map(),
});

const web = (over: Partial<FederatedService> = {}) =>
  service(
    [{ cluster: 'east', endpoints: [{ address: '127.0.0.1', port: 8080 }] }],
    'default/web',
    over,
  );

/** A feed over hand-driven sources; what it hands on is recorded. */
function harness(initial: FederatedService[] = [web()]) {
  const gatewaySubs: ((o: GatewayObjects, v: number) => void)[] = [];
  const catalogSubs: ((s: Snapshot) => void)[] = [];
  let snap = snapshot(1, initial);
  const tables: RouteTables[] = [];
  const reports: StatusReport[] = [];
  const feed = new GatewayFeed(
    {
      gateway: {
        current: () => ({ objects: emptyObjects(), version: 0 }),
        subscribe: (fn) => {
          gatewaySubs.push(fn);
          return () => {};
        },
      },
      catalog: {
        current: () => snap,
        subscribe: (fn) => {
          catalogSubs.push(fn);
          return () => {};
        },
      },
      serving: { setRoutes: (t) => tables.push(t) },
      status: (r) => reports.push(r),
      log: pino({ level: 'silent' }),
    },
    config(8080),
  );
  return {
    feed,
    tables,
    reports,
    objects: (o: GatewayObjects) => {
      for (const fn of gatewaySubs) fn(o, 1);
    },
    services: (s: Snapshot) => {
      snap = s;
      for (const fn of catalogSubs) fn(s);
    },
  };
}

const backendsOf = (t: RouteTables | undefined) =>
  t?.listeners.flatMap((l) => l.hosts.flatMap((h) => h.rules.flatMap((r) => r.backends)));

describe('GatewayFeed', () => {
  it('hands the tables on when they change, and the status report on every compilation', () => {
    const h = harness();
    h.feed.start();
    expect(h.tables).toEqual([{ listeners: [] }]);
    h.objects(objects);
    expect(h.tables).toHaveLength(2);
    expect(h.tables[1]?.listeners[0]?.address).toBe('127.0.0.1:8080');
    expect(backendsOf(h.tables[1])?.[0]?.serviceKey).toBe('default/web');
    // The same objects again: the same tables, not handed on twice.
    h.objects({ ...objects });
    expect(h.tables).toHaveLength(2);
    expect(h.reports).toHaveLength(3);
    expect(h.feed.report).toBe(h.reports[2]);
  });

  it('compiles again when a service appears or its ports change, not when only endpoints do', () => {
    const h = harness([]);
    h.feed.start();
    h.objects(objects);
    expect(backendsOf(h.tables.at(-1))?.[0]?.problem?.reason).toBe('BackendNotFound');
    const compiled = h.reports.length;
    h.services(snapshot(2, [web()]));
    expect(h.reports.length).toBe(compiled + 1);
    expect(backendsOf(h.tables.at(-1))?.[0]?.serviceKey).toBe('default/web');
    const moved = web({});
    h.services(snapshot(3, [moved]));
    expect(h.reports.length).toBe(compiled + 1);
    h.services(snapshot(4, [web({ ports: [{ name: 'http', protocol: 'TCP', port: 81 }] })]));
    expect(h.reports.length).toBe(compiled + 2);
    expect(backendsOf(h.tables.at(-1))?.[0]?.problem?.reason).toBe('BackendNotFound');
  });

  it('a reload that moves the listener moves the table', () => {
    const h = harness();
    h.feed.start();
    h.objects(objects);
    h.feed.reconfigure(config(9090));
    expect(h.tables.at(-1)?.listeners[0]?.address).toBe('127.0.0.1:9090');
    h.feed.stop();
  });
});
