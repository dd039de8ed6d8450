import { describe, expect, it } from 'vitest';
import { downstreamResponseHeaders, takesTrailers, upstreamRequestHeaders } from './headers.ts';

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

describe('upstreamRequestHeaders', () => {
  it('drops hop-by-hop headers and those Connection names, keeps the rest in order', () => {
    const raw = [
      'Host', 'web.example:8080',
      'Connection', 'keep-alive, X-Secret',
      'X-Secret', 'hush',
      'Keep-Alive', 'timeout=5',
      'TE', 'trailers',
      'Transfer-Encoding', 'chunked',
      'Proxy-Authorization', 'Basic x',
      'Expect', '100-continue',
      'Upgrade', 'h2c',
      'Accept', 'a/b',
      'Set-Thing', '1',
      'Set-Thing', '2',
    ]; // biome-ignore format: pairs read better on one line each
    const out = pairs(
      upstreamRequestHeaders(raw, 'keep-alive, X-Secret', {
        clientAddress: '127.10.0.1',
        host: 'web.example:8080',
        proto: 'http',
      }),
    );
    expect(out).toEqual([
      ['Host', 'web.example:8080'],
      ['Accept', 'a/b'],
      ['Set-Thing', '1'],
      ['Set-Thing', '2'],
      ['x-forwarded-for', '127.10.0.1'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'web.example:8080'],
      ['forwarded', 'for=127.10.0.1;host="web.example:8080";proto=http'],
    ]);
  });

  it('reads whether TE lists trailers (said again to HTTP/2 backends only)', () => {
    expect(takesTrailers('gzip')).toBe(false);
    expect(takesTrailers('gzip, trailers;q=1')).toBe(true);
    expect(takesTrailers(['deflate', 'Trailers'])).toBe(true);
    expect(takesTrailers(undefined)).toBe(false);
  });

  it('appends to earlier hops, and brackets IPv6 in Forwarded', () => {
    const raw = [
      ':authority', 'web.example',
      'x-forwarded-for', '127.1.1.1',
      'X-Forwarded-For', '127.2.2.2',
      'x-forwarded-proto', 'https',
      'forwarded', 'for=127.1.1.1',
    ]; // biome-ignore format: pairs
    const out = new Map(
      pairs(
        upstreamRequestHeaders(raw, undefined, {
          clientAddress: '::1',
          host: 'web.example',
          proto: 'https',
        }),
      ),
    );
    expect(out.get('host')).toBe('web.example');
    expect(out.has(':authority')).toBe(false);
    expect(out.get('x-forwarded-for')).toBe('127.1.1.1, 127.2.2.2, ::1');
    expect(out.get('x-forwarded-proto')).toBe('https');
    expect(out.get('forwarded')).toBe('for=127.1.1.1, for="[::1]";host=web.example;proto=https');
  });
});

describe('downstreamResponseHeaders', () => {
  it('drops hop-by-hop headers and those Connection names', () => {
    expect(
      downstreamResponseHeaders({
        connection: 'close, x-internal',
        'x-internal': '1',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'set-cookie': ['a=1', 'b=2'],
        'content-type': 'text/plain',
      }),
    ).toEqual({ 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
  });
});
