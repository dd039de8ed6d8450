// How the sample backends (backends.ts) write their answers: JSON, a status, N bytes,
// an echoed body, or a raw answer on a socket node:http has handed over.
import {
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';

// Every /bytes answer repeats this one chunk. Byte k of the stream is k mod 256
// (64 KiB is a multiple of 256), so a client can check what it got.
const CHUNK = Buffer.alloc(64 * 1024);
for (let i = 0; i < CHUNK.length; i++) CHUNK[i] = i & 0xff;

/** Runs `then` once the request body has been read to the end and dropped. */
export function whenRead(req: IncomingMessage, then: () => void): void {
  // Reading the body keeps keep-alive connections usable.
  req.resume();
  req.on('end', then);
}

/** The body straight back as it arrives; pipeline gives backpressure both ways. */
export function echo(req: IncomingMessage, res: ServerResponse): void {
  const headers: OutgoingHttpHeaders = { 'Cache-Control': 'no-store' };
  const type = req.headers['content-type'];
  if (type !== undefined) headers['Content-Type'] = type;
  // Without a length node:http answers chunked.
  const length = req.headers['content-length'];
  if (length !== undefined) headers['Content-Length'] = length;
  res.writeHead(200, headers);
  // An error here is a client gone mid-body; pipeline has destroyed both sides already.
  pipeline(req, res, () => {});
}

export function sendBytes(req: IncomingMessage, res: ServerResponse, n: number): void {
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': n,
    'Cache-Control': 'no-store',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  let left = n;
  const pump = (): void => {
    while (left > 0) {
      if (res.destroyed) return;
      const size = Math.min(left, CHUNK.length);
      left -= size;
      if (!res.write(size === CHUNK.length ? CHUNK : CHUNK.subarray(0, size))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  // A client gone mid-stream never drains: forget the pending pump.
  res.once('close', () => res.off('drain', pump));
  pump();
}

export function sendStatus(
  res: ServerResponse,
  code: number,
  where: Record<string, unknown>,
): void {
  if (code === 102 || code === 103) {
    // A 1xx is interim: send it, then a final answer (a 1xx alone leaves clients waiting).
    if (code === 102) res.writeProcessing();
    else res.writeEarlyHints({ link: '</early-hint>; rel=preload; as=fetch' });
    sendJson(res, 200, { ...where, status: 200, informational: code });
    return;
  }
  if (code === 204 || code === 205 || code === 304) {
    // No content allowed (RFC 9110 15.3.5, 15.3.6, 15.4.5); 205 says so with a zero length.
    res.writeHead(code, {
      'Cache-Control': 'no-store',
      ...(code === 205 ? { 'Content-Length': 0 } : {}),
    });
    res.end();
    return;
  }
  sendJson(res, code, { ...where, status: code });
}

export function sendJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(code, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

/** An HTTP answer written on a socket node:http has handed over (a refused upgrade). */
export function sendRawJson(socket: Socket, code: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  socket.end(
    `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(text)}\r\n` +
      'Cache-Control: no-store\r\nConnection: close\r\n\r\n' +
      text,
  );
}
