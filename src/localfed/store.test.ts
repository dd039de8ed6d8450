import { describe, expect, it } from 'vitest';
import { ClusterStore, Expired } from './store.ts';

const svc = (name: string, v = '1') => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop', labels: { v } },
});

describe('ClusterStore', () => {
  it('rebuilds an older revision by undoing history', () => {
    const s = new ClusterStore();
    s.put('/services', svc('a'));
    const at = s.revision;
    s.put('/services', svc('a', '2'));
    s.put('/services', svc('b'));
    s.delete('/services', 'shop', 'a');
    expect(s.list('/services').map((o) => o.metadata.name)).toEqual(['b']);
    const past = s.listAt('/services', at);
    expect(past.map((o) => [o.metadata.name, o.metadata.labels?.v])).toEqual([['a', '1']]);
  });

  it('answers Expired for revisions compacted away, and compaction moves the revision on', () => {
    const s = new ClusterStore();
    s.put('/services', svc('a'));
    const seen = s.revision;
    s.compact();
    expect(s.revision).toBe(seen + 1);
    expect(() => s.changesSince(seen)).toThrow(Expired);
    expect(s.changesSince(s.revision)).toEqual([]);
  });

  it('drops the oldest history past its limit and expires revisions before it', () => {
    const s = new ClusterStore({ historyLimit: 3 });
    const first = s.revision;
    for (let i = 0; i < 5; i++) s.put('/services', svc(`s${i}`));
    expect(() => s.changesSince(first)).toThrow(Expired);
    expect(s.changesSince(s.revision - 3).map((c) => c.object.metadata.name)).toEqual([
      's2',
      's3',
      's4',
    ]);
  });

  it('stamps a deletion with its own revision', () => {
    const s = new ClusterStore();
    s.put('/services', svc('a'));
    const gone = s.delete('/services', 'shop', 'a');
    expect(gone?.metadata.resourceVersion).toBe(String(s.revision));
  });
});
