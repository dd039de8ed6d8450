// The bare Node floor of the proxy benchmark: a process of its own that forwards every
// request to one upstream with undici, and nothing else. No routing, no picking, no
// retries, no timers, no metrics, no X-Forwarded-*: hop-by-hop headers are dropped both
// ways (what forwarding over keep-alive needs), everything else passes as is. It uses
// what fedgate's proxy uses (node:http in front, an undici Pool behind, `dispatch` with
// a handler streaming the body back), so fedgate / this is what fedgate's own work costs.
//
//   node bench/bare-forwarder.ts --listen 127.0.0.1:PORT --upstream 127.240.0.1:18080
//
// Prints `ready http://HOST:PORT/` once it listens. Ends on SIGTERM or SIGINT, or when
// its stdin closes (whoever started it is gone), with process.exit, so a profile asked
// for with --cpu-prof is written.
// First: this process reaches loopback only, as every benchmark process does.
import '../src/netguard/install.ts';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { type Dispatcher, Pool } from 'undici';

/** RFC 9110 §7.6.1's hop-by-hop headers (and Expect: Node answers 100-continue itself). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

const { values } = parseArgs({
  options: { listen: { type: 'string' }, upstream: { type: 'string' } },
});
if (!values.listen || !values.upstream) {
  process.stderr.write('usage: bare-forwarder.ts --listen HOST:PORT --upstream HOST:PORT\n');
  process.exit(2);
}
const at = values.listen.lastIndexOf(':');
const listenHost = values.listen.slice(0, at);
const listenPort = Number(values.listen.slice(at + 1));

// As fedgate's upstream pools: one connection per request in flight, up to 256 (its
// default http.limits.maxRequestsPerEndpoint), kept alive.
const pool = new Pool(`http://${values.upstream}`, { connections: 256, pipelining: 1 });

/** One forwarded request: undici's handler, writing the answer to `res` as it comes. */
class Forward implements Dispatcher.DispatchHandler {
  readonly res: ServerResponse;
  controller: Dispatcher.DispatchController | undefined;

  constructor(res: ServerResponse) {
    this.res = res;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200) return;
    const out: Record<string, string | string[]> = {};
    for (const name in headers) {
      const v = headers[name];
      if (v !== undefined && !HOP_BY_HOP.has(name)) out[name] = v;
    }
    this.res.writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.res.headersSent) this.res.destroy(err);
    else this.res.writeHead(502).end();
  }
}

function forward(req: IncomingMessage, res: ServerResponse): void {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  }
  const hasBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  const handler = new Forward(res);
  // A client that leaves mid-answer must not hold the upstream connection.
  res.once('close', () => {
    if (!res.writableFinished) handler.controller?.abort(new Error('client went away'));
  });
  pool.dispatch(
    { path: req.url ?? '/', method: req.method ?? 'GET', headers, body: hasBody ? req : null },
    handler,
  );
}

const server = createServer(forward);
server.listen(listenPort, listenHost, () => {
  process.stdout.write(`ready http://${listenHost}:${listenPort}/\n`);
});

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections();
  void pool.destroy().finally(() => process.exit(0));
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.on('close', stop);
process.stdin.resume();
