// The admin listener: liveness, readiness, the catalog as JSON, Prometheus metrics,
// the /debug views, the event journal (as JSON and as a live stream), the status
// page, and in the demo the failure buttons' actions.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Catalog } from '../catalog/catalog.ts';
import type { Snapshot } from '../catalog/model.ts';
import type { Config, ListenAddress } from '../config/schema.ts';
import type { ResolvedSelf } from '../config/self.ts';
import type { HealthMonitor } from '../health/monitor.ts';
import type { GatewayRoutes } from '../proxy/gateway.ts';
import { HostTable, hostRules } from '../proxy/hosts.ts';
import type { Router } from '../routing/router.ts';
import { clustersJson, explainHost, serviceJson, servicesJson, type WatchSource } from './debug.ts';
import { type GatewayApiReader, gatewayJson } from './debug-gateway.ts';
import type { EventJournal, FedgateEvent } from './events.ts';
import type { Metrics } from './metrics.ts';

export type { WatchSource } from './debug.ts';

/** The demo's failure controls: the local federation's actions, run in-process. */
export interface AdminControls {
  readonly actions: readonly {
    readonly name: string;
    readonly args: string;
    readonly help: string;
  }[];
  /** Runs one action; rejects with a message for people when it cannot. */
  run(name: string, args: readonly string[]): Promise<string>;
  /** What is running and what is broken (the local federation's description). */
  status(): unknown | Promise<unknown>;
}

/** Everything the admin listener reads. */
export interface AdminContext {
  readonly catalog: Catalog;
  readonly router: Router;
  readonly health: HealthMonitor;
  readonly journal: EventJournal;
  readonly metrics: Metrics;
  readonly config: Config;
  /** /readyz: false until startup is done and while draining. */
  readiness(): { ready: boolean; reason: string };
  readonly controls?: AdminControls;
  readonly now?: () => number;
  /** The member clusters' watchers (Discovery.watchers): /debug/clusters shows their watch counters. */
  readonly watchers?: readonly WatchSource[];
  /** The proxy's Gateway API routes (ProxyServer.gateway): /debug/explain matches them first. */
  readonly gateway?: GatewayRoutes | undefined;
  /** The Gateway API's last compilation (GatewayFeed): /debug/gateway shows it. */
  readonly gatewayApi?: GatewayApiReader;
  /** How this replica's locality was found: /debug/clusters and /debug/explain say. */
  readonly selfFrom?: ResolvedSelf | undefined;
}

export interface AdminOptions {
  /** Comment lines on idle event streams, so proxies and browsers keep them open. */
  readonly heartbeatMs?: number;
  /** Event streams open at once; more get 503. */
  readonly maxStreams?: number;
}

export const DEFAULT_HEARTBEAT_MS = 15_000;
export const DEFAULT_MAX_STREAMS = 64;
/** Catalog and health changes are told to streams at most this often. */
const CHANGE_COALESCE_MS = 200;
/** A stream whose reader falls this far behind is cut; the browser reconnects. */
const MAX_STREAM_BUFFER = 1 << 20;
/** Events sent to a new stream before live ones. */
const STREAM_BACKLOG = 200;
const MAX_ACTION_BODY = 16 * 1024;

export interface AdminServer {
  readonly server: Server;
  readonly address: ListenAddress;
  close(): Promise<void>;
}

/** The snapshot as JSON: Maps become objects, stale clusters say how old their data is. */
export function snapshotJson(s: Snapshot, now: number): unknown {
  return {
    version: s.version,
    createdAt: new Date(s.createdAt).toISOString(),
    clusters: Object.fromEntries(
      [...s.clusters].map(([name, c]) => [
        name,
        {
          ...c,
          lastSyncAt: c.lastSyncAt ? new Date(c.lastSyncAt).toISOString() : null,
          staleForMs: c.state === 'stale' && c.lastSyncAt ? now - c.lastSyncAt : null,
        },
      ]),
    ),
    services: [...s.services.values()].map((svc) => ({
      ...svc,
      clusters: svc.clusters.map((m) => ({ ...m, sync: m.sync.state })),
    })),
  };
}

export function eventJson(e: FedgateEvent): unknown {
  return { ...e, time: new Date(e.at).toISOString() };
}

// The page: four files read once at start, served as they are (no build step).
const PAGE_FILES = {
  '/': ['status-page.html', 'text/html; charset=utf-8'],
  '/status-page.css': ['status-page.css', 'text/css; charset=utf-8'],
  '/status-page.js': ['status-page.js', 'text/javascript; charset=utf-8'],
  '/status-traffic.js': ['status-traffic.js', 'text/javascript; charset=utf-8'],
} as const;

