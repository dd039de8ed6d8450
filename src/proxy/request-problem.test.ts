import { describe, expect, it } from 'vitest';
import type { ProxyRequest } from './answers.ts';
import { requestProblem } from './request-problem.ts';

/** A request as Node's HTTP/1.1 (or, with pseudo-headers, HTTP/2) server hands it over. */
function req(rawHeaders: string[], over: { method?: string; url?: string; h2?: boolean } = {}) {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    headers[name] ??= rawHeaders[i + 1]!;
  }
  return {
    method: over.method ?? 'GET',
    url: over.url ?? '/',
    rawHeaders,
    headers,
    httpVersionMajor: over.h2 ? 2 : 1,
  } as unknown as ProxyRequest;
}

const code = (r: ProxyRequest) => requestProblem(r)?.code;

describe('requestProblem', () => {
  it('passes an ordinary request, HTTP/1.1 and HTTP/2', () => {
    expect(requestProblem(req(['Host', 'web.example:8080', 'Accept', '*/*']))).toBeUndefined();
    expect(requestProblem(req(['Host', '[::1]:80', 'X-A', 'caf\u00e9\tok']))).toBeUndefined();
    const h2 = [':method', 'GET', ':authority', 'Web.Example:443', ':scheme', 'https'];
    expect(requestProblem(req(h2, { h2: true }))).toBeUndefined();
    expect(requestProblem(req([...h2, 'host', 'web.example'], { h2: true }))).toBeUndefined();
  });

  it('refuses two Host headers, even the same one twice (RFC 9112 §3.2)', () => {
    expect(code(req(['Host', 'a.example', 'Host', 'b.example']))).toBe('BAD_REQUEST');
    expect(code(req(['Host', 'a.example', 'host', 'a.example']))).toBe('BAD_REQUEST');
  });

  it('refuses a Host that is no host and port, or whose port is above 65535', () => {
    for (const host of ['a.example:70000', 'a.example:65536', '[::1', 'a b', 'a.example:8o']) {
      expect(code(req(['Host', host])), host).toBe('BAD_REQUEST');
    }
  });

  it('answers asterisk-form as unforwardable, and refuses paths undici will not send', () => {
    expect(code(req(['Host', 'a'], { method: 'OPTIONS', url: '*' }))).toBe('REQUEST_UNFORWARDABLE');
    expect(code(req(['Host', 'a'], { url: '/a b' }))).toBe('BAD_REQUEST');
    expect(code(req(['Host', 'a'], { url: '/a\u0001' }))).toBe('BAD_REQUEST');
  });

  it('refuses what undici refuses of methods and Content-Length', () => {
    expect(code(req(['Host', 'a'], { method: 'GE T' }))).toBe('BAD_REQUEST');
    expect(code(req(['Host', 'a', 'Content-Length', '2', 'content-length', '2']))).toBe(
      'BAD_REQUEST',
    );
    expect(code(req(['Host', 'a', 'Content-Length', '+2']))).toBe('BAD_REQUEST');
  });

  it("leaves header names and values to Node's parsers (undici's refusal is classified after)", () => {
    expect(code(req(['Host', 'a', 'X-A', 'a\u007fb']))).toBeUndefined();
  });

  it('refuses an HTTP/2 :authority that is no authority, or a Host naming another (RFC 9113 §8.3.1)', () => {
    const h2 = (authority: string, ...rest: string[]) =>
      code(req([':authority', authority, ':scheme', 'https', ...rest], { h2: true }));
    expect(h2('a.example', 'host', 'b.example')).toBe('BAD_REQUEST');
    expect(h2('a.example:8443', 'host', 'a.example')).toBe('BAD_REQUEST');
    expect(h2('a.example:70000')).toBe('BAD_REQUEST');
    expect(h2('[::1')).toBe('BAD_REQUEST');
    // The same entity, spelled otherwise: case, and the scheme's default port.
    expect(h2('A.Example', 'host', 'a.example:443')).toBeUndefined();
  });
});
