// The HTTP side of talking to one member cluster's API server. Credentials, TLS
// and auth plugins come from @kubernetes/client-node (one KubeConfig per cluster,
// never a shared one with switched contexts); the requests are ours, because
// client-node's list calls take no timeout and its Watch swallows parse errors.
import { HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { type Dispatcher, fetch } from 'undici';
import { FedgateError } from '../errors.ts';

/** Raised by the watch stream for 410 Gone, or an ERROR event with code 410: relist. */
export class GoneError extends Error {}
/** The API group or resource is not served (404 on the collection): e.g. no ServiceExport CRD. */
export class NotServedError extends Error {}
/** The watchdog's verdict: nothing arrived for too long. */
export class SilenceError extends Error {}

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

  /**
   * Streams a watch until the server ends it (resolves) or something fails
   * (rejects: GoneError, SilenceError, FedgateError). `silenceMs` bounds the wait
   * for headers and the gap between any two chunks; bookmarks keep it alive.
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
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => watchdog.abort(new SilenceError()), silenceMs);
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
        if (e instanceof GoneError || e instanceof FedgateError) throw e;
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
      if (code === 410) throw new GoneError(String((obj as { message?: unknown }).message));
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
      if (signal.aborted && signal.reason instanceof SilenceError) throw signal.reason;
      throw this.#transportError(verb, url, e);
    }
  }

  #transportError(verb: string, url: URL, e: unknown): Error {
    if (e instanceof SilenceError || e instanceof GoneError) return e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.message ?? (e as Error)?.message ?? String(e);
    const why = cause?.code && !detail.includes(cause.code) ? `${detail} (${cause.code})` : detail;
    return new FedgateError(
      'CLUSTER_UNREACHABLE',
      `cluster ${this.cluster}: ${verb} ${url.pathname} at ${this.server} failed: ${why}`,
      { cause: e },
    );
  }

  #statusError(verb: string, url: URL, status: number, body: string): Error {
    let message = '';
    try {
      message = String((JSON.parse(body) as { message?: unknown }).message ?? '');
    } catch {
      message = body.slice(0, 200);
    }
    if (status === 410) return new GoneError(message);
    if (status === 404) return new NotServedError(`${url.pathname}: ${message || 'not found'}`);
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
