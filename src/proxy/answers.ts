// fedgate's own answers: short plain text with the stable error code in
// x-fedgate-error (src/errors.ts maps each code to its status), on a response
// object or, for upgrades and parser errors, written raw onto the socket.
import { type IncomingMessage, ServerResponse, STATUS_CODES } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { type ErrorCode, httpStatusFor } from '../errors.ts';
import { grpcErrorHeaders } from './grpc.ts';

export type ProxyRequest = IncomingMessage | Http2ServerRequest;
/**
 * Node's HTTP/1 response; an HTTP/2 compatibility response is used through the same
 * calls (writeHead, write, end, destroy, events), so it is passed as one.
 */
export type ProxyResponse = ServerResponse;

/** HTTP/1 answers can carry Connection: close and a reason phrase; HTTP/2 ones cannot. */
export function isHttp1(res: ProxyResponse): boolean {
  return (res as ProxyResponse | Http2ServerResponse) instanceof ServerResponse;
}

/**
 * Sends fedgate's own answer: plain text, the error code in a header; to a gRPC
 * call (`grpc`), a trailers-only gRPC answer instead (grpcAnswer).
 */
export function sendError(
  res: ProxyResponse,
  code: ErrorCode,
  detail: string,
  close = false,
  grpc = false,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (grpc) {
    grpcAnswer(res, code, detail, close);
    return;
  }
  const body = `fedgate: ${detail}\n`;
  const headers: Record<string, string | number> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-fedgate-error': code,
  };
  if (close && isHttp1(res)) headers.connection = 'close';
  res.writeHead(httpStatusFor(code), headers);
  res.end(body);
}

/**
 * Trailers-only (HTTP 200, grpc-status and grpc-message, no body), so gRPC clients
 * see the status, not "HTTP 503". Over HTTP/2 it is one HEADERS frame with
 * END_STREAM: the compatibility API's writeHead and end() send an empty DATA frame
 * after the head (checked on Node 24), which a strict client could take for a message.
 */
function grpcAnswer(res: ProxyResponse, code: ErrorCode, detail: string, close: boolean): void {
  const headers: Record<string, string | number> = grpcErrorHeaders(code, detail);
  if (respondHeadOnly(res, 200, headers)) return;
  headers['content-length'] = 0;
  if (close) headers.connection = 'close';
  res.writeHead(200, headers);
  res.end();
}

/**
 * HTTP/2: `headers` as the whole response, one HEADERS frame with END_STREAM (a
 * trailers-only gRPC answer; Node's compatibility writeHead and end() would add an
 * empty DATA frame to end the stream, and gRPC clients then find no status). false
 * on HTTP/1.1, where the caller writes it as usual.
 */
export function respondHeadOnly(
  res: ProxyResponse,
  status: number,
  headers: Record<string, string | string[] | number>,
): boolean {
  if (isHttp1(res)) return false;
  const { stream } = res as unknown as Http2ServerResponse;
  if (stream && !stream.destroyed && !stream.closed) {
    stream.respond({ ...headers, ':status': status }, { endStream: true });
  }
  return true;
}

/** A Gateway API RequestRedirect: the status and Location, no body. */
export function sendRedirect(
  res: ProxyResponse,
  status: number,
  location: string,
  close: boolean,
): void {
  const headers: Record<string, string | number> = { location, 'content-length': 0 };
  if (close && isHttp1(res)) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end();
}

/** A redirect answered onto an upgrade's raw socket. */
export function rawRedirect(socket: Duplex, status: number, location: string): void {
  writeRawResponse(socket, status, { location }, '');
}

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

/** fedgate's own answer onto a raw socket (upgrades, parser errors), which then closes. */
export function rawError(socket: Duplex, code: ErrorCode, detail: string): void {
  writeRawResponse(
    socket,
    httpStatusFor(code),
    { 'content-type': 'text/plain; charset=utf-8', 'x-fedgate-error': code },
    `fedgate: ${detail}\n`,
  );
}
