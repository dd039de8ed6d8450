import { describe, expect, it } from 'vitest';
import { isIdempotent, type RetryCase, retryable } from './retry-rules.ts';

function retryCase(over: Partial<RetryCase> = {}, carrier: Partial<RetryCase['carrier']> = {}) {
  return {
    clientGone: false,
    tries: 1,
    attempts: 2,
    idempotent: true,
    ...over,
    carrier: { hasBody: false, bodyStarted: () => false, ...carrier },
  };
}

describe('retry rules', () => {
  it('retries while tries are left and the client is there', () => {
    expect(retryable('connect', retryCase())).toBe(true);
    expect(retryable('connect', retryCase({ tries: 3 }))).toBe(false);
    expect(retryable('connect', retryCase({ clientGone: true }))).toBe(false);
  });

  it('retries statuses and timeouts of idempotent methods only', () => {
    expect(isIdempotent(undefined)).toBe(true);
    expect(isIdempotent('POST')).toBe(false);
    for (const failure of ['status', 'timeout'] as const) {
      expect(retryable(failure, retryCase({ idempotent: false }))).toBe(false);
    }
    expect(retryable('reset', retryCase({ idempotent: false }))).toBe(true);
  });

  it('sends a started body again only when it was kept: a refused stream, a gRPC call kept whole', () => {
    const started = { hasBody: true, bodyStarted: () => true };
    expect(retryable('reset', retryCase({}, started))).toBe(false);
    expect(retryable('refused', retryCase({}, { ...started, canReplay: () => true }))).toBe(true);
    expect(retryable('refused', retryCase({}, { ...started, canReplay: () => false }))).toBe(false);
    const whole = (w?: boolean) => w === true;
    expect(retryable('grpc_status', retryCase({}, { ...started, canReplay: whole }))).toBe(true);
    // A connection failure replays a gRPC call's kept body, not a plain request's.
    expect(retryable('reset', retryCase({}, { ...started, canReplay: whole }))).toBe(false);
    const grpc = { ...started, canReplay: whole, grpc: {} as RetryCase['carrier']['grpc'] };
    expect(retryable('reset', retryCase({}, grpc))).toBe(true);
  });
});
