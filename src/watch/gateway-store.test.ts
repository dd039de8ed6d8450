import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { GatewayObjects, NamespaceRecord } from './gateway-records.ts';
import { GatewayStore } from './gateway-store.ts';
import type { GatewayClusterStatus } from './gateway-watcher.ts';

const ns = (
  cluster: string,
  name: string,
  labels: Record<string, string> = {},
): NamespaceRecord => ({
  cluster,
  namespace: '',
  name,
  generation: 0,
  createdAt: 0,
  uid: `${cluster}-${name}`,
  labels,
});

const status = (cluster: string, state: GatewayClusterStatus['state']): GatewayClusterStatus => ({
  cluster,
  state,
  absent: [],
  error: undefined,
});

function recorded(store: GatewayStore): GatewayObjects[] {
  const seen: GatewayObjects[] = [];
  store.subscribe((o) => seen.push(o));
  return seen;
}

describe('GatewayStore', () => {
  it('publishes once per turn of the event loop, every cluster by name then key', async () => {
    const store = new GatewayStore();
    const seen = recorded(store);
    store.apply('beta', 'namespaces', 'a', ns('beta', 'a'));
    store.apply('alpha', 'namespaces', 'z', ns('alpha', 'z'));
    store.apply('alpha', 'namespaces', 'b', ns('alpha', 'b'));
    expect(seen).toEqual([]);
    await tick();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.namespaces.map((n) => `${n.cluster}/${n.name}`)).toEqual([
      'alpha/b',
      'alpha/z',
      'beta/a',
    ]);
    expect(store.current()).toEqual({ objects: seen[0], version: 1 });
    // A removal of something not held changes nothing, and publishes nothing.
    store.apply('alpha', 'namespaces', 'nope', undefined);
    await tick();
    expect(seen).toHaveLength(1);
    store.apply('alpha', 'namespaces', 'b', undefined);
    await tick();
    expect(seen[1]?.namespaces.map((n) => n.name)).toEqual(['z', 'a']);
  });

  it('a cluster removed takes its objects with it', async () => {
    const store = new GatewayStore();
    const seen = recorded(store);
    store.apply('alpha', 'namespaces', 'a', ns('alpha', 'a'));
    store.apply('beta', 'namespaces', 'b', ns('beta', 'b'));
    store.setStatus(status('alpha', 'synced'));
    store.flush();
    store.removeCluster('alpha');
    await tick();
    expect(seen.at(-1)?.namespaces.map((n) => n.cluster)).toEqual(['beta']);
    expect([...store.statuses().keys()]).toEqual([]);
  });

  it('a handed-over cluster keeps publishing its old objects until its new watcher syncs', async () => {
    const store = new GatewayStore();
    const seen = recorded(store);
    store.apply('alpha', 'namespaces', 'old', ns('alpha', 'old'));
    store.apply('alpha', 'namespaces', 'kept', ns('alpha', 'kept', { v: '1' }));
    store.flush();
    store.handOver('alpha');
    store.apply('alpha', 'namespaces', 'kept', ns('alpha', 'kept', { v: '2' }));
    store.setStatus(status('alpha', 'syncing'));
    await tick();
    expect(seen).toHaveLength(1);
    store.setStatus(status('alpha', 'synced'));
    await tick();
    expect(seen).toHaveLength(2);
    expect(seen[1]?.namespaces).toEqual([ns('alpha', 'kept', { v: '2' })]);
  });
});
