// Connections to a backend over TLS, and the HTTP/2 sessions' sockets. An HTTP/2
// session is dialled by TCP (prior knowledge) or by TLS offering h2 by ALPN; the
// HTTP/1.1 path over TLS is an undici Pool whose server name is the route's own.
// undici would otherwise take the request's Host for SNI and the certificate check
// (and reconnect whenever it changes): the client's Host names fedgate's service,
// not the backend's certificate.

import type { Socket } from 'node:net';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { buildConnector, type Dispatcher, Pool } from 'undici';
import type { BackendTlsContext } from './backend-tls.ts';
import { tlsFailure } from './failures.ts';
import type { Dial } from './h2-pool.ts';
import type { Upstream, UpstreamRequest, UpstreamRoute } from './h2-upstream.ts';

/** An HTTP/1.1 pool over TLS to `origin` (http://host:port), SNI and verification by `tls`. */
export function tlsPool(origin: string, options: Pool.Options, tls: BackendTlsContext): Upstream {
  const servername = tls.options.servername;
  const connector = buildConnector({
    ...tls.options,
    timeout: options.connectTimeout,
  } as buildConnector.BuildOptions);
  const pool = new Pool(origin.replace(/^http:/, 'https:'), {
    ...options,
    // No server name: none is sent (an IP address is no SNI name), whatever the Host.
    connect: (opts, cb) =>
      connector({ ...opts, servername: (servername ?? null) as string }, (err, socket) => {
        if (socket) alertAsCause(socket);
        (cb as (e: Error | null, s: typeof socket) => void)(err, socket);
      }),
  });
  // One name for every request, so undici never reconnects for a new Host.
  const name = servername ?? new URL(origin).hostname;
  return {
    dispatch: (opts: UpstreamRequest, handler: Dispatcher.DispatchHandler) =>
      // undici reads `servername` from the options; its types do not list it.
      pool.dispatch({ ...opts, servername: name } as Dispatcher.DispatchOptions, handler),
    get stats() {
      return pool.stats;
    },
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  };
}

/**
 * A backend that refuses fedgate's client certificate says so by an alert after the
 * TLS 1.3 handshake, which the socket emits as an error just before its end; undici
 * then fails the request with "other side closed" (observed on Node 24.21, undici
 * 8: its 'end' handler replaces the error). The alert goes on that error as its
 * cause, so the classifier sees a TLS failure.
 */
function alertAsCause(socket: Socket): void {
  let alert: Error | undefined;
  socket.prependListener('error', (e: Error) => {
    if (alert === undefined && tlsFailure(e)) alert = e;
    else if (alert !== undefined && e !== alert && e.cause === undefined) e.cause = alert;
  });
}

/** How an HTTP/2 session's socket is opened: TCP (prior knowledge), or TLS offering h2 by ALPN. */
export function dialer(route: UpstreamRoute): Dial {
  const { hostname, port } = new URL(route.origin);
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  const tls = route.wire.tls;
  return () =>
    new Promise((resolve, reject) => {
      if (!tls) {
        const socket = netConnect({ host, port: Number(port) });
        socket.once('error', reject);
        socket.once('connect', () => {
          socket.off('error', reject);
          resolve(socket);
        });
        return;
      }
      const socket = tlsConnect({
        host,
        port: Number(port),
        ...tls.options,
        ALPNProtocols: ['h2', 'http/1.1'],
      });
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        socket.off('error', reject);
        if (socket.alpnProtocol === 'h2') {
          resolve(socket);
          return;
        }
        socket.destroy();
        resolve('http/1.1');
      });
    });
}
