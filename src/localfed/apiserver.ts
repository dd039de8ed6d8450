// One member cluster's API server: HTTPS with its own certificate, a bearer token,
// discovery, list/watch/get/create/update/patch/delete with kube-apiserver's wire
// behaviour, and fault controls (refuse, hang, drop watches) for tests and demos.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { hostPort } from '../host-port.ts';
import { Access, authorizePath, authorizeResource, type SimUser } from './access.ts';
import {
  apiGroupDoc,
  apiGroupList,
  apiResourceList,
  apiVersions,
  SERVER_VERSION,
} from './discovery.ts';
import { pruneUnknownFields } from './fields.ts';
import type { GatewayApiChannel } from './gateway-schema.ts';
import { checkResourceVersionMatch, serveList } from './list.ts';
import { Listener } from './listener.ts';
import type { FaultMode } from './member.ts';
import { isRecord, type KubeObject } from './objects.ts';
import { openApiDocument, openApiRoot } from './openapi.ts';
import { parseRequestPath, type RequestPath } from './paths.ts';
import { Registry } from './registry.ts';
import { findType, groupExists, type ResourceType, servedAs } from './resources.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { ApiError, errors } from './status.ts';
import { toTable, wantsTable } from './table.ts';
import { WatchStream } from './watch.ts';
import { includeObject, isTrue, readJson, sendBody, sendJson, sendNotFoundPage } from './wire.ts';

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
  /** Users beside the admin, each allowed only what its rules say. */
  users?: readonly SimUser[] | undefined;
}

export const DEFAULT_BOOKMARK_INTERVAL_MS = 60_000;
export const DEFAULT_MIN_REQUEST_TIMEOUT_SECONDS = 1800;
export const DEFAULT_PAGE_LIMIT_MAX = 500;

export class ApiServer {
  readonly name: string;
  readonly registry: Registry;
  readonly #listener: Listener;
  readonly #absentGroups: Set<string>;
  readonly #served = (t: ResourceType): boolean => !this.#absentGroups.has(t.group);
  readonly #access: Access;
  readonly #watches = new Set<WatchStream>();
  readonly #held = new Set<ServerResponse>();
  #mode: FaultMode = 'up';
  readonly #bookmarkIntervalMs: number;
  readonly #minRequestTimeout: number;
  readonly #tooLargeWaitMs: number;

