// One member cluster's API server: HTTPS with its own certificate, a bearer token,
// discovery, list/watch/get/create/update/patch/delete with kube-apiserver's wire
// behaviour, and fault controls (refuse, hang, drop watches) for tests and demos.

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { hostPort } from '../host-port.ts';
import {
  apiGroupDoc,
  apiGroupList,
  apiResourceList,
  apiVersions,
  SERVER_VERSION,
} from './discovery.ts';
import { pruneUnknownFields } from './fields.ts';
import { Listener } from './listener.ts';
import type { FaultMode } from './member.ts';
import { isRecord, type KubeObject } from './objects.ts';
import { openApiDocument, openApiRoot } from './openapi.ts';
import { Registry } from './registry.ts';
import { findType, type ResourceType } from './resources.ts';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from './selectors.ts';
import { ApiError, errors } from './status.ts';
import { Expired } from './store.ts';
import { type IncludeObject, toTable, wantsTable } from './table.ts';
import { WatchStream } from './watch.ts';

export interface ApiServerOptions {
  name: string;
  registry: Registry;
  host: string;
  port: number;
  token: string;
  tls: { key: string; cert: string };
  /** How often an idle watch that asked for bookmarks gets one (kube-apiserver: about a minute). */
  bookmarkIntervalMs?: number | undefined;
  /** Watches without timeoutSeconds end after a random time in [min, 2*min) (kube-apiserver: --min-request-timeout=1800). */
  minRequestTimeoutSeconds?: number | undefined;
  /** How long a list for a future resourceVersion waits before 504 (kube-apiserver: 3 s). */
  tooLargeWaitMs?: number | undefined;
  /** API groups this server does not serve, as when a CRD is not installed: 404 and absent from discovery. */
  absentGroups?: readonly string[] | undefined;
}

export const DEFAULT_BOOKMARK_INTERVAL_MS = 60_000;
export const DEFAULT_MIN_REQUEST_TIMEOUT_SECONDS = 1800;
export const DEFAULT_PAGE_LIMIT_MAX = 500;

interface ContinueToken {
  v: 'meta.k8s.io/v1';
  rv: number;
  start: string;
}

export class ApiServer {
  readonly name: string;
  readonly registry: Registry;
  readonly #listener: Listener;
  readonly #absentGroups: Set<string>;
  readonly #served = (t: ResourceType): boolean => !this.#absentGroups.has(t.group);
  readonly #token: Buffer;
  readonly #watches = new Set<WatchStream>();
  readonly #held = new Set<ServerResponse>();
  #mode: FaultMode = 'up';
  readonly #bookmarkIntervalMs: number;
  readonly #minRequestTimeout: number;
  readonly #tooLargeWaitMs: number;

