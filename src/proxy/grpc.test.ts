// What makes a request a gRPC call, grpc-timeout both ways, grpc-status from a head
// or trailers, and fedgate's own answer's fields.
import { describe, expect, it } from 'vitest';
import {
  formatGrpcTimeout,
  grpcCall,
  grpcErrorHeaders,
  grpcRetryStatuses,
  grpcStatusOf,
  grpcStatusOfHead,
  isGrpc,
  parseGrpcTimeout,
  percentEncodeGrpcMessage,
} from './grpc.ts';

describe('gRPC calls', () => {
  it('is application/grpc alone, with a codec (+) or parameters (;), any case; nothing else', () => {
    for (const ct of [
      'application/grpc',
      'application/grpc+proto',
      'application/grpc+json',
      'application/grpc;charset=utf-8',
      'Application/GRPC',
    ]) {
      expect(isGrpc({ 'content-type': ct }), ct).toBe(true);
    }
    for (const ct of [
      undefined,
      '',
      'application/json',
      'application/grpc-web',
      'application/grpc-web+proto',
      'application/grpcx',
      'text/application/grpc',
    ]) {
      expect(isGrpc({ 'content-type': ct }), String(ct)).toBe(false);
    }
  });

  it('parses grpc-timeout (1 to 8 digits and H M S m u n) to ms, and refuses anything else', () => {
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('2M')).toBe(120_000);
    expect(parseGrpcTimeout('3S')).toBe(3000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1500u')).toBe(1.5);
    expect(parseGrpcTimeout('99999999n')).toBeCloseTo(99.999999);
    expect(parseGrpcTimeout('0m')).toBe(0);
    for (const bad of ['', 'm', '123456789m', '10', '10s', '-1m', '1.5S', ' 1S', '1 S', '１S']) {
      expect(parseGrpcTimeout(bad), bad).toBeUndefined();
    }
  });

  it('reads a call once: its deadline from grpc-timeout, a malformed one kept for the log', () => {
    expect(grpcCall({ 'content-type': 'application/json', 'grpc-timeout': '1S' })).toBeUndefined();
    expect(grpcCall({ 'content-type': 'application/grpc' })).toEqual({ deadline: undefined });
    expect(grpcCall({ 'content-type': 'application/grpc', 'grpc-timeout': '2S' }, 100)).toEqual({
      deadline: 2100,
    });
    expect(grpcCall({ 'content-type': 'application/grpc', 'grpc-timeout': 'soon' }, 100)).toEqual({
      deadline: undefined,
      badTimeout: 'soon',
    });
  });

  it('formats the time left in the finest unit that fits eight digits, never above it', () => {
    expect(formatGrpcTimeout(1234.5678)).toBe('1234567u');
    expect(formatGrpcTimeout(0.0001)).toBe('1u');
    expect(formatGrpcTimeout(150_000)).toBe('150000m');
    expect(formatGrpcTimeout(200_000_000)).toBe('200000S');
    for (const ms of [0.5, 7, 99_999, 123_456_789, 3e11]) {
      const back = parseGrpcTimeout(formatGrpcTimeout(ms));
      expect(back, String(ms)).toBeLessThanOrEqual(ms);
      expect(back, String(ms)).toBeGreaterThan(ms * 0.99);
    }
  });

  it('reads grpc-status from a head or trailers; a non-200 head without one maps by the spec', () => {
    expect(grpcStatusOf({ 'grpc-status': '14' })).toBe(14);
    expect(grpcStatusOf({ 'grpc-status': ['0'] })).toBe(0);
    expect(grpcStatusOf({ 'grpc-status': 'x' })).toBeUndefined();
    expect(grpcStatusOf(undefined)).toBeUndefined();
    expect(grpcStatusOfHead(200, { 'content-type': 'application/grpc' })).toBeUndefined();
    expect(grpcStatusOfHead(200, { 'grpc-status': '13' })).toBe(13);
    expect(grpcStatusOfHead(503, {})).toBe(14);
    expect(grpcStatusOfHead(404, {})).toBe(12);
    expect(grpcStatusOfHead(500, {})).toBe(2);
  });

  it("maps grpcRetryOn's names to statuses", () => {
    expect([...grpcRetryStatuses(['unavailable', 'resource-exhausted'])]).toEqual([14, 8]);
  });

  it('percent-encodes grpc-message: bytes outside printable ASCII and % itself', () => {
    expect(percentEncodeGrpcMessage('plain text: ok')).toBe('plain text: ok');
    expect(percentEncodeGrpcMessage('100% déjà\n')).toBe('100%25 d%C3%A9j%C3%A0%0A');
    expect(decodeURIComponent(percentEncodeGrpcMessage('ünï %cödé'))).toBe('ünï %cödé');
  });

  it("builds fedgate's trailers-only answer: grpc-status from the error table, the code in the message", () => {
    expect(grpcErrorHeaders('NO_HEALTHY_UPSTREAM', 'no endpoint of ns/a')).toEqual({
      'content-type': 'application/grpc',
      'grpc-status': '14',
      'grpc-message': 'NO_HEALTHY_UPSTREAM: no endpoint of ns/a',
      'x-fedgate-error': 'NO_HEALTHY_UPSTREAM',
    });
    expect(grpcErrorHeaders('UPSTREAM_OVERFLOW', 'full')['grpc-status']).toBe('8');
    expect(grpcErrorHeaders('UPSTREAM_TIMEOUT', 'late')['grpc-status']).toBe('4');
  });
});
