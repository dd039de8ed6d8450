import { describe, expect, it } from 'vitest';
import type { ProxyRequest } from './answers.ts';
import { clientTakesTrailers, relayableTrailers } from './trailers.ts';

const req = (major: number, te?: string) =>
  ({ httpVersionMajor: major, headers: te === undefined ? {} : { te } }) as unknown as ProxyRequest;

describe('trailers', () => {
  it('go to HTTP/2 clients, and to HTTP/1.1 ones that said TE: trailers', () => {
    expect(clientTakesTrailers(req(2))).toBe(true);
    expect(clientTakesTrailers(req(1, 'trailers'))).toBe(true);
    expect(clientTakesTrailers(req(1, 'gzip;q=1, Trailers'))).toBe(true);
    expect(clientTakesTrailers(req(1, 'gzip'))).toBe(false);
    expect(clientTakesTrailers(req(1))).toBe(false);
  });

  it('lose framing and connection fields and pseudo-headers; none left is none', () => {
    expect(
      relayableTrailers({
        'grpc-status': '0',
        'X-Checksum': 'abc',
        'content-length': '3',
        connection: 'close',
        ':status': '200',
        none: undefined,
      }),
    ).toEqual({ 'grpc-status': '0', 'x-checksum': 'abc' });
    expect(relayableTrailers({ 'transfer-encoding': 'chunked' })).toBeUndefined();
    expect(relayableTrailers(undefined)).toBeUndefined();
  });
});