  constructor(opts: ApiServerOptions) {
    this.name = opts.name;
    this.registry = opts.registry;
    this.#token = Buffer.from(opts.token);
    this.#bookmarkIntervalMs = opts.bookmarkIntervalMs ?? DEFAULT_BOOKMARK_INTERVAL_MS;
    this.#minRequestTimeout = opts.minRequestTimeoutSeconds ?? DEFAULT_MIN_REQUEST_TIMEOUT_SECONDS;
    this.#tooLargeWaitMs = opts.tooLargeWaitMs ?? 3000;
    this.#absentGroups = new Set(opts.absentGroups ?? []);
    const server = createServer({ key: opts.tls.key, cert: opts.tls.cert }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#sendError(res, err));
    });
    this.#listener = new Listener(server, opts.host, opts.port);
  }

  get host(): string {
    return this.#listener.host;
  }

  get port(): number {
    return this.#listener.port;
  }

  /** Installs or removes an API group, as installing or deleting a CRD does. */
  setGroupServed(group: string, served: boolean): void {
    if (served) this.#absentGroups.delete(group);
    else this.#absentGroups.add(group);
  }

  get url(): string {
    return `https://${hostPort({ host: this.host, port: this.port })}`;
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  get openWatches(): number {
    return this.#watches.size;
  }

  start(): Promise<void> {
    return this.#listener.listen();
  }

  async stop(): Promise<void> {
    for (const w of [...this.#watches]) w.destroy();
    for (const r of this.#held) r.destroy();
    this.#held.clear();
    await this.#listener.close();
  }

  /**
   * refuse: stop listening and cut every connection (ECONNREFUSED from now on).
   * hang: keep accepting, answer nothing; open watches go silent.
   * drop: cut every open watch now, and every new one as soon as it starts.
   * up: serve normally again (held requests and silent watches are cut, so clients reconnect).
   */
  async setMode(mode: FaultMode): Promise<void> {
    const previous = this.#mode;
    this.#mode = mode;
    if (mode === 'refuse') {
      await this.stop();
      return;
    }
    if (mode === 'hang') {
      for (const w of this.#watches) w.pause();
    } else if (mode === 'drop') {
      for (const w of [...this.#watches]) w.destroy();
    } else if (previous === 'hang') {
      for (const w of [...this.#watches]) w.destroy();
      for (const r of this.#held) r.socket?.destroy();
      this.#held.clear();
    }
    await this.start();
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m) return false;
    const given = Buffer.from(m[1]!.trim());
    return given.length === this.#token.length && timingSafeEqual(given, this.#token);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#mode === 'hang') {
      this.#held.add(res);
      res.on('close', () => this.#held.delete(res));
      return;
    }
    if (!this.#authorized(req)) throw errors.unauthorized();
    const url = new URL(req.url ?? '/', 'https://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';

    if (method === 'GET') {
      const doc = this.#discovery(path);
      if (doc !== undefined) return sendJson(res, 200, doc);
      if (path === '/openapi/v3') return sendJson(res, 200, openApiRoot());
      if (path.startsWith('/openapi/v3/')) {
        const body = openApiDocument(path.slice('/openapi/v3/'.length));
        if (body !== undefined) {
          res.writeHead(200, {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
          });
          res.end(body);
          return;
        }
      }
      if (path === '/healthz' || path === '/livez' || path === '/readyz') {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('ok');
        return;
      }
    }

    const parsed = parseResourcePath(path);
    const target = parsed && this.#served(parsed.type) ? parsed : undefined;
    if (!target) return sendNotFoundPage(res);
    const { type, namespace, name, subresource } = target;
    const q = url.searchParams;
    // Refused rather than ignored: ignoring it would perform the write a client meant to rehearse.
    if (q.has('dryRun') && method !== 'GET')
      throw errors.badRequest('dryRun is not supported by localfed');

    if (name === undefined) {
      if (method === 'GET' && isTrue(q.get('watch')))
        return this.#watch(req, res, type, namespace, q);
      if (method === 'GET') return this.#list(req, res, type, namespace, q);
      if (method === 'POST') {
        const body = (await readJson(req)) as KubeObject;
        checkFields(type, body, q, res);
        return sendJson(res, 201, this.registry.create(type, namespace, body));
      }
      throw errors.methodNotAllowed(method);
    }

    switch (method) {
      case 'GET': {
        const obj = this.registry.get(type, namespace, name);
        if (wantsTable(req.headers.accept)) {
          return sendJson(
            res,
            200,
            toTable(
              type,
              [obj],
              { resourceVersion: obj.metadata.resourceVersion },
              includeObject(q),
            ),
          );
        }
        return sendJson(res, 200, obj);
      }
      case 'PUT': {
        const body = (await readJson(req)) as KubeObject;
        checkFields(type, body, q, res);
        return sendJson(
          res,
          200,
          this.registry.update(type, namespace, name, body, { subresource }),
        );
      }
      case 'PATCH': {
        const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        const strategic = ct === 'application/strategic-merge-patch+json';
        if (ct !== 'application/merge-patch+json' && !strategic) {
          throw errors.unsupportedMediaType(ct, [
            'application/merge-patch+json',
            'application/strategic-merge-patch+json',
          ]);
        }
        const patch = await readJson(req);
        checkFields(type, patch, q, res);
        return sendJson(
          res,
          200,
          this.registry.mergePatch(type, namespace, name, patch, { subresource, strategic }),
        );
      }
      case 'DELETE': {
        if (subresource) throw errors.methodNotAllowed(method);
        const body = await readJson(req, true);
        const pre = isRecord(body) && isRecord(body.preconditions) ? body.preconditions : {};
        const deleted = this.registry.delete(type, namespace, name, {
          uid: typeof pre.uid === 'string' ? pre.uid : undefined,
          resourceVersion:
            typeof pre.resourceVersion === 'string' ? pre.resourceVersion : undefined,
        } as { uid?: string; resourceVersion?: string });
        return sendJson(res, 200, deleted);
      }
      default:
        throw errors.methodNotAllowed(method);
    }
  }

  #discovery(path: string): unknown {
    if (path === '/version') return SERVER_VERSION;
    if (path === '/api') return apiVersions(hostPort({ host: this.host, port: this.port }));
    const served = this.#served;
    if (path === '/api/v1') return apiResourceList('', 'v1', served);
    if (path === '/apis') return apiGroupList(served);
    const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (m) return m[2] ? apiResourceList(m[1]!, m[2], served) : apiGroupDoc(m[1]!, served);
    return undefined;
  }

  async #list(
    req: IncomingMessage,
    res: ServerResponse,
    type: ResourceType,
    namespace: string | undefined,
    q: URLSearchParams,
  ): Promise<void> {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'));
    const store = this.registry.store;
    const resource = Registry.keyOf(type);
    const rvParam = q.get('resourceVersion') ?? '';
    const match = q.get('resourceVersionMatch') ?? '';
    const limitParam = q.get('limit');
    const cont = q.get('continue') ?? '';
    if (match && !rvParam)
      throw errors.badRequest(
        'resourceVersionMatch is forbidden unless resourceVersion is provided',
      );
    if (match && match !== 'Exact' && match !== 'NotOlderThan') {
      throw errors.badRequest(
        `resourceVersionMatch: Unsupported value: "${match}": supported values: "Exact", "NotOlderThan"`,
      );
    }
    if (cont && rvParam)
      throw errors.badRequest('specifying resource version is not allowed when using continue');

    let rev = store.revision;
    let start = '';
    if (cont) {
      const token = decodeContinue(cont);
      rev = token.rv;
      start = token.start;
    } else if (rvParam && rvParam !== '0') {
      const wanted = Number(rvParam);
      if (!Number.isSafeInteger(wanted) || wanted < 0)
        throw errors.badRequest(`invalid resource version: ${rvParam}`);
      if (wanted > store.revision) await this.#waitForRevision(wanted);
      if (match === 'Exact') rev = wanted;
    }
    // resourceVersion=0 is served from the watch cache, which ignores limit.
    const limit = rvParam === '0' ? 0 : limitParam ? Number(limitParam) : 0;
    if (!Number.isSafeInteger(limit) || limit < 0)
      throw errors.badRequest(`invalid limit: ${limitParam}`);

    let all: KubeObject[];
    try {
      all = store.listAt(resource, rev, namespace, false);
    } catch (e) {
      if (!(e instanceof Expired)) throw e;
      if (cont) {
        throw errors.expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
          encodeContinue({ v: 'meta.k8s.io/v1', rv: store.revision, start }),
        );
      }
      throw errors.expired('The resourceVersion for the provided list is too old.');
    }
    const selected = all.filter(
      (o) =>
        keyOf(o) >= start &&
        matchesLabels(labels, o.metadata.labels) &&
        matchesFields(fields, o.metadata),
    );
    const meta: Record<string, unknown> = { resourceVersion: String(rev) };
    let items = selected;
    if (limit > 0 && selected.length > limit) {
      items = selected.slice(0, limit);
      meta.continue = encodeContinue({
        v: 'meta.k8s.io/v1',
        rv: rev,
        start: `${keyOf(items[limit - 1]!)}\u0000`,
      });
      // As kube-apiserver: the remaining count is only known without selectors.
      if (labels.length === 0 && fields.length === 0)
        meta.remainingItemCount = selected.length - limit;
    }
    if (wantsTable(req.headers.accept))
      return sendJson(res, 200, toTable(type, items, meta, includeObject(q)));
    sendJson(res, 200, {
      kind: type.listKind,
      apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
      metadata: meta,
      items,
    });
  }

  #waitForRevision(wanted: number): Promise<void> {
    const store = this.registry.store;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(errors.tooLargeResourceVersion(wanted, store.revision));
      }, this.#tooLargeWaitMs);
      const unsubscribe = store.subscribe(() => {
        if (store.revision >= wanted) {
          clearTimeout(timer);
          unsubscribe();
          resolve();
        }
      });
    });
  }

  #watch(
    req: IncomingMessage,
    res: ServerResponse,
    type: ResourceType,
    namespace: string | undefined,
    q: URLSearchParams,
  ): void {
    const timeoutParam = q.get('timeoutSeconds');
    // As kube-apiserver: timeoutSeconds=0 means none given, not "end at once".
    const timeoutSeconds =
      timeoutParam && Number(timeoutParam) !== 0
        ? Number(timeoutParam)
        : this.#minRequestTimeout * (1 + Math.random());
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0)
      throw errors.badRequest(`invalid timeoutSeconds: ${timeoutParam}`);
    const rv = q.get('resourceVersion') ?? undefined;
    if (rv && !/^\d+$/.test(rv)) throw errors.badRequest(`invalid resource version: ${rv}`);
    const sendInitial = q.get('sendInitialEvents');
    const stream = new WatchStream(
      this.registry.store,
      {
        type,
        resource: Registry.keyOf(type),
        namespace,
        labels: parseLabelSelector(q.get('labelSelector')),
        fields: parseFieldSelector(q.get('fieldSelector')),
        resourceVersion: rv,
        bookmarks: isTrue(q.get('allowWatchBookmarks')),
        sendInitialEvents: sendInitial === null ? undefined : isTrue(sendInitial),
        timeoutMs: timeoutSeconds * 1000,
        bookmarkIntervalMs: this.#bookmarkIntervalMs,
        table: wantsTable(req.headers.accept) ? includeObject(q) : undefined,
      },
      res,
      () => this.#watches.delete(stream),
    );
    this.#watches.add(stream);
    stream.start();
    if (this.#mode === 'drop') setImmediate(() => stream.destroy());
  }

  #sendError(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const apiErr =
      err instanceof ApiError
        ? err
        : errors.internal(err instanceof Error ? err.message : String(err));
    sendJson(res, apiErr.code, apiErr.toStatus());
  }
}

interface ResourceTarget {
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: 'status' | undefined;
}

/** Maps /api/v1/... and /apis/<group>/<version>/... to a resource, namespace, name and subresource. */
export function parseResourcePath(path: string): ResourceTarget | undefined {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    version = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1]!;
    version = parts[2]!;
    rest = parts.slice(3);
  } else return undefined;

  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status') {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, sub, ...extra] = rest;
  if (!plural || extra.length > 0) return undefined;
  const type = findType(group, version, plural);
  if (!type) return undefined;
  if (namespace !== undefined && !type.namespaced) return undefined;
  if (sub !== undefined && (sub !== 'status' || !type.statusSubresource)) return undefined;
  return { type, namespace, name, subresource: sub === 'status' ? 'status' : undefined };
}

