// An OTLP/HTTP endpoint that accepts every export and keeps nothing: the collector
// the tracing rows of bench/proxy.bench.ts export to. It runs in the benchmark's own
// process, idle while the load tool runs, so the cost measured is fedgate's (building,
// batching, encoding and sending spans) and not a collector's decoding. An empty body
// is a valid ExportTraceServiceResponse (every field default).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpDiscard {
  /** The traces URL, for `tracing.endpoint`. */
  readonly endpoint: string;
  /** Export requests and body bytes received so far. */
  counts(): { requests: number; bytes: number };
  stop(): Promise<void>;
}

export async function startOtlpDiscard(): Promise<OtlpDiscard> {
  let requests = 0;
  let bytes = 0;
  const server: Server = createServer((req, res) => {
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('end', () => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    counts: () => ({ requests, bytes }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
