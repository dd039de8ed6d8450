// The front door of a real member cluster: an HTTPS server at the member's own address
// (what its kubeconfig names, as for the simulator) that forwards every request to the
// kube-apiserver on 127.0.0.1:<port>, streaming bodies both ways and passing headers
// through. It exists to carry the faults of FaultMode with the simulator's meaning
// (apiserver.ts setMode), which needs HTTP, not TCP: `drop` cuts watches but serves lists.
// TLS ends here with a certificate from localfed's PKI; only http/1.1 is offered (ALPN),
// as the simulator does, so every watch is one connection the relay can cut. Around a
// kube-apiserver restart (compaction) it drains: watches end cleanly, requests wait.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, request } from 'node:https';
import { hostPort } from '../host-port.ts';
import { Listener } from './listener.ts';
import type { FaultMode } from './member.ts';
import { HeldRequests } from './relay-drain.ts';

export interface ApiRelayOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  tls: { key: string; cert: string };
  /** How long a request is held while draining before it is answered 503 (default 60 s). */
  drainHoldLimitMs?: number | undefined;
}

/** kube-apiserver: `https://127.0.0.1:<port>`, and the CA its certificate chains to. */
export interface Upstream {
  url: string;
  ca: string;
}

/** One forwarded watch: the client's response and kube-apiserver's. */
interface Watch {
  res: ServerResponse;
  upstream: IncomingMessage;
}

/** How long a drain waits for requests in flight (lists, writes) to be answered. */
const DRAIN_INFLIGHT_MS = 10_000;

// Hop-by-hop headers belong to one connection and are not forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

export class ApiRelay {
  readonly #listener: Listener;
  #upstream: { url: URL; agent: Agent } | undefined;
  readonly #watches = new Set<Watch>();
  readonly #held = new Set<ServerResponse>();
  /** Forwarded requests other than watches, not yet answered in full. */
  readonly #inflight = new Set<ServerResponse>();
  readonly #drainHeld: HeldRequests;
  #draining = false;
  #watchesStarted = 0;
  /** Responses whose kube-apiserver side the drain let go of: its end is not theirs. */
  readonly #detached = new WeakSet<ServerResponse>();
  #mode: FaultMode = 'up';

  constructor(opts: ApiRelayOptions) {
    this.#drainHeld = new HeldRequests(opts.drainHoldLimitMs);
    const server = createServer(
      { key: opts.tls.key, cert: opts.tls.cert, ALPNProtocols: ['http/1.1'] },
      (req, res) => this.#handle(req, res),
    );
    this.#listener = new Listener(server, opts.host, opts.port);
  }

  get host(): string {
    return this.#listener.host;
  }

