// The HTTP side of talking to one member cluster's API server. Credentials, TLS
// and auth plugins come from @kubernetes/client-node (one KubeConfig per cluster,
// never a shared one with switched contexts); the requests are ours, because
// client-node's list calls take no timeout and its Watch swallows parse errors.
import { HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { type Dispatcher, fetch } from 'undici';
import { errorCodeOf, FedgateError } from '../errors.ts';

// A list or watch fails with a FedgateError. Three codes are for the watch loop to
// act on rather than failures of the cluster: CLUSTER_WATCH_EXPIRED (410 Gone, or
// an ERROR event with code 410: relist), CLUSTER_RESOURCE_NOT_SERVED (404 on the
// collection: e.g. no ServiceExport CRD) and CLUSTER_WATCH_SILENT (the watchdog's
// verdict: nothing arrived for too long).

/** The verdicts a transport failure may carry through as they are: expired, silent. */
function isWatchVerdict(e: unknown): e is FedgateError {
  const code = errorCodeOf(e);
  return code === 'CLUSTER_WATCH_EXPIRED' || code === 'CLUSTER_WATCH_SILENT';
}

export interface ListPage {
  items: unknown[];
  resourceVersion: string;
  continueToken: string | undefined;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: Record<string, unknown>;
}

/** A request's dispatcher: client-node makes a new undici Agent per call; we must close it. */
interface Session {
  headers: Record<string, string>;
  dispatcher: Dispatcher | undefined;
}

export class ApiClient {
  readonly cluster: string;
  readonly server: string;
  readonly #kc: KubeConfig;

  constructor(cluster: string, kc: KubeConfig) {
    this.cluster = cluster;
    this.#kc = kc;
    const server = kc.getCurrentCluster()?.server;
    if (!server) {
      throw new FedgateError(
        'KUBECONFIG_INVALID',
        `cluster ${cluster}: kubeconfig names no server`,
      );
    }
    this.server = server.replace(/\/+$/, '');
  }

  /** Fresh credentials for a run of requests; exec plugins and token files are re-read. */
  async session(): Promise<Session & { close(): void }> {
    const ctx = new RequestContext(this.server, HttpMethod.GET);
    await this.#kc.applySecurityAuthentication(ctx);
    const dispatcher = ctx.getDispatcher();
    return {
      headers: { ...ctx.getHeaders(), Accept: 'application/json' },
      dispatcher,
      close: () => {
        void dispatcher?.destroy().catch(() => {});
      },
    };
  }

  async listPage(
    session: Session,
    path: string,
    params: Record<string, string>,
    signal: AbortSignal,
  ): Promise<ListPage> {
    const url = this.#url(path, params);
    const res = await this.#fetch(session, url, signal, 'list');
    const text = await res.text().catch((e: unknown) => {
      throw this.#transportError('list', url, e);
    });
    if (res.status !== 200) throw this.#statusError('list', url, res.status, text);
    const body = this.#json<{
      items?: unknown;
      metadata?: { resourceVersion?: unknown; continue?: unknown };
    }>(text, `list ${url.pathname} returned a body that is not JSON`);
    if (!Array.isArray(body.items) || typeof body.metadata?.resourceVersion !== 'string') {
      throw new FedgateError(
        'CLUSTER_API_ERROR',
        `cluster ${this.cluster}: list ${url.pathname} returned no items or resourceVersion`,
      );
    }
    const cont = body.metadata.continue;
    return {
      items: body.items,
      resourceVersion: body.metadata.resourceVersion,
      continueToken: typeof cont === 'string' && cont !== '' ? cont : undefined,
    };
  }

  /** One object by its path (a 404 is CLUSTER_RESOURCE_NOT_SERVED: the caller says what was missing). */
  async getObject(
    session: Session,
    path: string,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const url = this.#url(path, {});
    const res = await this.#fetch(session, url, signal, 'get');
    const text = await res.text().catch((e: unknown) => {
      throw this.#transportError('get', url, e);
    });
    if (res.status !== 200) throw this.#statusError('get', url, res.status, text);
    const body = this.#json<unknown>(text, `get ${url.pathname} returned a body that is not JSON`);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new FedgateError(
        'CLUSTER_API_ERROR',
        `cluster ${this.cluster}: get ${url.pathname} returned no object`,
      );
    }
    return body as Record<string, unknown>;
  }

  /**
   * Streams a watch until the server ends it (resolves) or something fails (rejects
   * with a FedgateError: CLUSTER_WATCH_EXPIRED, CLUSTER_WATCH_SILENT, …). `silenceMs`
   * bounds the wait for headers and the gap between any two chunks; bookmarks keep
   * it alive.
   */
  async watch(
    session: Session,
    path: string,
    params: Record<string, string>,
    silenceMs: number,
    onOpen: () => void,
    onEvent: (e: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const url = this.#url(path, { ...params, watch: 'true', allowWatchBookmarks: 'true' });
    const watchdog = new AbortController();
    const silence = new FedgateError(
      'CLUSTER_WATCH_SILENT',
      `cluster ${this.cluster}: watch ${url.pathname} sent nothing for ${silenceMs} ms`,
    );
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => watchdog.abort(silence), silenceMs);
    };
    const both = AbortSignal.any([signal, watchdog.signal]);
    arm();
    try {
      const res = await this.#fetch(session, url, both, 'watch');
      if (res.status !== 200) {
        const text = await res.text().catch(() => '');
        throw this.#statusError('watch', url, res.status, text);
      }
      onOpen();
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buffered = '';
      try {
        for await (const chunk of res.body) {
          arm();
          buffered += decoder.decode(chunk as Uint8Array, { stream: true });
          let nl = buffered.indexOf('\n');
          while (nl >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (line) onEvent(this.#parseEvent(line, url));
            nl = buffered.indexOf('\n');
          }
        }
      } catch (e) {
        if (e instanceof FedgateError) throw e;
        throw this.#transportError(
          'watch',
          url,
          watchdog.signal.aborted ? watchdog.signal.reason : e,
        );
      }
    } catch (e) {
      if (watchdog.signal.aborted && !signal.aborted) throw watchdog.signal.reason as Error;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  #parseEvent(line: string, url: URL): WatchEvent {
    const event = this.#json<{ type?: unknown; object?: unknown }>(
      line,
      `watch ${url.pathname} sent a line that is not JSON`,
    );
    const obj = event.object as Record<string, unknown> | undefined;
    if (event.type === 'ERROR') {
      const code = (obj as { code?: unknown } | undefined)?.code;
      if (code === 410)
        throw this.#expired('watch', url, String((obj as { message?: unknown }).message));
      throw new FedgateError(
        'CLUSTER_API_ERROR',
        `cluster ${this.cluster}: watch ${url.pathname} ended with an error: ${String((obj as { message?: unknown } | undefined)?.message ?? code)}`,
      );
    }
    if (
      (event.type === 'ADDED' ||
        event.type === 'MODIFIED' ||
        event.type === 'DELETED' ||
        event.type === 'BOOKMARK') &&
      obj !== null &&
      typeof obj === 'object'
    ) {
      return { type: event.type, object: obj };
    }
    throw new FedgateError(
      'CLUSTER_API_ERROR',
      `cluster ${this.cluster}: watch ${url.pathname} sent an event of unknown type ${String(event.type)}`,
    );
  }

  #json<T>(text: string, problem: string): T {
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new FedgateError('CLUSTER_API_ERROR', `cluster ${this.cluster}: ${problem}`);
    }
  }

  #url(path: string, params: Record<string, string>): URL {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url;
  }

  async #fetch(session: Session, url: URL, signal: AbortSignal, verb: string) {
    try {
      return await fetch(url, {
        headers: session.headers,
        ...(session.dispatcher ? { dispatcher: session.dispatcher } : {}),
        signal,
      });
    } catch (e) {
      if (signal.aborted && errorCodeOf(signal.reason) === 'CLUSTER_WATCH_SILENT')
        throw signal.reason;
      throw this.#transportError(verb, url, e);
    }
  }

  #transportError(verb: string, url: URL, e: unknown): Error {
    if (isWatchVerdict(e)) return e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.message ?? (e as Error)?.message ?? String(e);
    const why = cause?.code && !detail.includes(cause.code) ? `${detail} (${cause.code})` : detail;
    return new FedgateError(
      'CLUSTER_UNREACHABLE',
      `cluster ${this.cluster}: ${verb} ${url.pathname} at ${this.server} failed: ${why}`,
      { cause: e },
    );
  }

  #expired(verb: string, url: URL, message: string): FedgateError {
    return new FedgateError(
      'CLUSTER_WATCH_EXPIRED',
      `cluster ${this.cluster}: ${verb} ${url.pathname}: 410 Gone: ${message}`,
    );
  }

  #statusError(verb: string, url: URL, status: number, body: string): Error {
    let message = '';
    try {
      message = String((JSON.parse(body) as { message?: unknown }).message ?? '');
    } catch {
      message = body.slice(0, 200);
    }
    if (status === 410) return this.#expired(verb, url, message);
    if (status === 404) {
      return new FedgateError(
        'CLUSTER_RESOURCE_NOT_SERVED',
        `cluster ${this.cluster}: ${url.pathname}: ${message || 'not found'}`,
      );
    }
    if (status === 401) {
      return new FedgateError(
        'CLUSTER_UNAUTHORIZED',
        `cluster ${this.cluster}: the API server at ${this.server} rejected fedgate's credentials (401 Unauthorized); check this cluster's kubeconfig`,
      );
    }
    if (status === 403) {
      return new FedgateError(
        'CLUSTER_FORBIDDEN',
        `cluster ${this.cluster}: not allowed to ${verb} ${url.pathname} (403 Forbidden: ${message}); apply deploy/member-rbac (see docs/deploy.md) in this cluster`,
      );
    }
    return new FedgateError(
      'CLUSTER_API_ERROR',
      `cluster ${this.cluster}: ${verb} ${url.pathname} returned ${status}${message ? `: ${message}` : ''}`,
    );
  }
}
