import { describe, expect, it } from 'vitest';
import { clusterStatus } from '../../test/fixtures/catalog.ts';
import type { ServiceRecord, SliceRecord } from '../watch/records.ts';
import { Catalog } from './catalog.ts';
import type { Snapshot } from './model.ts';

const CLUSTERS = [
  { name: 'a', weight: 1, region: 'r1' },
  { name: 'b', weight: 2, region: 'r2' },
];

function svc(name: string, over: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    namespace: 'ns',
    name,
    createdAt: 1000,
    headless: false,
    externalName: false,
    ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
    sessionAffinity: 'None',
    federate: true,
    hosts: [],
    ingress: [],
    ...over,
  };
}

function slice(service: string, name: string, addresses: string[], node?: string): SliceRecord {
  return {
    namespace: 'ns',
    name,
    service,
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: addresses.map((a) => ({
      addresses: [a],
      conditions: { ready: true, serving: true, terminating: false },
      ...(node ? { nodeName: node } : {}),
    })),
  };
}

const status = clusterStatus;

describe('Catalog', () => {
  it('publishes one snapshot for a burst, and keeps unchanged services identical', () => {
    const c = new Catalog({ clusters: CLUSTERS });
    const seen: Snapshot[] = [];
    c.subscribe((s) => seen.push(s));
    c.apply('a', 'services', 'ns/x', svc('x'));
    c.apply('a', 'services', 'ns/y', svc('y'));
    c.apply('a', 'endpointslices', 'ns/x-1', slice('x', 'x-1', ['127.10.0.1']));
    c.flush();
    expect(seen).toHaveLength(1);
    const first = seen[0]!;
    expect([...first.services.keys()].sort()).toEqual(['ns/x', 'ns/y']);
    c.apply('a', 'endpointslices', 'ns/x-1', slice('x', 'x-1', ['127.10.0.1', '127.10.0.2']));
    const second = c.flush();
    expect(second.version).toBe(first.version + 1);
    expect(second.services.get('ns/y')).toBe(first.services.get('ns/y'));
    expect(second.services.get('ns/x')!.clusters[0]!.endpoints).toHaveLength(2);
    // The first snapshot is untouched.
    expect(first.services.get('ns/x')!.clusters[0]!.endpoints).toHaveLength(1);
  });

  it('publishes nothing for a change that changes nothing', () => {
    const c = new Catalog({ clusters: CLUSTERS });
    c.apply('a', 'services', 'ns/x', svc('x'));
    const s1 = c.flush();
    c.apply('a', 'services', 'ns/x', svc('x'));
    c.apply('a', 'nodes', 'n9', { name: 'n9', zone: 'z' });
    expect(c.flush()).toBe(s1);
  });

  it('publishes on its own, on the next turn of the event loop', async () => {
    const c = new Catalog({ clusters: CLUSTERS });
    const got = new Promise<Snapshot>((resolve) => c.subscribe(resolve));
    c.apply('b', 'services', 'ns/x', svc('x'));
    expect((await got).services.has('ns/x')).toBe(true);
  });

  it('re-merges the services on a node whose zone changes', () => {
    const c = new Catalog({ clusters: CLUSTERS });
    c.apply('a', 'nodes', 'n1', { name: 'n1', zone: 'z1' });
    c.apply('a', 'services', 'ns/x', svc('x'));
    c.apply('a', 'endpointslices', 'ns/x-1', slice('x', 'x-1', ['127.10.0.1'], 'n1'));
    expect(c.flush().services.get('ns/x')!.clusters[0]!.endpoints[0]!.locality.zone).toBe('z1');
    c.apply('a', 'nodes', 'n1', { name: 'n1', zone: 'z2' });
    expect(c.flush().services.get('ns/x')!.clusters[0]!.endpoints[0]!.locality.zone).toBe('z2');
  });

  it('rebuilds only the endpoints of the cluster that changed', () => {
    const c = new Catalog({ clusters: CLUSTERS });
    for (const [cluster, ip] of [
      ['a', '127.10.0.1'],
      ['b', '127.11.0.1'],
    ] as const) {
      c.apply(cluster, 'nodes', 'n1', {
        name: 'n1',
        zone: `${cluster}-z1`,
      });
      c.apply(cluster, 'services', 'ns/x', svc('x'));
      c.apply(cluster, 'endpointslices', 'ns/x-1', slice('x', 'x-1', [ip], 'n1'));
    }
    const before = c.flush().services.get('ns/x')!;
    c.apply('a', 'endpointslices', 'ns/x-1', slice('x', 'x-1', ['127.10.0.1', '127.10.0.2'], 'n1'));
    const after = c.flush().services.get('ns/x')!;
    expect(after.clusters[0]!.endpoints).toHaveLength(2);
    // b's endpoints are the very same array: nothing in b was rebuilt or compared.
    expect(after.clusters[1]!.endpoints).toBe(before.clusters[1]!.endpoints);
    // A node's new zone still reaches its endpoints, though no slice changed.
    c.apply('b', 'nodes', 'n1', {
      name: 'n1',
      zone: 'b-z2',
    });
    const moved = c.flush().services.get('ns/x')!;
    expect(moved.clusters[1]!.endpoints[0]!.locality.zone).toBe('b-z2');
    expect(moved.clusters[0]!.endpoints).toBe(after.clusters[0]!.endpoints);
  });

  it('moves a slice whose service label changes', () => {
    const c = new Catalog({ clusters: CLUSTERS });
    c.apply('a', 'services', 'ns/x', svc('x'));
    c.apply('a', 'services', 'ns/y', svc('y'));
    c.apply('a', 'endpointslices', 'ns/s', slice('x', 's', ['127.10.0.1']));
    c.flush();
    c.apply('a', 'endpointslices', 'ns/s', slice('y', 's', ['127.10.0.1']));
    const s = c.flush();
    expect(s.services.get('ns/x')!.clusters[0]!.endpoints).toHaveLength(0);
    expect(s.services.get('ns/y')!.clusters[0]!.endpoints).toHaveLength(1);
  });

  it('marks a stale cluster in its services and keeps its endpoints', () => {
    const c = new Catalog({ clusters: CLUSTERS });
    c.apply('a', 'services', 'ns/x', svc('x'));
    c.apply('a', 'endpointslices', 'ns/x-1', slice('x', 'x-1', ['127.10.0.1']));
    c.setStatus(status('a'));
    c.flush();
    c.setStatus(
      status('a', {
        state: 'stale',
        lastSyncAt: 42,
        error: { code: 'CLUSTER_UNREACHABLE', message: 'down' },
      }),
    );
    const s = c.flush();
    const member = s.services.get('ns/x')!.clusters[0]!;
    expect(member.sync.state).toBe('stale');
    expect(member.sync.lastSyncAt).toBe(42);
    expect(member.endpoints).toHaveLength(1);
    expect(s.clusters.get('a')!.state).toBe('stale');
  });

  it('is ready when every cluster has synced once, or reports the missing at the timeout', async () => {
    const c = new Catalog({ clusters: CLUSTERS });
    c.setStatus(status('a'));
    const r = await c.whenReady(20);
    expect(r).toEqual({ ready: false, missing: ['b'], timedOut: true });
    const waiting = c.whenReady(10_000);
    c.apply('b', 'services', 'ns/x', svc('x'));
    c.setStatus(status('b'));
    expect(await waiting).toEqual({ ready: true, missing: [], timedOut: false });
    // Ready means the snapshot already holds what was listed.
    expect(c.current().services.has('ns/x')).toBe(true);
  });

  it('applied incrementally, ends equal to a catalog built from the final state (seeded)', () => {
    // mulberry32: a seeded source, so a failure replays exactly.
    let seed = 0x5eed_f00d;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const names = ['p', 'q', 'r', 's'];
    const clusters = ['a', 'b'];
    const incremental = new Catalog({ clusters: CLUSTERS });
    const state = new Map<string, ServiceRecord | SliceRecord | undefined>();
    for (let i = 0; i < 2000; i++) {
      const cluster = pick(clusters);
      const name = pick(names);
      const roll = rand();
      if (roll < 0.3) {
        const rec =
          rand() < 0.2 ? undefined : svc(name, { headless: rand() < 0.3, createdAt: pick([1, 2]) });
        incremental.apply(cluster, 'services', `ns/${name}`, rec);
        state.set(`${cluster}|services|ns/${name}`, rec);
      } else {
        const sliceName = `${name}-${pick(['1', '2'])}`;
        const owner = rand() < 0.1 ? pick(names) : name;
        const rec =
          rand() < 0.2
            ? undefined
            : slice(owner, sliceName, [`127.10.${Math.floor(rand() * 4)}.1`, `127.11.0.${i % 3}`]);
        incremental.apply(cluster, 'endpointslices', `ns/${sliceName}`, rec);
        state.set(`${cluster}|endpointslices|ns/${sliceName}`, rec);
      }
      if (rand() < 0.1) incremental.flush();
    }
    const rebuilt = new Catalog({ clusters: CLUSTERS });
    for (const [k, rec] of state) {
      const [cluster, kind, key] = k.split('|') as [string, 'services' | 'endpointslices', string];
      rebuilt.apply(cluster, kind, key, rec);
    }
    const a = incremental.flush();
    const b = rebuilt.flush();
    expect([...a.services.keys()].sort()).toEqual([...b.services.keys()].sort());
    for (const [key, fs] of b.services) expect(a.services.get(key)).toEqual(fs);
  });

  describe('members changed by a reload', () => {
    /** A catalog with ns/x and ns/y in both clusters, both synced. */
    function twoClusters(): Catalog {
      const c = new Catalog({ clusters: CLUSTERS });
      for (const cl of ['a', 'b']) {
        const third = cl === 'a' ? 0 : 1;
        for (const name of ['x', 'y']) {
          c.apply(cl, 'services', `ns/${name}`, svc(name));
          c.apply(
            cl,
            'endpointslices',
            `ns/${name}-1`,
            slice(name, `${name}-1`, [`127.${10 + third}.0.1`]),
          );
        }
        c.setStatus(status(cl));
      }
      c.flush();
      return c;
    }
    const clustersOf = (s: Snapshot, key: string) =>
      s.services.get(key)?.clusters.map((m) => m.cluster);

    it('removes a cluster from every service in one snapshot, published at once', () => {
      const c = twoClusters();
      const seen: Snapshot[] = [];
      c.subscribe((s) => seen.push(s));
      c.removeCluster('b');
      expect(seen).toHaveLength(1);
      expect(clustersOf(seen[0]!, 'ns/x')).toEqual(['a']);
      expect(clustersOf(seen[0]!, 'ns/y')).toEqual(['a']);
      expect([...seen[0]!.clusters.keys()]).toEqual(['a']);
      // Its watcher's late events go nowhere.
      c.apply('b', 'services', 'ns/z', svc('z'));
      expect(c.flush().services.has('ns/z')).toBe(false);
    });

    it('adds a cluster as syncing; readiness waits for it only until it syncs', async () => {
      const c = twoClusters();
      c.addCluster({ name: 'c', weight: 1, region: 'r3' });
      expect(c.flush().clusters.get('c')!.state).toBe('syncing');
      expect(c.readiness()).toMatchObject({ ready: false, missing: ['c'] });
      c.apply('c', 'services', 'ns/x', svc('x'));
      c.apply('c', 'endpointslices', 'ns/x-1', slice('x', 'x-1', ['127.12.0.1']));
      c.setStatus(status('c'));
      expect(clustersOf(c.flush(), 'ns/x')).toEqual(['a', 'b', 'c']);
      expect(c.readiness().ready).toBe(true);
    });

    it('a removed cluster that never synced no longer holds readiness back', async () => {
      const c = new Catalog({ clusters: CLUSTERS });
      c.setStatus(status('a'));
      const waiting = c.whenReady(10_000);
      c.removeCluster('b');
      expect(await waiting).toEqual({ ready: true, missing: [], timedOut: false });
    });

    it('applies a new weight or region in place', () => {
      const c = twoClusters();
      c.updateCluster({ name: 'b', weight: 5, region: 'r9' });
      const s = c.flush();
      const b = s.services.get('ns/x')!.clusters.find((m) => m.cluster === 'b')!;
      expect(b.weight).toBe(5);
      expect(b.endpoints[0]!.locality.region).toBe('r9');
    });

    it('hands a member over to a new watcher: old records until it has listed, then the new at once', () => {
      const c = twoClusters();
      const before = c.flush();
      c.handOver('b');
      // The new watcher lists: y is gone there now, x has another endpoint.
      c.apply('b', 'services', 'ns/x', svc('x'));
      c.apply('b', 'endpointslices', 'ns/x-1', slice('x', 'x-1', ['127.11.0.9']));
      c.setStatus(status('b', { state: 'syncing', syncedOnce: false, lastSyncAt: undefined }));
      expect(c.flush()).toBe(before);
      const seen: Snapshot[] = [];
      c.subscribe((s) => seen.push(s));
      c.setStatus(status('b', { lastSyncAt: 7 }));
      const after = c.flush();
      expect(seen).toHaveLength(1);
      expect(clustersOf(after, 'ns/y')).toEqual(['a']);
      const x = after.services.get('ns/x')!.clusters.find((m) => m.cluster === 'b')!;
      expect(x.endpoints.map((e) => e.addresses[0])).toEqual(['127.11.0.9']);
      expect(after.clusters.get('b')!.lastSyncAt).toBe(7);
    });

    it('a new watcher that cannot get through leaves the old records, marked stale', () => {
      const c = twoClusters();
      c.handOver('b');
      c.setStatus(
        status('b', {
          state: 'syncing',
          syncedOnce: false,
          error: { code: 'CLUSTER_UNAUTHORIZED', message: '401' },
        }),
      );
      const s = c.flush();
      expect(s.clusters.get('b')).toMatchObject({ state: 'stale', syncedOnce: true });
      expect(
        s.services.get('ns/x')!.clusters.find((m) => m.cluster === 'b')!.endpoints,
      ).toHaveLength(1);
      expect(c.readiness().ready).toBe(true);
    });
  });
});
