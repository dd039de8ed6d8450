// The admin listener over real HTTP on 127.0.0.1: a real Catalog fed with records,
// the real HealthMonitor's store, Router and EventJournal; only the watchers and the
// demo's controls are stand-ins.
import { request } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterStatus, serviceRecord } from '../../test/fixtures/catalog.ts';
import { backend, httpMatch, rule, tables } from '../../test/helpers/gateway-rules.ts';
import { routeStatus } from '../../test/helpers/gateway-status.ts';
import { Catalog } from '../catalog/catalog.ts';
import { configSchema } from '../config/schema.ts';
import { condition, type StatusReport } from '../gateway/status.ts';
import { HealthMonitor } from '../health/monitor.ts';
import { hostPort } from '../host-port.ts';
import { GatewayRoutes } from '../proxy/gateway.ts';
import { Router } from '../routing/router.ts';
import type { EndpointRecord, ServiceRecord, SliceRecord } from '../watch/records.ts';
import type { WatchStats } from '../watch/resource-watch.ts';
import { type AdminContext, type AdminControls, type AdminServer, startAdmin } from './admin.ts';
import { EventJournal } from './events.ts';
import { Metrics } from './metrics.ts';

const NOW = Date.parse('2025-01-01T00:00:00Z');
const EJECTED_UNTIL = NOW + 30_000;

const config = configSchema.parse({
  federation: { name: 'galaxy', domain: 'example.test' },
  self: { region: 'us-east', zone: 'us-east-a' },
  clusters: [
    { name: 'alpha', kubeconfig: 'alpha.kubeconfig', region: 'us-east' },
    { name: 'beta', kubeconfig: 'beta.kubeconfig', region: 'eu-west', weight: 2 },
  ],
  localities: [{ cidr: '127.19.0.0/16', region: 'eu-west', zone: 'eu-west-a' }],
  http: { aliases: { 'www.example.com': 'shop/web' } },
  health: { active: { enabled: false } },
});

function svc(name: string, over: Partial<ServiceRecord> = {}): ServiceRecord {
  return serviceRecord({ name, createdAt: NOW - 60_000, ...over });
}

type Conditions = EndpointRecord['conditions'];
const READY: Conditions = { ready: true, serving: true, terminating: false };
const NOT_READY: Conditions = { ready: false, serving: false, terminating: false };
const TERMINATING: Conditions = { ready: false, serving: true, terminating: true };

function slice(
  service: string,
  name: string,
  endpoints: [string, string, Conditions][],
): SliceRecord {
  return {
    namespace: 'shop',
    name,
    service,
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: endpoints.map(([address, nodeName, conditions]) => ({
      addresses: [address],
      conditions,
      nodeName,
    })),
  };
}

const WATCH: WatchStats = {
  events: { ADDED: 5, MODIFIED: 2, DELETED: 1, BOOKMARK: 3 },
  relists: { expired: 1, error: 0 },
};