  constructor(opts: ApiServerOptions) {
    this.name = opts.name;
    this.registry = opts.registry;
    this.#access = new Access(opts.token, opts.users);
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

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#mode === 'hang') {
      this.#held.add(res);
      res.on('close', () => this.#held.delete(res));
      return;
    }
    const who = this.#access.identify(req.headers.authorization);
    const url = new URL(req.url ?? '/', 'https://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const q = url.searchParams;

    const requested = parseRequestPath(path);
    if (!requested) {
      authorizePath(who, path);
      if (method === 'GET' && this.#serveNonResource(res, path)) return;
      return this.#notFound(res, path);
    }
    authorizeResource(who, verbOf(method, requested, q), requested);
    const target = this.#resolve(requested);
    if (!target) return this.#notFound(res, path);
    const { type, namespace, name, subresource } = target;
    // Refused rather than ignored: ignoring it would perform the write a client meant to rehearse.
    if (q.has('dryRun') && method !== 'GET')
      throw errors.badRequest('dryRun is not supported by localfed');

    if (name === undefined) {
      if (method === 'GET' && isTrue(q.get('watch')))
        return this.#watch(req, res, type, namespace, q);
      if (method === 'GET')
        return serveList(this.registry, req, res, target, q, this.#tooLargeWaitMs);
      if (method === 'POST') {
        const body = (await readJson(req)) as KubeObject;
        checkFields(type, body, q, res, this.registry.gatewayApiChannel);
        return sendJson(res, 201, servedAs(type, this.registry.create(type, namespace, body)));
      }
      throw errors.methodNotAllowed();
    }

    switch (method) {
      case 'GET': {
        const obj = servedAs(type, this.registry.get(type, namespace, name));
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
        checkFields(type, body, q, res, this.registry.gatewayApiChannel);
        return sendJson(
          res,
          200,
          servedAs(
            type,
            this.registry.update(type, namespace, name, body, { subresource, fromClient: true }),
          ),
        );
      }
      case 'PATCH': {
        const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        const strategic = ct === 'application/strategic-merge-patch+json';
        if (ct !== 'application/merge-patch+json' && !strategic) {
          // JSON patch and apply are patch types kube-apiserver knows and localfed refuses;
          // any other type kube-apiserver refuses with this bare Status.
          if (!KNOWN_PATCH_TYPES.has(ct))
            throw new ApiError(415, 'UnsupportedMediaType', '415: Unsupported Media Type', {});
          throw errors.unsupportedMediaType([
            'application/merge-patch+json',
            'application/strategic-merge-patch+json',
          ]);
        }
        const patch = await readJson(req);
        checkFields(type, patch, q, res, this.registry.gatewayApiChannel);
        return sendJson(
          res,
          200,
          servedAs(
            type,
            this.registry.mergePatch(type, namespace, name, patch, { subresource, strategic }),
          ),
        );
      }
      case 'DELETE': {
        if (subresource) throw errors.methodNotAllowed();
        const body = await readJson(req, true);
        const pre = isRecord(body) && isRecord(body.preconditions) ? body.preconditions : {};
        const deleted = this.registry.delete(type, namespace, name, {
          uid: typeof pre.uid === 'string' ? pre.uid : undefined,
          resourceVersion:
            typeof pre.resourceVersion === 'string' ? pre.resourceVersion : undefined,
        } as { uid?: string; resourceVersion?: string });
        if (!type.deleteAnswersStatus) return sendJson(res, 200, deleted);
        return sendJson(res, 200, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: {
            name: deleted.metadata.name,
            ...(type.group ? { group: type.group } : {}),
            kind: type.plural,
            uid: deleted.metadata.uid,
          },
        });
      }
      default:
        throw errors.methodNotAllowed();
    }
  }

  /** Discovery, OpenAPI and health; false when the path is none of them. */
  #serveNonResource(res: ServerResponse, path: string): boolean {
    const doc = this.#discovery(path);
    if (doc !== undefined) {
      sendJson(res, 200, doc);
      return true;
    }
    // kube-apiserver serves the OpenAPI v3 index as text/plain, the documents as JSON.
    if (path === '/openapi/v3') {
      sendBody(res, 200, 'text/plain; charset=utf-8', JSON.stringify(openApiRoot()));
      return true;
    }
    const openapi = path.startsWith('/openapi/v3/')
      ? openApiDocument(path.slice('/openapi/v3/'.length))
      : undefined;
    if (openapi !== undefined) {
      sendBody(res, 200, 'application/json', openapi);
      return true;
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      sendBody(res, 200, 'text/plain; charset=utf-8', 'ok');
      return true;
    }
    return false;
  }

  /**
   * kube-apiserver answers a path under /api or a served group with a NotFound Status,
   * and anything else (an unknown group, a path outside the API) with its text page.
   */
  #notFound(res: ServerResponse, path: string): void {
    const group = /^\/apis\/([^/]+)\//.exec(path)?.[1];
    const served =
      path.startsWith('/api/') ||
      (group !== undefined && !this.#absentGroups.has(group) && groupExists(group));
    if (served) sendJson(res, 404, errors.resourceNotFound().toStatus());
    else sendNotFoundPage(res);
  }

  #resolve(p: RequestPath): ResourceTarget | undefined {
    if (p.extra > 0 || !p.plural) return undefined;
    const type = findType(p.group, p.version, p.plural);
    if (!type || !this.#served(type)) return undefined;
    if (p.namespace !== undefined && !type.namespaced) return undefined;
    const sub = p.subresource;
    if (sub !== undefined && (sub !== 'status' || !type.statusSubresource)) return undefined;
    return {
      type,
      namespace: p.namespace,
      name: p.name,
      subresource: sub === 'status' ? 'status' : undefined,
    };
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
    const match = q.get('resourceVersionMatch') ?? '';
    checkResourceVersionMatch(match);
    if (sendInitial !== null && match !== 'NotOlderThan') {
      throw errors.invalidListOptions(
        'resourceVersionMatch',
        'FieldValueForbidden',
        'Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan',
      );
    }
    const stream = new WatchStream(
      this.registry.store,
      {
        type,
        resource: Registry.keyOf(type),
        namespace,
        labels: parseLabelSelector(q.get('labelSelector')),
        fields: parseFieldSelector(q.get('fieldSelector'), type),
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
    // As kube-apiserver: a Status that says when to retry says it in Retry-After too.
    const retry = apiErr.details?.retryAfterSeconds;
    sendJson(
      res,
      apiErr.code,
      apiErr.toStatus(),
      retry === undefined ? {} : { 'Retry-After': String(retry) },
    );
  }
}

interface ResourceTarget {
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: 'status' | undefined;
}

/** The RBAC verb of a request. */
function verbOf(method: string, p: RequestPath, q: URLSearchParams): string {
  switch (method) {
    case 'GET':
      return p.name !== undefined ? 'get' : isTrue(q.get('watch')) ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'DELETE':
      return p.name !== undefined ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
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
  channel: GatewayApiChannel,
): void {
  const mode = q.get('fieldValidation') ?? 'Warn';
  if (!['Strict', 'Warn', 'Ignore'].includes(mode)) {
    throw errors.badRequest(
      `fieldValidation: Unsupported value: "${mode}": supported values: "Ignore", "Strict", "Warn"`,
    );
  }
  const unknown = pruneUnknownFields(type.kind, body, channel);
  if (unknown.length === 0 || mode === 'Ignore') return;
  const what = unknown.map((f) => `unknown field "${f}"`);
  if (mode === 'Strict') {
    throw errors.badRequest(
      `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: strict decoding error: ${what.join(', ')}`,
    );
  }
  res.setHeader(
    'Warning',
    what.map((w) => `299 - ${JSON.stringify(w)}`),
  );
}

const KNOWN_PATCH_TYPES = new Set(['application/json-patch+json', 'application/apply-patch+yaml']);