/**
 * Server-side field validation. Unknown fields are always dropped (as decoding
 * into the API types does); Strict rejects them, Warn (the default) says so in a
 * Warning header, Ignore says nothing.
 */
function checkFields(
  type: ResourceType,
  body: unknown,
  q: URLSearchParams,
  res: ServerResponse,
): void {
  const mode = q.get('fieldValidation') ?? 'Warn';
  if (!['Strict', 'Warn', 'Ignore'].includes(mode)) {
    throw errors.badRequest(
      `fieldValidation: Unsupported value: "${mode}": supported values: "Ignore", "Strict", "Warn"`,
    );
  }
  const unknown = pruneUnknownFields(type.kind, body);
  if (unknown.length === 0 || mode === 'Ignore') return;
  const what = unknown.map((f) => `unknown field "${f}"`);
  if (mode === 'Strict') throw errors.badRequest(`strict decoding error: ${what.join(', ')}`);
  res.setHeader(
    'Warning',
    what.map((w) => `299 - ${JSON.stringify(w)}`),
  );
}

function keyOf(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decodeContinue(raw: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as ContinueToken;
    if (t.v === 'meta.k8s.io/v1' && Number.isSafeInteger(t.rv) && typeof t.start === 'string')
      return t;
  } catch {
    // fall through
  }
  throw errors.badRequest(
    'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
  );
}

function includeObject(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

function isTrue(v: string | null): boolean {
  return v === '1' || v === 'true';
}

const MAX_BODY_BYTES = 3 * 1024 * 1024;

async function readJson(req: IncomingMessage, optional = false): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new ApiError(
        413,
        'RequestEntityTooLarge',
        'Request entity too large: limit is 3145728',
      );
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') {
    if (optional) return undefined;
    throw errors.badRequest('the request body is empty');
  }
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (ct && !ct.endsWith('json')) throw errors.unsupportedMediaType(ct, ['application/json']);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
  }
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache, private',
  });
  res.end(text);
}

function sendNotFoundPage(res: ServerResponse): void {
  res.writeHead(404, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end('404 page not found\n');
}