function buildContext(): AdminContext & { catalog: Catalog; health: HealthMonitor } {
  const log = pino({ level: 'silent' });
  const catalog = new Catalog({
    clusters: config.clusters.map((c) => ({ name: c.name, weight: c.weight, region: c.region })),
    now: () => NOW,
  });
  catalog.apply('alpha', 'nodes', 'a1', { name: 'a1', region: 'us-east', zone: 'us-east-a' });
  catalog.apply('alpha', 'nodes', 'a2', { name: 'a2', region: 'us-east', zone: 'us-east-b' });
  catalog.apply('beta', 'nodes', 'b1', { name: 'b1', region: 'eu-west', zone: 'eu-west-a' });
  for (const cluster of ['alpha', 'beta']) {
    catalog.apply(
      cluster,
      'services',
      'shop/web',
      svc('web', { hosts: ['web.example.org'], lbPolicy: 'round-robin' }),
    );
    catalog.apply(cluster, 'serviceexports', 'shop/web', {
      namespace: 'shop',
      name: 'web',
      createdAt: NOW - 60_000,
    });
  }
  catalog.apply('alpha', 'services', 'shop/api', svc('api', { lbPolicy: 'fastest' }));
  catalog.apply('alpha', 'serviceexports', 'shop/api', {
    namespace: 'shop',
    name: 'api',
    createdAt: NOW - 60_000,
  });
  // Not exported: not federated.
  catalog.apply('alpha', 'services', 'shop/internal', svc('internal'));
  catalog.apply(
    'alpha',
    'endpointslices',
    'shop/web-a',
    slice('web', 'web-a', [
      ['127.10.1.1', 'a1', READY],
      ['127.10.1.2', 'a1', READY],
      ['127.10.1.3', 'a2', NOT_READY],
      ['127.10.1.4', 'a2', TERMINATING],
    ]),
  );
  catalog.apply(
    'beta',
    'endpointslices',
    'shop/web-b',
    slice('web', 'web-b', [
      ['127.10.2.1', 'b1', READY],
      ['127.10.2.2', 'b1', READY],
    ]),
  );
  catalog.apply(
    'alpha',
    'endpointslices',
    'shop/api-a',
    slice('api', 'api-a', [['127.10.3.1', 'a1', READY]]),
  );
  catalog.setStatus(clusterStatus('alpha', { lastSyncAt: NOW - 2_500 }));
  catalog.setStatus(
    clusterStatus('beta', {
      state: 'stale',
      lastSyncAt: NOW - 40_000,
      error: { code: 'CLUSTER_UNREACHABLE', message: 'connect ECONNREFUSED 127.0.0.1:6443' },
      exportMode: 'annotation',
    }),
  );
  catalog.flush();

  const health = new HealthMonitor({
    config: config.health,
    addressing: config.dns.addressing,
    log,
    now: () => NOW,
  });
  health.store.setEjection('shop/web', 'alpha/127.10.1.2', EJECTED_UNTIL, 'consecutive-5xx');
  health.store.setCheck('shop/web', 'beta/127.10.2.2', 'unhealthy', 'HTTP 503');
  health.store.setCheck('shop/web', 'beta/127.10.2.1', 'healthy');
  health.update(catalog.current());
  health.report('shop/web', 'beta/127.10.2.2', {
    origin: 'local',
    failure: 'tls',
    detail: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate',
  });
  const router = new Router(
    { ...config.routing, localities: config.localities, self: config.self },
    health.store,
  );
  const journal = new EventJournal({ now: () => NOW });
  const metrics = new Metrics({
    discovery: { catalog, watchers: [], health },
    journal,
    now: () => NOW,
  });
  return {
    catalog,
    router,
    health,
    journal,
    metrics,
    config,
    readiness: () => ({ ready: true, reason: 'ready' }),
    now: () => NOW,
    watchers: [
      {
        name: 'alpha',
        watchStats: () => new Map([['endpointslices', WATCH]]),
        lastContactAt: NOW - 1_000,
      },
    ],
  };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field
  json: any;
}

function call(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method: opts.method ?? 'GET', headers: opts.headers, timeout: 5_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer within 5 s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Reads an event stream until `done` says so (or 5 s pass), then closes it. */
async function readStream(
  url: string,
  headers: Record<string, string>,
  done: (text: string) => boolean,
  whileOpen?: () => void,
): Promise<{ status: number; type: string | null; text: string }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 5_000);
  const res = await fetch(url, { headers, signal: abort.signal });
  let text = '';
  let poked = false;
  try {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    while (!done(text)) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      text += decoder.decode(value, { stream: true });
      if (!poked && whileOpen && text.includes('event: hello')) {
        poked = true;
        whileOpen();
      }
    }
  } catch (e) {
    if (!abort.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return { status: res.status, type: res.headers.get('content-type'), text };
}

/** `data:` payloads of the default (unnamed) events in a stream's text. */
function streamEvents(text: string): { id: string; data: { seq: number; message: string } }[] {
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('id: '))
    .map((block) => {
      const id = /^id: (.*)$/m.exec(block)![1]!;
      return { id, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) };
    });
}