const PAGE_HEADERS = {
  // Only its own script, style and API: nothing inline, nothing from elsewhere.
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

async function loadPage(): Promise<Map<string, { body: Buffer; type: string }>> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [path, [file, type]] of Object.entries(PAGE_FILES)) {
    files.set(path, { body: await readFile(new URL(file, import.meta.url)), type });
  }
  return files;
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const json = typeof body !== 'string';
  res.writeHead(status, {
    'Content-Type': json ? 'application/json' : 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(json ? `${JSON.stringify(body, null, 2)}\n` : `${body}\n`);
}

const fail = (
  res: ServerResponse,
  status: number,
  error: string,
  headers?: Record<string, string>,
) => send(res, status, { error }, headers);

/** A non-negative whole number from a query parameter or header; undefined when absent; NaN when bad. */
function seqParam(raw: string | null | undefined): number | undefined {
  if (raw === null || raw === undefined || raw === '') return undefined;
  return /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
}

/**
 * The controls change the demo, so a web page elsewhere must not reach them: only a
 * JSON body (a cross-site form cannot send one, and fetch would need CORS we never
 * grant), no foreign Origin, and the Host must be an address or localhost (a DNS
 * rebinding page has its own name in Host).
 */
function crossSiteProblem(req: IncomingMessage): { status: number; error: string } | undefined {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return { status: 415, error: 'actions take a JSON body: Content-Type: application/json' };
  }
  const host = req.headers.host ?? '';
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  if (!(isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost'))) {
    return {
      status: 403,
      error: `actions are refused for Host "${host}": use an address or localhost`,
    };
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const own = [`http://${host}`, `https://${host}`];
    if (!own.includes(origin.toLowerCase())) {
      return { status: 403, error: `cross-origin action refused (Origin ${origin})` };
    }
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { status: 403, error: `cross-site action refused (Sec-Fetch-Site: ${site})` };
  }
  return undefined;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        resolve(undefined);
        req.pause();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startAdmin(
  listen: ListenAddress,
  ctx: AdminContext,
  opts: AdminOptions = {},
): Promise<AdminServer> {
  const { catalog, metrics, journal, controls } = ctx;
  const now = ctx.now ?? Date.now;
  const heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
  const page = await loadPage();
  // The proxy's host rules follow the config, which a reload replaces.
  let hostsFor: { config: Config; table: HostTable } | undefined;
  const hostTable = (): HostTable => {
    if (hostsFor?.config !== ctx.config)
      hostsFor = { config: ctx.config, table: new HostTable(hostRules(ctx.config)) };
    return hostsFor.table;
  };

  // Open event streams, each told when the catalog or health changed (coalesced).
  const streams = new Set<{ changed(data: string): void; end(): void }>();
  let pending: NodeJS.Timeout | undefined;
  const changed = () => {
    if (streams.size === 0 || pending) return;
    pending = setTimeout(() => {
      pending = undefined;
      const data = JSON.stringify({
        catalogVersion: catalog.current().version,
        healthVersion: ctx.health.store.version,
      });
      for (const s of streams) s.changed(data);
    }, CHANGE_COALESCE_MS);
  };
  const unsubscribe: Array<() => void> = [];

  const stream = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const after = seqParam(url.searchParams.get('after'));
    if (Number.isNaN(after)) return fail(res, 400, 'after must be an event sequence number');
    if (streams.size >= maxStreams) return fail(res, 503, 'too many open event streams');
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store, no-transform',
      'X-Content-Type-Options': 'nosniff',
      // nginx and friends would otherwise hold the stream back.
      'X-Accel-Buffering': 'no',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const write = (text: string) => {
      if (res.writableLength > MAX_STREAM_BUFFER) res.destroy();
      else res.write(text);
    };
    // A reconnecting EventSource says where it was (and wins over the URL's `after`);
    // a position past the journal's end means fedgate restarted: everything is sent,
    // and `hello` tells the page to start over.
    const lastId = seqParam(req.headers['last-event-id'] as string | undefined);
    let from = (Number.isNaN(lastId) ? undefined : lastId) ?? after ?? 0;
    if (from > journal.lastSeq) from = 0;
    write(
      `retry: 2000\nevent: hello\ndata: ${JSON.stringify({ lastSeq: journal.lastSeq, catalogVersion: catalog.current().version })}\n\n`,
    );
    const event = (e: FedgateEvent) =>
      write(`id: ${e.seq}\ndata: ${JSON.stringify(eventJson(e))}\n\n`);
    for (const e of journal.recent({ afterSeq: from, limit: STREAM_BACKLOG })) event(e);
    const stopEvents = journal.subscribe(event);
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), heartbeatMs);
    const entry = {
      changed: (data: string) => write(`event: changed\ndata: ${data}\n\n`),
      end: () => res.end(),
    };
    streams.add(entry);
    res.on('close', () => {
      stopEvents();
      clearInterval(heartbeat);
      streams.delete(entry);
    });
  };

  const demoActions = async (req: IncomingMessage, res: ServerResponse) => {
    if (!controls)
      return fail(res, 404, 'no demo controls here: they exist only in `fedgate demo`');
    if (req.method === 'GET' || req.method === 'HEAD') {
      return send(res, 200, { actions: controls.actions, status: await controls.status() });
    }
    if (req.method !== 'POST') {
      return fail(res, 405, 'method not allowed', { Allow: 'GET, HEAD, POST' });
    }
    const problem = crossSiteProblem(req);
    if (problem) return fail(res, problem.status, problem.error);
    const raw = await readBody(req, MAX_ACTION_BODY);
    if (!raw)
      return fail(res, 413, `the body is over ${MAX_ACTION_BODY} bytes`, { Connection: 'close' });
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return fail(
        res,
        400,
        'the body must be JSON: {"action": "fail-zone", "args": ["us-east-a"]}',
      );
    }
    const { action, args = [] } = (body ?? {}) as { action?: unknown; args?: unknown };
    if (typeof action !== 'string') return fail(res, 400, 'action must be a string');
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
      return fail(res, 400, 'args must be a list of strings');
    }
    if (!controls.actions.some((a) => a.name === action)) {
      return fail(
        res,
        400,
        `unknown action "${action}" (have: ${controls.actions.map((a) => a.name).join(', ')})`,
      );
    }
    try {
      const message = await controls.run(action, args as string[]);
      send(res, 200, { ok: true, message });
    } catch (e) {
      send(res, 400, { ok: false, error: (e as Error).message });
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    if (path === '/demo/actions') return demoActions(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return fail(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
    }
    const file = page.get(path);
    if (file) {
      res.writeHead(200, {
        'Content-Type': file.type,
        'X-Content-Type-Options': 'nosniff',
        ...PAGE_HEADERS,
      });
      return void res.end(file.body);
    }
    if (path === '/healthz') return send(res, 200, 'ok');
    if (path === '/readyz') {
      const r = ctx.readiness();
      return r.ready ? send(res, 200, r.reason) : send(res, 503, `not ready: ${r.reason}`);
    }
    if (path === '/catalog') return send(res, 200, snapshotJson(catalog.current(), now()));
    if (path === '/metrics') {
      try {
        const { contentType, text } = await metrics.scrape();
        res.writeHead(200, { 'Content-Type': contentType });
        return void res.end(text);
      } catch (e) {
        return send(res, 500, `metrics failed: ${(e as Error).message}`);
      }
    }
    if (path === '/debug/clusters')
      return send(res, 200, clustersJson(ctx, catalog.current(), now()));
    if (path === '/debug/services') {
      return send(res, 200, servicesJson(ctx, hostTable(), catalog.current(), now()));
    }
    const one = /^\/debug\/services\/([^/]+)\/([^/]+)$/.exec(path);
    if (one) {
      let key: string;
      try {
        key = `${decodeURIComponent(one[1]!)}/${decodeURIComponent(one[2]!)}`;
      } catch {
        return fail(res, 400, 'malformed percent-encoding in the service name');
      }
      const body = serviceJson(ctx, hostTable(), catalog.current(), key, now());
      return body === undefined
        ? fail(res, 404, `no federated service "${key}"`)
        : send(res, 200, body);
    }
    if (path === '/debug/explain') {
      const a = explainHost(ctx, hostTable(), catalog.current(), url.searchParams, now());
      return send(res, a.status, a.body);
    }
    if (path === '/debug/gateway') {
      const api = ctx.gatewayApi ?? { report: undefined, tables: { listeners: [] } };
      return send(res, 200, gatewayJson(api, await metrics.ruleRequests()));
    }
    if (path === '/debug/traffic') {
      return send(res, 200, await metrics.trafficView());
    }
    if (path === '/events') {
      const after = seqParam(url.searchParams.get('after'));
      const limit = seqParam(url.searchParams.get('limit'));
      if (Number.isNaN(after)) return fail(res, 400, 'after must be an event sequence number');
      if (Number.isNaN(limit)) return fail(res, 400, 'limit must be a whole number');
      const events = journal.recent({
        ...(after !== undefined ? { afterSeq: after } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      return send(res, 200, { lastSeq: journal.lastSeq, events: events.map(eventJson) });
    }
    if (path === '/events/stream') return stream(req, res, url);
    return fail(res, 404, `nothing at ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent) res.destroy();
      else fail(res, 500, `admin request failed: ${(e as Error).message}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  unsubscribe.push(catalog.subscribe(changed), ctx.health.store.subscribe(changed));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  return {
    server,
    address: { host: listen.host, port },
    close: () =>
      new Promise<void>((resolve) => {
        for (const u of unsubscribe) u();
        clearTimeout(pending);
        for (const s of streams) s.end();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