  /** Where requests go from now on (until set, they are answered by a cut connection). */
  setUpstream(upstream: Upstream): void {
    this.#upstream?.agent.destroy();
    this.#upstream = {
      url: new URL(upstream.url),
      agent: new Agent({ keepAlive: true, ca: upstream.ca, ALPNProtocols: ['http/1.1'] }),
    };
  }

  get port(): number {
    return this.#listener.port;
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

  /** Watches forwarded (answered by kube-apiserver) since the relay was made. */
  get watchesStarted(): number {
    return this.#watchesStarted;
  }

  start(): Promise<void> {
    return this.#listener.listen();
  }

  /** Stops listening and cuts every connection (the clients' and the forwarded ones). */
  async stop(): Promise<void> {
    this.#cutWatches();
    this.#cutHeld();
    this.#drainHeld.cut();
    await this.#listener.close();
  }

  /** Closes the pooled connections to kube-apiserver too; the relay is done. */
  async close(): Promise<void> {
    await this.stop();
    this.#upstream?.agent.destroy();
    this.#upstream = undefined;
  }

  /** As the simulator's ApiServer.setMode (see FaultMode). */
  async setMode(mode: FaultMode): Promise<void> {
    const previous = this.#mode;
    this.#mode = mode;
    if (mode === 'refuse') {
      await this.stop();
      return;
    }
    if (mode === 'hang') {
      for (const w of this.#watches) silence(w);
    } else if (mode === 'drop') {
      this.#cutWatches();
    } else if (previous === 'hang') {
      this.#cutWatches();
      this.#cutHeld();
    }
    await this.start();
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Requests held by the drain. */
  get heldRequests(): number {
    return this.#drainHeld.size;
  }

  /**
   * Before kube-apiserver restarts: from now on requests are held (release() forwards
   * them); once the requests in flight are answered (at most DRAIN_INFLIGHT_MS), every
   * open watch is ended cleanly, its chunked response finished, as kube-apiserver ends
   * one at its timeout or when it shuts down gracefully. Watches that `hang` silenced
   * stay silent, their clients' connections open, as a hung server's.
   */
  async drain(): Promise<void> {
    this.#draining = true;
    const deadline = Date.now() + DRAIN_INFLIGHT_MS;
    while (this.#inflight.size > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    for (const w of this.#watches) {
      this.#detached.add(w.res);
      w.upstream.unpipe(w.res);
      w.upstream.destroy();
      if (this.#mode !== 'hang') w.res.end();
    }
  }

  /** kube-apiserver is ready again: forwards what the drain held, in order. */
  release(): void {
    this.#draining = false;
    this.#drainHeld.release((req, res) => this.#handle(req, res));
  }

  #cutWatches(): void {
    for (const w of this.#watches) cut(w);
    this.#watches.clear();
  }

  #cutHeld(): void {
    for (const r of this.#held) r.socket?.destroy();
    this.#held.clear();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.#mode === 'hang') {
      this.#held.add(res);
      res.on('close', () => this.#held.delete(res));
      return;
    }
    if (this.#draining) {
      this.#drainHeld.hold(req, res);
      return;
    }
    const upstream = this.#upstream;
    if (!upstream) {
      res.destroy();
      return;
    }
    const watch = isWatch(req.url ?? '/');
    const out = request({
      protocol: 'https:',
      host: upstream.url.hostname,
      port: upstream.url.port,
      method: req.method,
      path: req.url,
      headers: forwardable(req.headers),
      agent: upstream.agent,
    });
    // In flight until answered: a watch until its headers, anything else in full.
    this.#inflight.add(res);
    res.on('close', () => this.#inflight.delete(res));
    out.on('response', (answer) => {
      if (watch) this.#inflight.delete(res);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardable(answer.headers));
      // pipe() ends the client's response only on a clean end: an answer cut short
      // (kube-apiserver stopping) must cut the client's too, or its watch hangs open.
      answer.on('close', () => {
        if (!answer.complete && !this.#detached.has(res)) res.destroy();
      });
      if (!watch) {
        answer.pipe(res);
        return;
      }
      res.flushHeaders();
      const w: Watch = { res, upstream: answer };
      this.#watchesStarted++;
      this.#watches.add(w);
      res.on('close', () => {
        this.#watches.delete(w);
        answer.destroy();
      });
      answer.on('end', () => this.#watches.delete(w));
      // As the simulator, `drop` lets a watch start (headers sent) and cuts it before any
      // event: kube-apiserver replays from the watch's resourceVersion in its first chunk,
      // which a pipe would pass on before the cut.
      if (this.#mode === 'up') answer.pipe(res);
      else silence(w);
      if (this.#mode === 'drop') setImmediate(() => cut(w));
    });
    out.on('error', () => {
      // kube-apiserver is restarting or gone: the client sees its connection cut, as it
      // would from a server going away mid-request.
      if (!this.#detached.has(res)) res.destroy();
    });
    // A client that goes away takes its forwarded request (an open watch) with it.
    res.on('close', () => {
      if (!res.writableFinished) out.destroy();
    });
    req.pipe(out);
  }
}

function isWatch(url: string): boolean {
  const u = new URL(url, 'https://relay');
  const w = u.searchParams.get('watch');
  return w === 'true' || w === '1' || /^\/apis?\/(?:[^/]+\/)?[^/]+\/watch\//.test(u.pathname);
}

function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  }
  return out;
}

/** Stops passing events: the client's watch goes silent, its connection stays open. */
function silence(w: Watch): void {
  w.upstream.unpipe(w.res);
  w.upstream.pause();
}

function cut(w: Watch): void {
  w.upstream.destroy();
  w.res.destroy();
}