describe('admin listener', () => {
  let ctx: ReturnType<typeof buildContext>;
  let admin: AdminServer;
  let base: string;

  beforeAll(async () => {
    ctx = buildContext();
    admin = await startAdmin({ host: '127.0.0.1', port: 0 }, ctx, { heartbeatMs: 50 });
    base = `http://127.0.0.1:${admin.address.port}`;
  });

  afterAll(async () => {
    await admin?.close();
    await ctx?.health.stop();
  });

  it('keeps /healthz, /readyz, /catalog and /metrics', async () => {
    expect((await call(base, '/healthz')).text).toBe('ok\n');
    expect((await call(base, '/readyz')).status).toBe(200);
    const catalog = await call(base, '/catalog');
    expect(catalog.json.services.map((s: { key: string }) => s.key).sort()).toEqual([
      'shop/api',
      'shop/web',
    ]);
    const metrics = await call(base, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^fedgate_cluster_up\{cluster="beta",state="stale"\} 0$/m);
  });

  it('/debug/clusters: sync state, age, error, export mode and watch counters of every cluster', async () => {
    const r = await call(base, '/debug/clusters');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json.federation).toEqual({ name: 'galaxy', domain: 'example.test' });
    expect(r.json.clusters).toEqual([
      {
        name: 'alpha',
        region: 'us-east',
        weight: 1,
        state: 'synced',
        syncedOnce: true,
        lastSyncAt: new Date(NOW - 2_500).toISOString(),
        secondsSinceSync: 2.5,
        error: null,
        exportMode: 'ServiceExport',
        lastContactAt: new Date(NOW - 1_000).toISOString(),
        watches: { endpointslices: WATCH },
      },
      {
        name: 'beta',
        region: 'eu-west',
        weight: 2,
        state: 'stale',
        syncedOnce: true,
        lastSyncAt: new Date(NOW - 40_000).toISOString(),
        secondsSinceSync: 40,
        error: { code: 'CLUSTER_UNREACHABLE', message: 'connect ECONNREFUSED 127.0.0.1:6443' },
        exportMode: 'annotation',
        lastContactAt: null,
        watches: null,
      },
    ]);
  });

  it('/debug/services: every federated service with endpoints by cluster, zone and state, and the plan for self', async () => {
    const r = await call(base, '/debug/services');
    expect(r.status).toBe(200);
    expect(r.json.self).toEqual({ region: 'us-east', zone: 'us-east-a' });
    const keys = r.json.services.map((s: { key: string }) => s.key);
    expect(keys).toEqual(['shop/api', 'shop/web']);
    const [api, web] = r.json.services;
    expect(web).toMatchObject({
      type: 'ClusterSetIP',
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
      hosts: ['web.example.org'],
      lbPolicy: 'round-robin',
      picker: { policy: 'round-robin', source: 'annotation', problem: null },
      dnsMode: null,
      addressing: 'endpoints',
      clusters: ['alpha', 'beta'],
    });
    expect(web.names.sort()).toEqual([
      'web.example.org',
      'web.shop.galaxy.svc.example.test',
      'web.shop.svc.clusterset.local',
      'www.example.com',
    ]);
    const zero = { ready: 0, 'not-ready': 0, terminating: 0, ejected: 0, 'check-failing': 0 };
    expect(web.endpoints).toEqual({
      total: { ready: 2, 'not-ready': 1, terminating: 1, ejected: 1, 'check-failing': 1 },
      clusters: [
        {
          cluster: 'alpha',
          sync: 'synced',
          zones: [
            { region: 'us-east', zone: 'us-east-a', ...zero, ready: 1, ejected: 1 },
            { region: 'us-east', zone: 'us-east-b', ...zero, 'not-ready': 1, terminating: 1 },
          ],
        },
        {
          cluster: 'beta',
          sync: 'stale',
          zones: [{ region: 'eu-west', zone: 'eu-west-a', ...zero, ready: 1, 'check-failing': 1 }],
        },
      ],
    });
    // One of two eligible in fedgate's zone: health 0.5 × 1.4 keeps 70 % there.
    expect(web.plan.client).toMatchObject({ locality: { region: 'us-east', zone: 'us-east-a' } });
    expect(web.plan.tiers[0]).toMatchObject({ scope: 'zone', verdict: 'serves', eligible: 1 });
    expect(web.plan.tiers[0].load).toBeCloseTo(0.7);
    expect(web.plan.excluded).toBe(4);
    expect(web.plan.summary).toMatch(/^shop\/web for client .*us-east\/us-east-a/);
    // An annotation the proxy cannot use is said, and the default applies.
    expect(api.picker).toEqual({
      policy: 'p2c',
      source: 'default',
      problem: expect.stringMatching(/^fedgate.io\/lb-policy ignored: unknown picker "fastest"/),
    });
  });

  it('/debug/services/<ns>/<name>: members, endpoints with their health, plans for self and every locality', async () => {
    const r = await call(base, '/debug/services/shop/web');
    expect(r.status).toBe(200);
    expect(r.json.key).toBe('shop/web');
    const alpha = r.json.members.find((m: { cluster: string }) => m.cluster === 'alpha');
    expect(alpha.sync).toBe('synced');
    const byAddress = Object.fromEntries(
      r.json.members.flatMap((m: { endpoints: { address: string }[] }) =>
        m.endpoints.map((e) => [e.address, e]),
      ),
    );
    expect(byAddress['127.10.1.2']).toEqual({
      id: 'alpha/127.10.1.2',
      address: '127.10.1.2',
      addresses: ['127.10.1.2'],
      addressType: 'IPv4',
      region: 'us-east',
      zone: 'us-east-a',
      subzone: null,
      node: 'a1',
      hostname: null,
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      conditions: READY,
      state: 'ejected',
      health: {
        check: 'unknown',
        checkDetail: null,
        ejectedUntil: new Date(EJECTED_UNTIL).toISOString(),
        ejectionReason: 'consecutive-5xx',
      },
      lastTlsFailure: null,
    });
    expect(byAddress['127.10.2.2']).toMatchObject({
      state: 'check-failing',
      health: { check: 'unhealthy', checkDetail: 'HTTP 503', ejectedUntil: null },
      // The proxy's last failed TLS handshake with it, and when.
      lastTlsFailure: {
        detail: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate',
        at: new Date(NOW).toISOString(),
      },
    });
    // A passing verdict is shown too, though routing does not need it.
    expect(byAddress['127.10.2.1']).toMatchObject({ state: 'ready', health: { check: 'healthy' } });
    expect(byAddress['127.10.1.1']).toMatchObject({ state: 'ready', health: null });
    expect(byAddress['127.10.1.4']).toMatchObject({ state: 'terminating' });

    const { self, localities } = r.json.plans;
    expect(self.locality).toEqual({ region: 'us-east', zone: 'us-east-a' });
    expect(self.explanation.excluded).toContainEqual(
      expect.objectContaining({
        id: 'alpha/127.10.1.2',
        reasons: ['ejected'],
        reason: expect.stringContaining(new Date(EJECTED_UNTIL).toISOString()),
      }),
    );
    expect(localities).toHaveLength(1);
    expect(localities[0].rule).toEqual({
      cidr: '127.19.0.0/16',
      region: 'eu-west',
      zone: 'eu-west-a',
    });
    expect(localities[0].explanation.client.locality).toMatchObject({
      region: 'eu-west',
      zone: 'eu-west-a',
    });
    // From eu-west the nearest fresh data is in us-east: beta is stale, ranked behind.
    expect(localities[0].explanation.tiers[0]).toMatchObject({ scope: 'zone', stale: true });

    const unknown = await call(base, '/debug/services/shop/nope');
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({ error: 'no federated service "shop/nope"' });
    expect((await call(base, '/debug/services/shop/internal')).status).toBe(404);
    expect((await call(base, '/debug/services/shop/%E0%A4%A')).status).toBe(400);
  });

  it('/debug/explain: resolves a host as the proxy does and explains the plan', async () => {
    const explain = (q: string) => call(base, `/debug/explain?${q}`);
    const mcs = await explain('host=web.shop.svc.clusterset.local');
    expect(mcs.status).toBe(200);
    expect(mcs.json).toMatchObject({
      host: 'web.shop.svc.clusterset.local',
      service: 'shop/web',
      route: { kind: 'mcs', locality: null },
      from: 'self',
      client: { source: 'given', locality: { region: 'us-east', zone: 'us-east-a' } },
    });
    expect(mcs.json.tiers[0]).toMatchObject({ scope: 'zone', verdict: 'serves' });

    // A client by address, located through the table; the Host-header forms normalize.
    const client = await explain('host=WWW.Example.COM.:8080&client=127.19.1.2');
    expect(client.json).toMatchObject({
      host: 'www.example.com',
      route: { kind: 'alias' },
      from: 'client',
      client: { address: '127.19.1.2', source: 'table', locality: { zone: 'eu-west-a' } },
    });
    expect(client.json.note).toMatch(/http.locality: self/);
    expect((await explain('host=web.shop.galaxy.svc.example.test')).json.route.kind).toBe(
      'federation',
    );
    expect((await explain('host=web.example.org')).json.route.kind).toBe('annotation');

    // A zonal federation name routes from the zone it names, whoever asks.
    const zonal = await explain(
      'host=web.shop.galaxy.svc.eu-west-a.eu-west.example.test&client=127.11.1.1',
    );
    expect(zonal.json).toMatchObject({
      route: { kind: 'zone', locality: { region: 'eu-west', zone: 'eu-west-a' } },
      from: 'route',
      client: { source: 'given', locality: { region: 'eu-west', zone: 'eu-west-a' } },
    });
    const regional = await explain('host=web.shop.galaxy.svc.us-east.example.test');
    expect(regional.json.route).toEqual({ kind: 'region', locality: { region: 'us-east' } });

    expect(await explain('')).toMatchObject({ status: 400, json: { error: 'host is required' } });
    const badClient = await explain('host=www.example.com&client=not-an-ip');
    expect(badClient.status).toBe(400);
    expect(badClient.json.error).toMatch(/client must be an IP address/);
    expect((await explain('host=[::1]:80')).status).toBe(400);
    const unknown = await explain('host=nothing.example.net');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatch(/no federated service answers to "nothing.example.net"/);
  });

  it('/events lists the journal after a sequence number', async () => {
    const first = ctx.journal.record({ kind: 'cluster', cluster: 'beta', message: 'one' });
    const second = ctx.journal.record({ kind: 'failover', service: 'shop/web', message: 'two' });
    const all = await call(base, '/events');
    expect(all.json.lastSeq).toBe(second.seq);
    const after = await call(base, `/events?after=${first.seq}`);
    expect(after.json.events).toEqual([{ ...second, time: new Date(NOW).toISOString() }]);
    expect((await call(base, '/events?after=-1')).status).toBe(400);
    expect((await call(base, '/events?limit=x')).status).toBe(400);
  });

  it('/events/stream sends the backlog, then each event as it is recorded, with heartbeats', async () => {
    const before = ctx.journal.record({ kind: 'ejection', message: 'before the stream' });
    const got = await readStream(
      `${base}/events/stream?after=${before.seq - 1}`,
      {},
      (t) => t.includes('live one') && t.includes(': heartbeat') && t.includes('event: changed'),
      () => {
        ctx.journal.record({ kind: 'action', message: 'live one <b>as text</b>' });
        // A catalog change is told as `changed`, for the page to refresh at once.
        ctx.catalog.apply('alpha', 'endpointslices', 'shop/api-a', slice('api', 'api-a', []));
      },
    );
    expect(got.status).toBe(200);
    expect(got.type).toBe('text/event-stream; charset=utf-8');
    const events = streamEvents(got.text);
    expect(events.map((e) => e.data.message)).toEqual([
      'before the stream',
      'live one <b>as text</b>',
    ]);
    expect(events[0]!.id).toBe(String(before.seq));
    expect(got.text).toMatch(/^retry: \d+\nevent: hello\ndata: \{"lastSeq":\d+/);

    // A reconnecting EventSource sends Last-Event-ID and gets only what it missed.
    const missed = ctx.journal.record({ kind: 'return', message: 'missed' });
    const resumed = await readStream(
      `${base}/events/stream`,
      { 'Last-Event-ID': String(missed.seq - 1) },
      (t) => t.includes('missed'),
    );
    expect(streamEvents(resumed.text).map((e) => e.data.message)).toEqual(['missed']);
    // An id past the journal's end (fedgate restarted since): everything kept is sent.
    const restarted = await readStream(
      `${base}/events/stream?after=${missed.seq}`,
      { 'Last-Event-ID': String(missed.seq + 1000) },
      (t) => t.includes('missed'),
    );
    expect(streamEvents(restarted.text).map((e) => e.data.seq)).toEqual(
      ctx.journal.recent().map((e) => e.seq),
    );
    expect((await call(base, '/events/stream?after=x')).status).toBe(400);
  });

  it('the stream stops listening to the journal when the client goes', async () => {
    let active = 0;
    const subscribe = ctx.journal.subscribe.bind(ctx.journal);
    ctx.journal.subscribe = (fn) => {
      active++;
      const off = subscribe(fn);
      return () => {
        active--;
        return off();
      };
    };
    try {
      let during = -1;
      await readStream(
        `${base}/events/stream`,
        {},
        (t) => t.includes('event: hello'),
        () => {
          during = active;
        },
      );
      expect(during).toBe(1);
      const deadline = Date.now() + 5_000;
      while (active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(active).toBe(0);
    } finally {
      ctx.journal.subscribe = subscribe;
    }
  });

  it('answers 405 to other methods and 404 to unknown paths, and has no controls unless given', async () => {
    const post = await call(base, '/debug/clusters', { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await call(base, '/debug/nothing')).status).toBe(404);
    expect((await call(base, '/demo/actions')).status).toBe(404);
    const run = await call(base, '/demo/actions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"action":"fail-zone","args":["a"]}',
    });
    expect(run.status).toBe(404);
  });

  it('serves the status page and its assets, same-origin only', async () => {
    const page = await call(base, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(page.text).toContain('<script src="status-page.js" defer></script>');
    const js = await call(base, '/status-page.js');
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.text).toContain("new EventSource('events/stream')");
    // No markup from data: everything goes in as text.
    expect(js.text).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect((await call(base, '/status-page.css')).headers['content-type']).toBe(
      'text/css; charset=utf-8',
    );
  });
});

