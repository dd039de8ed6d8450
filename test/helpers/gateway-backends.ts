// Backends for the Gateway API tests: node:http servers that answer what they saw
// (their name, method, URL and headers, as JSON) and record it. Paths:
//   /status/N   answers status N
//   …/slow/MS   answers after MS ms
//   …/drip/MS   answers at once, a chunk every 100 ms, and ends after MS ms
//   /hang       never answers (every path, while `hangAll` is set)
//   …/flaky     500 from a backend set `flaky`, else 200
// Every answer carries `x-backend: NAME` and `x-remove-me: 1`, and the headers the
// request's `X-Echo-Set-Header: name:value,…` asks for (as the conformance suite's
// echo server does), for response header modifiers.
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The request body, once whole (undefined before). */
  body?: string;
}

export interface EchoBackend {
  readonly name: string;
  readonly address: string;
  port: number;
  readonly seen: Seen[];
  /** /hang requests still open. */
  hanging: number;
  flaky: boolean;
  /** Every request hangs (never answered) while set. */
  hangAll: boolean;
  stop: () => Promise<void>;
}

/** What an echo backend answers. */
export interface Echoed extends Seen {
  readonly backend: string;
}

export async function echoBackend(name: string, address: string): Promise<EchoBackend> {
  const b: EchoBackend = {
    name,
    address,
    port: 0,
    seen: [],
    hanging: 0,
    flaky: false,
    hangAll: false,
    stop: async () => {},
  };
  const server = createServer((req, res) => {
    const seen: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    b.seen.push(seen);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      seen.body = body;
    });
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const head: Record<string, string> = {
      'content-type': 'application/json',
      'x-backend': name,
      'x-remove-me': '1',
    };
    const asked = req.headers['x-echo-set-header'];
    for (const pair of (typeof asked === 'string' ? asked : '').split(',')) {
      const colon = pair.indexOf(':');
      if (colon > 0) head[pair.slice(0, colon).trim()] = pair.slice(colon + 1).trim();
    }
    const answer = (status: number) => {
      res.writeHead(status, head);
      res.end(JSON.stringify({ backend: name, ...seen }));
    };
    if (path.startsWith('/status/')) return answer(Number(path.slice(8)));
    const slow = /\/slow\/(\d+)$/.exec(path);
    if (slow) {
      const t = setTimeout(() => answer(200), Number(slow[1]));
      res.on('close', () => clearTimeout(t));
      return;
    }
    const drip = /\/drip\/(\d+)$/.exec(path);
    if (drip) {
      res.writeHead(200, { ...head, 'content-type': 'text/plain' });
      res.write('.');
      const every = setInterval(() => res.write('.'), 100);
      const end = setTimeout(() => {
        clearInterval(every);
        res.end('end');
      }, Number(drip[1]));
      res.on('close', () => {
        clearInterval(every);
        clearTimeout(end);
      });
      return;
    }
    if (path === '/hang' || b.hangAll) {
      b.hanging++;
      res.on('close', () => b.hanging--);
      return;
    }
    if (path.endsWith('/flaky')) return answer(b.flaky ? 500 : 200);
    answer(200);
  });
  server.listen(0, address);
  await once(server, 'listening');
  b.port = (server.address() as AddressInfo).port;
  b.stop = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return b;
}

/** An answer through the proxy: an echo backend's, parsed, or fedgate's own (body undefined). */
export interface EchoAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Echoed | undefined;
  readonly text: string;
}

/** A request to `base` (the proxy's URL) for `host`, its answer read whole. */
export async function askThrough(
  base: string,
  host: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<EchoAnswer> {
  const r = await request(`${base}${path}`, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: { host, ...opts.headers },
  });
  const text = await r.body.text();
  let body: Echoed | undefined;
  try {
    body = JSON.parse(text) as Echoed;
  } catch {
    body = undefined;
  }
  return { status: r.statusCode, headers: r.headers, body, text };
}
