import { describe, expect, it } from 'vitest';
import { FedgateError } from '../errors.ts';
import type { ApiClient } from '../watch/api-client.ts';
import { rfc3339, stampConditions } from './conditions.ts';
import type { KubeApi, KubeObject } from './kube-api.ts';
import { ObjectCache } from './object-cache.ts';
import { ObjectWriter } from './writer.ts';

const GVR = { group: 'multicluster.x-k8s.io', version: 'v1alpha1', resource: 'serviceimports' };
const REF = { gvr: GVR, namespace: 'shop', name: 'web' };
const NOW = Date.parse('2026-12-03T12:00:00Z');

/** An API server of one object with resourceVersions; `raceOnce` makes the next write conflict. */
class FakeApi {
  readonly cluster = 'alpha';
  obj: KubeObject | undefined;
  rv = 10;
  calls: string[] = [];
  raceOnce = false;
  #bump(o: KubeObject): KubeObject {
    this.rv++;
    this.obj = { ...o, metadata: { ...o.metadata, resourceVersion: String(this.rv) } };
    return structuredClone(this.obj);
  }
  #race(o: KubeObject) {
    if (this.raceOnce) {
      this.raceOnce = false;
      // Someone else wrote in between: our resourceVersion is stale.
      this.#bump({
        ...(this.obj ?? {}),
        metadata: { ...this.obj?.metadata, labels: { ...this.obj?.metadata?.labels, x: 'y' } },
      });
    }
    if (o.metadata?.resourceVersion !== this.obj?.metadata?.resourceVersion) {
      throw new FedgateError('WRITE_CONFLICT', 'stale');
    }
  }
  async get(path: string) {
    this.calls.push(`GET ${path}`);
    return this.obj && structuredClone(this.obj);
  }
  async create(path: string, o: KubeObject) {
    this.calls.push(`POST ${path}`);
    return this.#bump(o);
  }
  async update(path: string, o: KubeObject) {
    this.calls.push(`PUT ${path}`);
    this.#race(o);
    const status = path.endsWith('/status');
    // The main resource ignores status; /status ignores the rest.
    return this.#bump(
      status ? { ...(this.obj ?? {}), status: o.status } : { ...o, status: this.obj?.status },
    );
  }
  async delete(path: string) {
    this.calls.push(`DELETE ${path}`);
    this.obj = undefined;
    return true;
  }
}

function setup() {
  const api = new FakeApi();
  const cache = new ObjectCache({} as ApiClient, GVR, 'ServiceImport', {
    silenceLimitMs: 1,
    listTimeoutMs: 1,
    retryMs: 1,
    changed: () => {},
    failed: () => {},
  });
  const wrote: string[] = [];
  const writer = new ObjectWriter(
    api as unknown as KubeApi,
    (_c, _r, verb) => wrote.push(verb),
    () => NOW,
  );
  return { api, cache, writer, wrote };
}

const DESIRED = {
  metadata: { labels: { 'app.kubernetes.io/managed-by': 'fedgate' } },
  spec: { type: 'ClusterSetIP', ports: [{ port: 80, protocol: 'TCP' }] },
  status: {
    clusters: [{ cluster: 'alpha' }],
    conditions: [{ type: 'Ready', status: 'True', reason: 'Ok', message: '' }],
  },
};
const owned = (o: KubeObject) => o.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'fedgate';

describe('ObjectWriter.object', () => {
  it('creates, writes status, and then writes nothing while nothing changes', async () => {
    const { api, cache, writer, wrote } = setup();
    expect(await writer.object(cache, REF, DESIRED, owned)).toBe(true);
    expect(wrote).toEqual(['create', 'update_status']);
    expect(api.calls).toEqual([
      'POST /apis/multicluster.x-k8s.io/v1alpha1/namespaces/shop/serviceimports',
      'PUT /apis/multicluster.x-k8s.io/v1alpha1/namespaces/shop/serviceimports/web/status',
    ]);
    expect(api.obj?.status).toEqual({
      ...DESIRED.status,
      conditions: [{ ...DESIRED.status.conditions[0], lastTransitionTime: '2026-12-03T12:00:00Z' }],
    });
    expect(await writer.object(cache, REF, DESIRED, owned)).toBe(false);
    expect(wrote.length).toBe(2);
  });

  it('writes only the part that differs: spec through the object, status through /status', async () => {
    const { api, cache, writer, wrote } = setup();
    await writer.object(cache, REF, DESIRED, owned);
    const headless = { ...DESIRED, spec: { ...DESIRED.spec, type: 'Headless' } };
    await writer.object(cache, REF, headless, owned);
    expect(wrote).toEqual(['create', 'update_status', 'update']);
    await writer.object(
      cache,
      REF,
      { ...headless, status: { ...DESIRED.status, clusters: [] } },
      owned,
    );
    expect(wrote).toEqual(['create', 'update_status', 'update', 'update_status']);
    expect(api.obj?.spec).toMatchObject({ type: 'Headless' });
    expect(api.obj?.status).toMatchObject({ clusters: [] });
  });

  it('after a conflict, reads the object again and writes on it', async () => {
    const { api, cache, writer, wrote } = setup();
    await writer.object(cache, REF, DESIRED, owned);
    api.raceOnce = true;
    api.calls = [];
    await writer.object(cache, REF, { ...DESIRED, spec: { type: 'Headless', ports: [] } }, owned);
    expect(api.calls.map((c) => c.split(' ')[0])).toEqual(['PUT', 'GET', 'PUT']);
    expect(wrote).toEqual(['create', 'update_status', 'update']);
    // The other writer's label stays: only ours were merged in.
    expect(api.obj?.metadata?.labels).toEqual({
      x: 'y',
      'app.kubernetes.io/managed-by': 'fedgate',
    });
  });

  it("deletes only what is its own, and never touches another's object of that name", async () => {
    const { api, cache, writer, wrote } = setup();
    await writer.object(cache, REF, DESIRED, owned);
    expect(await writer.object(cache, REF, undefined, owned)).toBe(true);
    expect(api.obj).toBeUndefined();
    api.obj = { metadata: { name: 'web', namespace: 'shop', resourceVersion: '99' }, spec: {} };
    cache.note(api.obj);
    expect(await writer.object(cache, REF, DESIRED, owned)).toBe(false);
    expect(await writer.object(cache, REF, undefined, owned)).toBe(false);
    expect(wrote).toEqual(['create', 'update_status', 'delete']);
  });
});

