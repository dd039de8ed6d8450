import { describe, expect, it } from 'vitest';
import { service } from '../../test/fixtures/services.ts';
import type { PortRecord } from '../catalog/model.ts';
import { chooseProtocol, parseBackendProtocol, proxiedPort, wireFor } from './backend-protocol.ts';

const tcp = (name: string, port: number, appProtocol?: string): PortRecord => ({
  name,
  protocol: 'TCP',
  port,
  ...(appProtocol ? { appProtocol } : {}),
});

describe('proxiedPort', () => {
  it('takes http first (by name or appProtocol), then a known protocol, then the first TCP port', () => {
    expect(proxiedPort([tcp('grpc', 9000), tcp('http', 80)])?.port).toBe(80);
    expect(proxiedPort([tcp('grpc', 9000), tcp('web', 81, 'http')])?.port).toBe(81);
    expect(proxiedPort([tcp('metrics', 9100), tcp('api', 9000, 'kubernetes.io/h2c')])?.port).toBe(
      9000,
    );
    expect(proxiedPort([tcp('metrics', 9100), tcp('h2c', 9001)])?.port).toBe(9001);
    expect(proxiedPort([tcp('metrics', 9100), tcp('other', 9001)])?.port).toBe(9100);
    expect(proxiedPort([{ name: 'dns', protocol: 'UDP', port: 53 }, tcp('x', 1)])?.port).toBe(1);
    expect(proxiedPort([])).toBeUndefined();
  });
});

describe('the protocol', () => {
  it('reads Kubernetes and Istio spellings, case-insensitively', () => {
    expect(parseBackendProtocol('kubernetes.io/h2c')).toBe('h2c');
    expect(parseBackendProtocol(' GRPC ')).toBe('grpc');
    expect(parseBackendProtocol('kubernetes.io/wss')).toBe('wss');
    expect(parseBackendProtocol('spdy')).toBeUndefined();
  });

  it('follows the port unless the annotation says otherwise; an unknown annotation is reported and ignored', () => {
    const port = tcp('api', 9000, 'grpc');
    expect(chooseProtocol(service([], 'shop/a'), port)).toEqual({
      protocol: 'grpc',
      unknown: undefined,
    });
    expect(chooseProtocol(service([], 'shop/a'), tcp('x', 1))).toEqual({
      protocol: 'http',
      unknown: undefined,
    });
    expect(chooseProtocol(service([], 'shop/a', { backendProtocol: 'http' }), port).protocol).toBe(
      'http',
    );
    expect(chooseProtocol(service([], 'shop/a', { backendProtocol: 'quic' }), port)).toEqual({
      protocol: 'grpc',
      unknown: 'quic',
    });
  });

  it('puts h2c and grpc on HTTP/2, https over TLS verified for <name>.<namespace>.svc, and anything over a profile', () => {
    const svc = service([], 'shop/api');
    expect(wireFor('http', svc, undefined)).toEqual({ h2: false, tls: undefined });
    expect(wireFor('h2c', svc, undefined)).toEqual({ h2: true, tls: undefined });
    expect(wireFor('grpc', svc, undefined)).toEqual({ h2: true, tls: undefined });
    expect(wireFor('ws', svc, undefined)).toEqual({ h2: false, tls: undefined });
    const https = wireFor('https', svc, undefined);
    expect(https.h2).toBe(true);
    expect(https.tls?.options).toMatchObject({
      servername: 'api.shop.svc',
      rejectUnauthorized: true,
    });
    expect(wireFor('wss', svc, undefined)).toMatchObject({
      h2: false,
      tls: { key: 'system api.shop.svc' },
    });
    const profile = { key: 'p1', options: { servername: 'x' } };
    expect(wireFor('http', svc, profile)).toEqual({ h2: false, tls: profile });
    expect(wireFor('grpc', svc, profile)).toEqual({ h2: true, tls: profile });
  });
});