describe('admin listener with the demo controls', () => {
  let admin: AdminServer;
  let base: string;
  let ctx: ReturnType<typeof buildContext>;
  const ran: string[] = [];
  const controls: AdminControls = {
    actions: [
      { name: 'fail-zone', args: 'ZONE', help: 'stop every backend in ZONE' },
      { name: 'restore-zone', args: 'ZONE', help: 'bring ZONE back' },
    ],
    run: async (name, args) => {
      if (args[0] === 'atlantis') throw new Error('unknown zone "atlantis"');
      ran.push(`${name} ${args.join(' ')}`);
      return `zone ${args[0]} failed`;
    },
    status: () => ({ failedZones: ran.length > 0 ? ['us-east-a'] : [], clusters: [] }),
  };

  beforeAll(async () => {
    ctx = buildContext();
    admin = await startAdmin({ host: '127.0.0.1', port: 0 }, { ...ctx, controls });
    base = `http://127.0.0.1:${admin.address.port}`;
  });

  afterAll(async () => {
    await admin?.close();
    await ctx?.health.stop();
  });

  const post = (body: string, headers: Record<string, string>) =>
    call(base, '/demo/actions', { method: 'POST', headers, body });
  const JSON_TYPE = { 'Content-Type': 'application/json' };

  it('lists the actions with the federation status', async () => {
    const r = await call(base, '/demo/actions');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      actions: controls.actions,
      status: { failedZones: [], clusters: [] },
    });
  });

  it('runs an action posted as JSON from the same origin', async () => {
    const r = await post('{"action":"fail-zone","args":["us-east-a"]}', {
      ...JSON_TYPE,
      Origin: base,
      'Sec-Fetch-Site': 'same-origin',
    });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ ok: true, message: 'zone us-east-a failed' });
    expect(ran).toEqual(['fail-zone us-east-a']);
    expect((await call(base, '/demo/actions')).json.status.failedZones).toEqual(['us-east-a']);
  });

  it('answers 400 with the reason when the action fails or the request is wrong', async () => {
    const failed = await post('{"action":"fail-zone","args":["atlantis"]}', JSON_TYPE);
    expect(failed.status).toBe(400);
    expect(failed.json).toEqual({ ok: false, error: 'unknown zone "atlantis"' });
    const unknown = await post('{"action":"format-disk"}', JSON_TYPE);
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatch(/^unknown action "format-disk"/);
    expect((await post('{"action":', JSON_TYPE)).status).toBe(400);
    expect((await post('{"action":"fail-zone","args":[1]}', JSON_TYPE)).status).toBe(400);
    expect((await post(`{"action":"${'x'.repeat(20_000)}"}`, JSON_TYPE)).status).toBe(413);
  });

  it('refuses cross-site requests: no JSON type, a foreign Origin, a foreign site, a rebound Host', async () => {
    const body = '{"action":"fail-zone","args":["us-east-b"]}';
    // What an HTML form on another site can send.
    const form = await post(body, { 'Content-Type': 'text/plain' });
    expect(form.status).toBe(415);
    expect((await post(body, {})).status).toBe(415);
    const origin = await post(body, { ...JSON_TYPE, Origin: 'http://evil.example' });
    expect(origin.status).toBe(403);
    expect(origin.json.error).toMatch(/cross-origin/);
    expect((await post(body, { ...JSON_TYPE, Origin: 'null' })).status).toBe(403);
    const site = await post(body, { ...JSON_TYPE, 'Sec-Fetch-Site': 'cross-site' });
    expect(site.status).toBe(403);
    // DNS rebinding: the page's own origin, but a name in Host.
    const rebound = await post(body, {
      ...JSON_TYPE,
      Host: `evil.example:${admin.address.port}`,
      Origin: `http://evil.example:${admin.address.port}`,
    });
    expect(rebound.status).toBe(403);
    expect(rebound.json.error).toMatch(/Host/);
    const localhost = await post(body, {
      ...JSON_TYPE,
      Host: `localhost:${admin.address.port}`,
      Origin: `http://localhost:${admin.address.port}`,
    });
    expect(localhost.status).toBe(200);
    expect(ran).toEqual(['fail-zone us-east-a', 'fail-zone us-east-b']);
    expect((await call(base, '/demo/actions', { method: 'PUT', body })).status).toBe(405);
  });
});

