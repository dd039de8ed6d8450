// Response trailers on their way to the client. An HTTP/2 client always takes them
// (a trailing HEADERS frame). An HTTP/1.1 client takes them only when it said so
// (`TE: trailers`, RFC 9110 §6.5.1) and the answer is chunked; otherwise they are
// dropped, as a recipient may (RFC 9110 §6.5.1).
import type { ProxyRequest, ProxyResponse } from './answers.ts';
import { takesTrailers } from './headers.ts';

/** Fields never sent as trailers: framing, routing, and HTTP/2's connection-specific ones. */
const NOT_TRAILERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
  'host',
  'http2-settings',
]);

/** Whether the client of `req` takes trailers: any HTTP/2 client, an HTTP/1.1 one that says `TE: trailers`. */
export function clientTakesTrailers(req: ProxyRequest): boolean {
  return req.httpVersionMajor === 2 || takesTrailers(req.headers.te);
}

/** The trailers fit to send on: no pseudo-headers, no framing or connection fields. */
export function relayableTrailers(
  trailers: Record<string, string | string[] | undefined> | null | undefined,
): Record<string, string | string[]> | undefined {
  if (!trailers) return undefined;
  let out: Record<string, string | string[]> | undefined;
  for (const name in trailers) {
    const value = trailers[name];
    const lower = name.toLowerCase();
    if (value === undefined || lower.charCodeAt(0) === 58 /* : */ || NOT_TRAILERS.has(lower)) {
      continue;
    }
    out ??= {};
    out[lower] = value;
  }
  return out;
}

/**
 * Adds the upstream's trailers to the client's answer, before its end. An HTTP/1.1
 * answer sent with a Content-Length has no place for them (Node drops them then).
 */
export function addTrailers(
  res: ProxyResponse,
  trailers: Record<string, string | string[]> | undefined,
): void {
  if (!trailers) return;
  try {
    res.addTrailers(trailers);
  } catch {
    // A value Node will not send: the answer ends without its trailers rather than not at all.
  }
}
