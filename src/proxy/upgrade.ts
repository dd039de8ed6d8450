// Upgrade requests (WebSocket and any other protocol switch over HTTP/1.1), routed
// exactly as other requests are, through undici's upgrade on the endpoint's own pool:
// the tunnel counts as a request in flight to that endpoint while it is open, and an
// upstream that declines the upgrade has its answer passed back as it is.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ERROR_TABLE, type ErrorCode } from '../errors.ts';
import type { Outcome } from '../health/outlier.ts';
import { isDescriptorExhaustion } from '../observe/exhaustion.ts';
import type { Target } from '../routing/types.ts';
import { type Forwarder, type ProxyRequest, routeProblem } from './forward.ts';
import { downstreamResponseHeaders } from './headers.ts';
import type { UpstreamEndpoint } from './upstreams.ts';

const REFUSAL_BODY_LIMIT = 65_536;

/** Writes a whole HTTP/1.1 response onto a raw socket and ends it. */
export function writeRawResponse(
  socket: Duplex,
  status: number,
  headers: Record<string, string | string[] | number>,
  body: string | Buffer = '',
): void {
  if (socket.destroyed) return;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  const all = { ...headers, 'content-length': Buffer.byteLength(body), connection: 'close' };
  for (const [name, value] of Object.entries(all)) {
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
  }
  socket.write(`${head}\r\n`);
  socket.end(body);
}

export function rawError(socket: Duplex, code: ErrorCode, detail: string): void {
  writeRawResponse(
    socket,
    ERROR_TABLE[code].http,
    { 'content-type': 'text/plain; charset=utf-8', 'x-fedgate-error': code },
    `fedgate: ${detail}\n`,
  );
}

export function handleUpgrade(
  f: Forwarder,
  req: ProxyRequest,
  socket: Duplex,
  head: Buffer,
  proto: 'http' | 'https',
): void {
  f.deps.stats.upgrades++;
  socket.on('error', () => socket.destroy());
  const r = f.route(req);
  if (typeof r === 'string') {
    rawError(socket, r, routeProblem(req, r));
    return;
  }
  const svc = r.route.service;
  const { policy, locality, plan, hash, headers } = f.prepare(req, r, proto);
  const state = { plan, hash, tried: new Set<string>(), clusters: new Set<string>() };
  const protocol = String(req.headers.upgrade ?? 'websocket');
  const attempt = (): void => {
    if (socket.destroyed) return;
    const t = f.pick(state, policy);
    if (t === undefined || t === 'full') {
      const code: ErrorCode =
        t === 'full'
          ? 'UPSTREAM_OVERFLOW'
          : state.tried.size === 0
            ? 'NO_HEALTHY_UPSTREAM'
            : 'UPSTREAM_UNREACHABLE';
      rawError(socket, code, `no endpoint of ${svc.key} took the upgrade`);
      return;
    }
    state.tried.add(t.id);
    state.clusters.add(t.cluster);
    const ep = f.deps.upstreams.endpoint(t.id);
    f.deps.upstreams.acquire(ep, svc.key);
    const retry = () => {
      if (state.tried.size <= f.deps.settings.retries.attempts) {
        f.deps.stats.retries.connect++;
        f.deps.observer?.retry(svc.key, 'connect');
        state.plan = f.deps.router.plan(
          f.deps.catalog.current().services.get(svc.key) ?? svc,
          locality,
        );
        attempt();
      } else {
        rawError(socket, 'UPSTREAM_UNREACHABLE', `could not reach ${svc.key}`);
      }
    };
    ep.pool(f.origin(svc, t)).dispatch(
      { path: r.path, method: req.method ?? 'GET', headers, upgrade: protocol, body: null },
      new UpgradeHandler(f, svc.key, ep, t, socket, head, retry),
    );
  };
  attempt();
}

class UpgradeHandler implements Dispatcher.DispatchHandler {
  readonly #f: Forwarder;
  readonly #service: string;
  readonly #ep: UpstreamEndpoint;
  readonly #target: Target;
  readonly #client: Duplex;
  readonly #head: Buffer;
  readonly #retry: () => void;
  #released = false;
  #refusal:
    | { status: number; headers: Record<string, string | string[]>; chunks: Buffer[]; size: number }
    | undefined;

  constructor(
    f: Forwarder,
    service: string,
    ep: UpstreamEndpoint,
    target: Target,
    client: Duplex,
    head: Buffer,
    retry: () => void,
  ) {
    this.#f = f;
    this.#service = service;
    this.#ep = ep;
    this.#target = target;
    this.#client = client;
    this.#head = head;
    this.#retry = retry;
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#f.deps.upstreams.release(this.#ep);
  }

  #report(outcome: Outcome): void {
    this.#f.deps.health.report(this.#service, this.#target.id, outcome);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#client.destroyed) controller.abort(new Error('client went away'));
  }

  onRequestUpgrade(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    _headers: Record<string, string | string[] | undefined>,
    upstream: Duplex,
  ): void {
    this.#report({ origin: 'upstream', status: statusCode });
    const client = this.#client;
    // The upstream's own header lines, as sent: the handshake's accept key must pass unchanged.
    const raw = (controller.rawHeaders ?? []) as (Buffer | string)[];
    let head = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? ''}\r\n`;
    for (let i = 0; i + 1 < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    client.write(`${head}\r\n`);
    if (this.#head.length > 0) upstream.write(this.#head);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.#release();
    };
    upstream.on('error', close).on('close', close);
    client.on('error', close).on('close', close);
    upstream.pipe(client);
    client.pipe(upstream);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return;
    this.#report({ origin: 'upstream', status: statusCode });
    // Declined: its answer is passed on once whole, then the connection closes.
    const out = downstreamResponseHeaders(headers);
    delete out['content-length'];
    this.#refusal = { status: statusCode, headers: out, chunks: [], size: 0 };
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const r = this.#refusal;
    // A refusal's body is short; past 64 KiB it is cut.
    if (r && r.size < REFUSAL_BODY_LIMIT) r.chunks.push(chunk);
    if (r) r.size += chunk.length;
  }

  onResponseEnd(): void {
    this.#release();
    const r = this.#refusal;
    if (!r) return;
    const body = Buffer.concat(r.chunks).subarray(0, REFUSAL_BODY_LIMIT);
    writeRawResponse(this.#client, r.status, r.headers, body);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#release();
    if (this.#client.destroyed) return;
    // Out of descriptors: not the endpoint's fault, and no other endpoint would fare better.
    if (isDescriptorExhaustion(err)) {
      this.#f.deps.exhaustion?.note('upstream_connect', err);
      rawError(
        this.#client,
        'RESOURCE_EXHAUSTED',
        `out of file descriptors: no connection to ${this.#service} could be opened`,
      );
      return;
    }
    const code = (err as NodeJS.ErrnoException).code ?? '';
    this.#report({ origin: 'local', failure: code === 'ECONNREFUSED' ? 'connect' : 'reset' });
    this.#retry();
  }
}
