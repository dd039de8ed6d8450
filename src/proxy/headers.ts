// What crosses the proxy in headers. Hop-by-hop headers (RFC 9110 §7.6.1) belong
// to one connection and are dropped both ways, with every header the Connection
// header names. The request gains X-Forwarded-For/-Proto/-Host and Forwarded
// (RFC 7239) so the backend sees who asked and how. `TE: trailers` (the client
// takes trailers; gRPC servers refuse a call without it) is said again to HTTP/2
// backends alone (h2-upstream.ts): HTTP/1.1 would need `Connection: TE` beside it,
// which undici does not send.

/** Always hop-by-hop, plus Expect (Node answers 100-continue itself; undici refuses it). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
]);

/** The names a Connection header lists, lower case. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  // Nearly every message says just one of these, which name no header: no split, no Set.
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined;
  const out = new Set<string>();
  for (const line of Array.isArray(value) ? value : [value]) {
    for (const t of line.split(',')) {
      const name = t.trim().toLowerCase();
      if (name !== '' && name !== 'close' && name !== 'keep-alive') out.add(name);
    }
  }
  return out.size > 0 ? out : undefined;
}

export interface ForwardedFor {
  /** The client's address as the socket saw it. */
  readonly clientAddress: string;
  /** The Host the client asked for (port included, as sent). */
  readonly host: string;
  readonly proto: 'http' | 'https';
  /** The request target was absolute: its authority replaces the client's Host (RFC 9112 §3.2.2). */
  readonly replaceHost?: boolean;
}

/** RFC 7239 node: IPv6 addresses quoted and bracketed. */
function forwardedNode(address: string): string {
  return address.includes(':') ? `"[${address}]"` : address;
}

/** RFC 7239 value: a token, or a quoted string when it holds anything else. */
function forwardedValue(v: string): string {
  return /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}

/** The last host's forwardedValue: a proxy serves few hosts, mostly one after another. */
let lastHost = '';
let lastHostValue = forwardedValue(lastHost);
function forwardedHost(host: string): string {
  if (host !== lastHost) {
    lastHostValue = forwardedValue(host);
    lastHost = host;
  }
  return lastHostValue;
}

const FORWARDING = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
]);

/**
 * The request headers to send upstream, as undici's flat [name, value, ...] list,
 * from Node's rawHeaders (case and order kept, duplicates kept). HTTP/2 pseudo-headers
 * are dropped; Host is kept as the client sent it (or set from :authority).
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  connection: string | string[] | undefined,
  fwd: ForwardedFor,
): string[] {
  const named = connectionTokens(connection);
  const out: string[] = [];
  let xff: string | undefined;
  let forwarded: string | undefined;
  let host = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower.charCodeAt(0) === 58 /* : */) continue;
    if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue;
    if (FORWARDING.has(lower)) {
      // Earlier hops are kept in the lists; proto and host are ours to say.
      const value = rawHeaders[i + 1]!;
      if (lower === 'x-forwarded-for') xff = xff === undefined ? value : `${xff}, ${value}`;
      else if (lower === 'forwarded')
        forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
      continue;
    }
    if (lower === 'host') {
      if (fwd.replaceHost) continue;
      host = true;
    }
    out.push(name, rawHeaders[i + 1]!);
  }
  if (!host) out.push('host', fwd.host);
  out.push(
    'x-forwarded-for',
    xff === undefined ? fwd.clientAddress : `${xff}, ${fwd.clientAddress}`,
    'x-forwarded-proto',
    fwd.proto,
    'x-forwarded-host',
    fwd.host,
    'forwarded',
    `${forwarded === undefined ? '' : `${forwarded}, `}for=${forwardedNode(fwd.clientAddress)};host=${forwardedHost(fwd.host)};proto=${fwd.proto}`,
  );
  return out;
}

/** Whether a TE value lists `trailers` (RFC 9110, the TE field): the sender takes trailers. */
export function takesTrailers(te: string | string[] | undefined): boolean {
  if (te === undefined) return false;
  for (const line of Array.isArray(te) ? te : [te]) {
    for (const t of line.split(',')) {
      const semi = t.indexOf(';');
      if ((semi < 0 ? t : t.slice(0, semi)).trim().toLowerCase() === 'trailers') return true;
    }
  }
  return false;
}

/** Response headers to pass to the client: undici's parsed object, hop-by-hop removed. */
export function downstreamResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const named = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = v;
  }
  return out;
}
