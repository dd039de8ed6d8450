import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { withAccessLog } from './access-log.ts';
import type { ProxiedRequest } from './observer.ts';

describe('withAccessLog', () => {
  it('writes one line per request and still counts it', () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    });
    const counted: ProxiedRequest[] = [];
    const retried: string[] = [];
    const observer = withAccessLog(
      { request: (r) => counted.push(r), retry: (s, why) => retried.push(`${s} ${why}`) },
      pino({ level: 'info' }, sink),
    );
    const r: ProxiedRequest = {
      service: 'shop/web',
      outcome: 'relayed',
      cluster: 'alpha',
      zone: 'us-east-a',
      tier: 'zone',
      status: 200,
      seconds: 0.00123,
      method: 'GET',
      target: '/x?y=1',
      client: '127.0.0.1',
      tries: 1,
      endpoint: '127.10.0.1',
    };
    observer.request(r);
    observer.request({ ...r, grpc: true, grpcStatus: 14 });
    observer.request({ ...r, grpc: true, outcome: 'failed' });
    observer.retry('shop/web', 'reset');
    expect(counted).toHaveLength(3);
    expect(retried).toEqual(['shop/web reset']);
    expect(lines).toHaveLength(3);
    // A gRPC call's line carries its status (null: none reached the client); a plain one none.
    expect(lines[0]).not.toHaveProperty('grpc_status');
    expect(lines[1]).toMatchObject({ grpc_status: 14 });
    expect(lines[2]).toMatchObject({ grpc_status: null });
    expect(lines[0]).toMatchObject({
      log: 'access',
      msg: 'request',
      method: 'GET',
      target: '/x?y=1',
      status: 200,
      outcome: 'relayed',
      ms: 1.2,
      cluster: 'alpha',
      endpoint: '127.10.0.1',
    });
  });
});

describe('withAccessLog: what it passes on', () => {
  it("names the Gateway API route on a routed request's line, and passes mirrors and TLS failures on", () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    });
    const seen: string[] = [];
    const observer = withAccessLog(
      {
        request: () => {},
        retry: () => {},
        mirrored: (s, r) => seen.push(`mirror ${s} ${r}`),
        tlsFailure: (s, c, r) => seen.push(`tls ${s} ${c} ${r}`),
      },
      pino({ level: 'info' }, sink),
    );
    const r: ProxiedRequest = {
      service: 'shop/web',
      outcome: 'relayed',
      cluster: '',
      zone: '',
      tier: '',
      status: 200,
      seconds: 0,
    };
    observer.request({ ...r, route: 'shop/canary' });
    observer.request(r);
    observer.mirrored?.('shop/shadow', 'sent');
    observer.tlsFailure?.('shop/web', 'alpha', 'handshake');
    expect(lines[0]).toMatchObject({ route: 'shop/canary' });
    expect(lines[1]).not.toHaveProperty('route');
    expect(seen).toEqual(['mirror shop/shadow sent', 'tls shop/web alpha handshake']);
  });
});