describe('admin listener with Gateway API routes', () => {
  let ctx: ReturnType<typeof buildContext>;
  let admin: AdminServer;
  let base: string;

  beforeAll(async () => {
    ctx = buildContext();
    const gateway = new GatewayRoutes();
    const listener = hostPort(ctx.config.http.listen[0] ?? { host: '0.0.0.0', port: 8080 });
    const routeTables = tables(listener, {
      'gw.example.test': [
        rule({
          route: 'shop/edge',
          matches: [httpMatch({ path: { type: 'PathPrefix', value: '/api' }, method: 'POST' })],
          backends: [backend('shop/api')],
        }),
        rule({ route: 'shop/edge', index: 1, backends: [backend('shop/web')] }),
      ],
    });
    gateway.set(routeTables);
    const accepted = condition(1, 'Accepted', true, 'Accepted', 'accepted by fedgate');
    const report: StatusReport = {
      objects: [routeStatus('shop/edge', { name: 'gw' }, [accepted])],
    };
    admin = await startAdmin(
      { host: '127.0.0.1', port: 0 },
      { ...ctx, gateway, gatewayApi: { report, tables: routeTables } },
    );
    base = `http://127.0.0.1:${admin.address.port}`;
  });

  afterAll(async () => {
    await admin?.close();
    await ctx?.health.stop();
  });

  it('/debug/gateway: the routes with their conditions, and the requests each rule matched', async () => {
    ctx.metrics.ruleMatched('shop/edge', 1);
    ctx.metrics.ruleMatched('shop/edge', 1);
    const g = await call(base, '/debug/gateway');
    expect(g.status).toBe(200);
    expect(g.json).toMatchObject({
      gateways: [],
      routes: [
        {
          kind: 'HTTPRoute',
          namespace: 'shop',
          name: 'edge',
          parents: [
            {
              gateway: 'shop/gw',
              conditions: [{ type: 'Accepted', status: 'True', message: 'accepted by fedgate' }],
            },
          ],
          rules: [
            { index: 0, matches: ['POST PathPrefix /api'], requests: 0, share: 0 },
            { index: 1, backends: [{ service: 'shop/web', weight: 1 }], requests: 2, share: 1 },
          ],
        },
      ],
    });
  });

  it('/debug/explain: the rule a request takes, why the ones before failed, then the plan', async () => {
    const e = await call(base, '/debug/explain?host=gw.example.test&path=/api/x&method=GET');
    expect(e.status).toBe(200);
    expect(e.json).toMatchObject({
      host: 'gw.example.test',
      service: 'shop/web',
      route: { kind: 'gateway' },
      gateway: {
        matched: { route: 'shop/edge', rule: 1 },
        misses: [{ route: 'shop/edge', rule: 0, why: 'method is not POST' }],
        decision: { kind: 'backend', chosen: 'shop/web' },
      },
    });
    expect(e.json.tiers.length).toBeGreaterThan(0);
    const post = await call(base, '/debug/explain?host=gw.example.test&path=/api/x&method=POST');
    expect(post.json.service).toBe('shop/api');
    // A host no route covers reads as before, without a gateway part.
    const mcs = await call(base, '/debug/explain?host=web.shop.svc.clusterset.local');
    expect(mcs.json.route.kind).toBe('mcs');
    expect(mcs.json).not.toHaveProperty('gateway');
  });
});
