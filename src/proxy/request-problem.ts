// What makes a request malformed, or unsendable by undici (the upstream client),
// checked before any endpoint is picked. undici refuses such a request locally,
// before anything is sent; through the attempt loop that refusal looked like a
// reset from each endpoint in turn: retried, reported to outlier detection, a 502,
// and healthy endpoints ejected by a client's bad requests. Here it is the client's
// 400, and no endpoint hears of it.
//
// undici 8's rules (lib/core/request.js: the constructor and processHeader) and
// where each is met:
//   path starts with "/" (or is absolute)   here: asterisk-form; llhttp and nghttp2
//                                            refuse any other shape, and route.ts turns
//                                            absolute-form into a path
//   path characters \x21-\xff               here; llhttp and nghttp2 already refuse the rest
//   method is a token                       here; llhttp knows its methods, nghttp2 checks
//   header names are tokens, values         llhttp refuses the request, nghttp2 drops the
//     field characters                      field. Not checked again here: it would cost a
//                                            regex per header on every request (~1 µs), and
//                                            what a lenient parser (--insecure-http-parser)
//                                            lets through, undici refuses and failures.ts
//                                            classifies as the request's: 400 all the same
//   one Host                                here: node:http keeps both; nghttp2 resets
//   one Content-Length, of digits           here; llhttp and nghttp2 refuse the rest
//   no transfer-encoding, keep-alive,       never sent: hop-by-hop, headers.ts drops them
//     upgrade, connection (token list),
//     expect
//   the upgrade value's characters          the Upgrade header's, as any value's
// Whatever undici still refuses is classified in failures.ts as the request's fault.
//
// And the RFC rules that make a request malformed although undici would send it:
// a Host (or HTTP/2 :authority) that is no authority, or whose port is above 65535
// (RFC 9110 §7.2, RFC 3986 §3.2); a Host beside an :authority naming another
// (RFC 9113 §8.3.1).
import type { ErrorCode } from '../errors.ts';
import type { ProxyRequest } from './answers.ts';
import { splitAuthority } from './hosts.ts';

export interface RequestProblem {
  readonly code: Extract<ErrorCode, 'BAD_REQUEST' | 'REQUEST_UNFORWARDABLE'>;
  readonly detail: string;
}

/** undici's token (RFC 9110 §5.6.2): header names and methods. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Not a character undici sends in a path. */
const NOT_PATH = /[^\x21-\xff]/;
const DIGITS = /^\d+$/;

const bad = (detail: string): RequestProblem => ({ code: 'BAD_REQUEST', detail });

/** Why the request is malformed or cannot be sent upstream; undefined when neither. */
export function requestProblem(req: ProxyRequest): RequestProblem | undefined {
  if (!TOKEN.test(req.method ?? '')) return bad('the method is not a token');
  const target = req.url ?? '';
  if (target === '*') {
    // Asterisk-form asks about the server itself (RFC 9110 §9.3.7), and undici sends
    // only origin-form paths: passing it on as "/" would ask an endpoint about a
    // resource the client never named.
    return {
      code: 'REQUEST_UNFORWARDABLE',
      detail: 'asterisk-form ("OPTIONS *") addresses the server itself, and is not forwarded',
    };
  }
  if (target.charCodeAt(0) === 47 /* / */ && NOT_PATH.test(target))
    return bad('the request target holds a character a path may not');
  const raw = req.rawHeaders;
  let hosts = 0;
  let lengths = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const value = raw[i + 1] ?? '';
    // Only Host (4) and Content-Length (14) are looked at: no lower-casing of the rest.
    const lower = name.length === 4 || name.length === 14 ? name.toLowerCase() : '';
    if (lower === 'host') {
      // RFC 9112 §3.2: more than one Host is a 400, whatever they say.
      if (++hosts > 1) return bad('more than one Host header');
      if (!splitAuthority(value)) return bad('the Host header is not a host and port');
    } else if (lower === 'content-length') {
      if (++lengths > 1) return bad('more than one Content-Length header');
      if (!DIGITS.test(value)) return bad('the Content-Length header is not a number');
    }
  }
  return req.httpVersionMajor === 2 ? authorityProblem(req) : undefined;
}

/** HTTP/2: :authority is an authority, and a Host beside it names the same (RFC 9113 §8.3.1). */
function authorityProblem(req: ProxyRequest): RequestProblem | undefined {
  const authority = req.headers[':authority'];
  if (typeof authority !== 'string') return undefined;
  const a = splitAuthority(authority);
  if (!a) return bad('the :authority is not a host and port');
  const host = req.headers.host;
  if (host === undefined) return undefined;
  const h = splitAuthority(host);
  const scheme = req.headers[':scheme'];
  const defaultPort = scheme === 'http' ? '80' : '443';
  const port = (p: string) => (p === '' ? defaultPort : p);
  if (!h || h.host.toLowerCase() !== a.host.toLowerCase() || port(h.port) !== port(a.port))
    return bad('the Host header and :authority name different hosts');
  return undefined;
}