describe('ObjectWriter.status', () => {
  it('leaves a missing object alone, and writes a status only when it differs', async () => {
    const { api, cache, writer, wrote } = setup();
    expect(await writer.status(cache, REF, () => ({ a: 1 }))).toBe(false);
    api.obj = { metadata: { name: 'web', namespace: 'shop', resourceVersion: '5' }, status: {} };
    cache.note(api.obj);
    expect(await writer.status(cache, REF, () => ({ a: 1 }))).toBe(true);
    expect(await writer.status(cache, REF, () => ({ a: 1 }))).toBe(false);
    expect(wrote).toEqual(['update_status']);
  });
});

describe('ObjectCache.note', () => {
  it('ignores what is older than what it holds', () => {
    const { cache } = setup();
    const at = (rv: string) => ({
      metadata: { namespace: 'shop', name: 'web', resourceVersion: rv },
    });
    cache.note(at('12'));
    cache.note(at('11'));
    expect(cache.get('shop/web')?.metadata?.resourceVersion).toBe('12');
    cache.note(at('13'));
    expect(cache.get('shop/web')?.metadata?.resourceVersion).toBe('13');
  });
});

describe('stampConditions', () => {
  const held = {
    conditions: [
      { type: 'Valid', status: 'True', reason: 'Valid', message: '', lastTransitionTime: 'then' },
      {
        type: 'Ready',
        status: 'False',
        reason: 'Pending',
        message: '',
        lastTransitionTime: 'then',
      },
    ],
    parents: [{ conditions: [{ type: 'Accepted', status: 'True', lastTransitionTime: 'then' }] }],
  };
  it('keeps the time of a condition whose status stays, even when its reason or message change; now when it flips', () => {
    const out = stampConditions(
      {
        conditions: [
          { type: 'Valid', status: 'True', reason: 'Valid', message: 'new words' },
          { type: 'Ready', status: 'True', reason: 'Exported', message: '' },
          { type: 'Conflict', status: 'False', reason: 'NoConflicts', message: '' },
        ],
        parents: [{ conditions: [{ type: 'Accepted', status: 'True' }] }],
      },
      held,
      NOW,
    ) as typeof held;
    expect(out.conditions.map((c) => c.lastTransitionTime)).toEqual([
      'then',
      rfc3339(NOW),
      rfc3339(NOW),
    ]);
    // Nested conditions (Gateway API route parents) the same way.
    expect(out.parents[0]?.conditions[0]?.lastTransitionTime).toBe('then');
  });
});

describe('stampConditions on Gateway API status', () => {
  it('finds a parent by parentRef and controller, a listener by name, wherever they sit in the list', () => {
    const parent = (name: string, time?: string) => ({
      parentRef: { name },
      controllerName: 'fedgate.io/gateway-controller',
      conditions: [
        { type: 'Accepted', status: 'True', ...(time ? { lastTransitionTime: time } : {}) },
      ],
    });
    const out = stampConditions(
      {
        parents: [parent('b'), parent('a')],
        listeners: [{ name: 'https', conditions: [{ type: 'Programmed', status: 'True' }] }],
      },
      {
        parents: [parent('a', 'a-then'), parent('b', 'b-then')],
        listeners: [
          {
            name: 'http',
            conditions: [{ type: 'Programmed', status: 'True', lastTransitionTime: 'http-then' }],
          },
          {
            name: 'https',
            conditions: [{ type: 'Programmed', status: 'True', lastTransitionTime: 'https-then' }],
          },
        ],
      },
      NOW,
    ) as {
      parents: { conditions: { lastTransitionTime: string }[] }[];
      listeners: { conditions: { lastTransitionTime: string }[] }[];
    };
    expect(out.parents.map((p) => p.conditions[0]?.lastTransitionTime)).toEqual([
      'b-then',
      'a-then',
    ]);
    expect(out.listeners[0]?.conditions[0]?.lastTransitionTime).toBe('https-then');
  });
});
