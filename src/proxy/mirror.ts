// RequestMirror: a copy of a request sent to another federated service, fire and
// forget. The copy has the method, the path and the headers the real request goes
// upstream with; its body only when cheap: a declared Content-Length of at most
// MIRROR_BODY_LIMIT, gathered (references, no copy) as the real request's tries
// read it and sent once it is whole. Any other body is not copied (the copy goes
// without one): teeing a stream would hold the real request to the mirror's pace,
// or buffer without bound. It never delays or fails the real request: it leaves
// after the real request is under way, on undici Agents of its own (one per wire:
// HTTP/1.1, h2c, and TLS per backend TLS context, so a copy speaks the protocol its
// service's port says, as a real try would), its answer drained and dropped, its
// failure counted and forgotten. At most MAX_MIRRORS_IN_FLIGHT at once per process;
// past that a copy is dropped (counted).
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, buildConnector } from 'undici';
import type { Wire } from './backend-protocol.ts';

/** How a mirrored copy ended (`fedgate_http_mirrored_requests_total{result}`). */
export type MirrorResult = 'sent' | 'failed' | 'dropped';

export const MAX_MIRRORS_IN_FLIGHT = 64;
/** The largest body a copy carries (a declared Content-Length). */
export const MIRROR_BODY_LIMIT = 64 * 1024;
/** A mirror that takes longer is given up: it holds a place meanwhile. */
const MIRROR_TIMEOUT_MS = 10_000;

/** Fields a body-less copy must not carry. */
const BODY_FIELDS = new Set(['content-length', 'transfer-encoding', 'expect', 'trailer']);
/** Agents kept at once: TLS contexts change with reloads and rotations; the oldest goes. */
const MAX_AGENTS = 16;

/** Where a copy goes: an endpoint's `http://address:port` and how to speak to it. */
export interface MirrorTarget {
  readonly origin: string;
  readonly wire: Wire;
}

/**
 * TLS under the wire's context, its server name the context's own: undici would take
 * the copy's Host (fedgate's service name, not the backend's certificate's) for SNI.
 */
function tlsConnector(wire: Wire): buildConnector.connector {
  const options = wire.tls?.options ?? {};
  const connector = buildConnector({
    ...options,
    allowH2: wire.h2,
  } as buildConnector.BuildOptions);
  const servername = (options.servername ?? null) as string;
  return (opts, cb) => connector({ ...opts, servername }, cb);
}

export class Mirrors {
  #inFlight = 0;
  readonly #agents = new Map<string, Agent>();

  get inFlight(): number {
    return this.#inFlight;
  }

  /** The Agent for a wire: in clear (HTTP/1.1 or h2c), or TLS under one context. */
  #agentFor(wire: Wire): Agent {
    const key = wire.tls ? `tls ${wire.h2} ${wire.tls.key}` : wire.h2 ? 'h2c' : 'h1';
    let agent = this.#agents.get(key);
    if (agent) return agent;
    agent = new Agent({
      connections: 16,
      headersTimeout: MIRROR_TIMEOUT_MS,
      bodyTimeout: MIRROR_TIMEOUT_MS,
      ...(wire.tls ? { connect: tlsConnector(wire), allowH2: wire.h2 } : {}),
      ...(!wire.tls && wire.h2 ? { useH2c: true } : {}),
    });
    this.#agents.set(key, agent);
    if (this.#agents.size > MAX_AGENTS) {
      const [oldest] = this.#agents;
      if (oldest) {
        this.#agents.delete(oldest[0]);
        // Copies under way on it finish: close waits for them.
        void oldest[1].close().catch(() => {});
      }
    }
    return agent;
  }

  /** Sends a copy to `target`; `done` hears how it ended. */
  send(
    target: MirrorTarget,
    method: string,
    path: string,
    headers: readonly string[],
    body: Buffer | undefined,
    done: (r: MirrorResult) => void,
  ): void {
    if (this.#inFlight >= MAX_MIRRORS_IN_FLIGHT) {
      done('dropped');
      return;
    }
    const fields: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] ?? '';
      if (!BODY_FIELDS.has(name.toLowerCase())) fields.push(name, headers[i + 1] ?? '');
    }
    this.#inFlight++;
    const signal = AbortSignal.timeout(MIRROR_TIMEOUT_MS);
    const origin = target.wire.tls
      ? `https://${target.origin.slice('http://'.length)}`
      : target.origin;
    this.#agentFor(target.wire)
      .request({ origin, method, path, headers: fields, signal, ...(body ? { body } : {}) })
      .then(async (r) => {
        await r.body.dump();
        done('sent');
      })
      .catch(() => done('failed'))
      .finally(() => this.#inFlight--);
  }

  /**
   * Calls `then` with the request's body when it is cheap to copy, once the real
   * request's tries have read it whole (`tap` is handed each chunk they read), else
   * at once with none. A body not read whole (fedgate answered before any try, or
   * the client left) goes as none.
   */
  static body(
    req: Readable & { readonly headers: IncomingHttpHeaders },
    hasBody: boolean,
    setTap: (tap: (chunk: Buffer) => void) => void,
    then: (body: Buffer | undefined) => void,
  ): void {
    const declared = req.headers['content-length'];
    const size = declared === undefined ? Number.NaN : Number(declared);
    if (!hasBody || !(size > 0 && size <= MIRROR_BODY_LIMIT)) {
      setImmediate(then, undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    let over = false;
    setTap((chunk) => {
      bytes += chunk.length;
      chunks.push(chunk);
    });
    const finish = () => {
      if (over) return;
      over = true;
      req.off('end', finish);
      req.off('close', finish);
      then(bytes === size ? Buffer.concat(chunks, bytes) : undefined);
    };
    req.once('end', finish);
    req.once('close', finish);
  }

  async close(): Promise<void> {
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    await Promise.all(agents.map((a) => a.destroy()));
  }
}
