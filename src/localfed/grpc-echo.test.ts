import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { type EchoMode, type GrpcEcho, type GrpcEchoOptions, startGrpcEcho } from './grpc-echo.ts';
import { type EchoClient, grpcEchoClient } from './grpc-echo-client.ts';
import { ECHO_SERVICE, type EchoReply } from './grpc-echo-proto.ts';
import { issue, makeCa, makeClusterPki } from './pki.ts';

const info = {
  cluster: 'alpha',
  region: 'us-east',
  zone: 'us-east-a',
  node: 'alpha-node-1',
  pod: 'echo-1',
  namespace: 'shop',
  service: 'grpc-echo',
  ip: '127.0.0.1',
};

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(opts: Partial<GrpcEchoOptions> = {}) {
  const echo = await startGrpcEcho({ host: '127.0.0.1', port: 0, info, ...opts });
  cleanups.push(() => echo.stop());
  return echo;
}

function connect(echo: GrpcEcho, options: Parameters<typeof grpcEchoClient>[1] = {}): EchoClient {
  const client = grpcEchoClient(`127.0.0.1:${echo.port}`, options);
  cleanups.push(() => client.close());
  return client;
}

function collect<T>(stream: NodeJS.ReadableStream): Promise<T[]> {
  const got: T[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (m: T) => got.push(m));
    stream.on('end', () => resolve(got));
    stream.on('error', reject);
  });
}

describe('grpc echo', () => {
  it('answers a unary call naming where it runs, echoing metadata in headers and trailers', async () => {
    const echo = await serve();
    const client = connect(echo, { authority: 'grpc-echo.shop.svc.clusterset.local' });
    const { value, headers, trailers } = await client.unary(
      { message: 'hello', payload: Buffer.from([1, 2, 3]) },
      { metadata: { 'x-trace': 'abc' } },
    );
    expect(value.message).toBe('hello');
    expect([...value.payload]).toEqual([1, 2, 3]);
    expect(value.where).toMatchObject({ cluster: 'alpha', zone: 'us-east-a', pod: 'echo-1' });
    expect(value.where.address).toBe(`127.0.0.1:${echo.port}`);
    expect(value.authority).toBe('grpc-echo.shop.svc.clusterset.local');
    expect(headers.get('echo-x-trace')).toEqual(['abc']);
    expect(trailers.get('echo-x-trace')).toEqual(['abc']);
  });

  it('streams count replies of the asked size, byte k being k mod 256', async () => {
    const echo = await serve();
    const replies = await collect<EchoReply>(
      connect(echo).serverStream({ message: 'm', count: 5, size: 70_000 }),
    );
    expect(replies.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    for (const r of replies) {
      expect(r.payload.length).toBe(70_000);
      expect(r.payload[300]).toBe(300 % 256);
      expect(r.where.pod).toBe('echo-1');
    }
  });

  it('counts and sums a client stream', async () => {
    const echo = await serve();
    const { call, answer } = connect(echo).clientStream();
    for (const m of ['a', 'b', 'c']) call.write({ message: m, payload: Buffer.alloc(10) });
    call.end();
    const { value } = await answer;
    expect(value).toMatchObject({ messages: 3, bytes: 30, messagesText: 'a\nb\nc' });
    expect(value.where.cluster).toBe('alpha');
  });

  it('echoes each message of a bidirectional stream in order', async () => {
    const echo = await serve();
    const call = connect(echo).bidi({ metadata: { 'x-k': 'v' } });
    const headers = new Promise<grpc.Metadata>((r) => call.once('metadata', r));
    const trailers = new Promise<grpc.StatusObject>((r) => call.once('status', r));
    const replies = collect<EchoReply>(call);
    for (const m of ['one', 'two', 'three']) call.write({ message: m, payload: Buffer.alloc(0) });
    call.end();
    expect((await replies).map((r) => [r.message, r.index])).toEqual([
      ['one', 0],
      ['two', 1],
      ['three', 2],
    ]);
    expect((await headers).get('echo-x-k')).toEqual(['v']);
    const status = await trailers;
    expect(status.code).toBe(grpc.status.OK);
    expect(status.metadata.get('echo-x-k')).toEqual(['v']);
  });

  it('answers the status a request field or the metadata chooses, trailers included', async () => {
    const echo = await serve();
    const client = connect(echo);
    await expect(
      client.unary({ status: grpc.status.NOT_FOUND, statusMessage: 'nope' }),
    ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'nope' });
    const err = await client
      .unary({}, { metadata: { 'x-echo-status': '8', 'x-echo-message': 'full', 'x-t': '1' } })
      .catch((e: grpc.ServiceError) => e);
    expect(err).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'full' });
    expect((err as grpc.ServiceError).metadata.get('echo-x-t')).toEqual(['1']);
    // A server stream sends its replies first, then the status.
    const stream = client.serverStream({ count: 3, status: grpc.status.ABORTED });
    const got: EchoReply[] = [];
    stream.on('data', (r: EchoReply) => got.push(r));
    const failed = await new Promise<grpc.ServiceError>((r) => stream.on('error', r));
    expect(got).toHaveLength(3);
    expect(failed.code).toBe(grpc.status.ABORTED);
    await expect(client.unary({ status: 99 })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
  });

  it('serves grpc.health.v1 on the same port, flipped by setHealth', async () => {
    const echo = await serve();
    const client = connect(echo);
    expect(await client.health()).toBe('SERVING');
    expect(await client.health(ECHO_SERVICE)).toBe('SERVING');
    echo.setHealth(ECHO_SERVICE, 'NOT_SERVING');
    expect(await client.health(ECHO_SERVICE)).toBe('NOT_SERVING');
    echo.setHealth(ECHO_SERVICE, 'SERVING');
    expect(await client.health(ECHO_SERVICE)).toBe('SERVING');
    await expect(client.health('no.such.Service')).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it('fails calls UNAVAILABLE in error503 mode and cuts them in reset mode, health unaffected', async () => {
    let mode: EchoMode = 'error503';
    const echo = await serve({ mode: () => mode });
    const client = connect(echo);
    await expect(client.unary({ message: 'x' })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
    expect(await client.health()).toBe('SERVING');
    mode = 'reset';
    const err = await client.unary({ message: 'x' }).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
    expect((err as grpc.ServiceError).details).not.toMatch(/is failing/);
    mode = 'ok';
    expect((await client.unary({ message: 'back' })).value.message).toBe('back');
  });

  it('serves TLS with a certificate its CA signed, and requires a client certificate when given a client CA', async () => {
    const server = await makeClusterPki('alpha', ['127.0.0.1', 'grpc-echo.shop']);
    const clientCa = await makeCa('alpha-clients');
    const clientCert = await issue(clientCa, { name: 'fedgate', usage: 'client' });
    const echo = await serve({ tls: { cert: server.serverCert, key: server.serverKey } });
    const ok = connect(echo, { tls: { ca: server.caCert } });
    expect((await ok.unary({ message: 'secure' })).value.message).toBe('secure');

    const mtls = await serve({
      tls: { cert: server.serverCert, key: server.serverKey, clientCa: clientCa.cert },
    });
    const anonymous = connect(mtls, { tls: { ca: server.caCert } });
    await expect(anonymous.unary({}, { deadlineMs: 5000 })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
    const withCert = connect(mtls, {
      tls: { ca: server.caCert, cert: clientCert.cert, key: clientCert.key },
    });
    expect((await withCert.unary({ message: 'mutual' })).value.message).toBe('mutual');
  });
});

describe('grpc echo with 100 MB each way', () => {
  const MB100 = 100 * 1024 * 1024;
  const CHUNK = 64 * 1024;
  const count = MB100 / CHUNK;

  // Garbage not yet collected would read as held: collect before each reading.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const held = () => {
    gc();
    return process.memoryUsage().arrayBuffers;
  };

  function sampler() {
    const base = held();
    let peak = 0;
    return {
      sample: () => {
        peak = Math.max(peak, held() - base);
      },
      peakMb: () => peak / 1024 / 1024,
    };
  }

  it('streams 100 MB down and 100 MB up in 64 KiB messages without buffering them', async () => {
    const echo = await serve();
    const client = connect(echo);
    const down = sampler();
    let received = 0;
    let n = 0;
    for await (const r of client.serverStream({ count, size: CHUNK })) {
      received += (r as EchoReply).payload.length;
      if (++n % 64 === 0) down.sample();
    }
    expect(received).toBe(MB100);

    const up = sampler();
    const { call, answer } = client.clientStream();
    const payload = Buffer.alloc(CHUNK, 7);
    for (let i = 0; i < count; i++) {
      if (!call.write({ message: '', payload })) {
        await new Promise((r) => call.once('drain', r));
      }
      if (i % 64 === 0) up.sample();
    }
    call.end();
    expect((await answer).value).toMatchObject({ messages: count, bytes: MB100 });
    // Buffered whole, either direction would hold 100 MB; what flows holds a few windows.
    expect(down.peakMb()).toBeLessThan(64);
    expect(up.peakMb()).toBeLessThan(64);
  }, 60_000);

  it('stops reading a bidirectional stream while its replies are not read, then echoes 100 MB', async () => {
    const client = connect(await serve());
    const call = client.bidi();
    let echoed = 0;
    // Read one reply, then stop: grpc-js's client takes everything off the wire until
    // the first read, and honours flow control from then on.
    call.on('data', (r: EchoReply) => {
      echoed += r.payload.length;
      if (echoed === CHUNK) call.pause();
    });
    let sent = 0;
    // Fresh buffers each message: anything kept along the way would add up.
    const send = () => call.write({ payload: Buffer.alloc(CHUNK, sent++ & 0xff) });
    // The server's writes back up, so it must stop reading, and the client's writes
    // stop draining long before 100 MB.
    let stalled = false;
    while (sent < count && !stalled) {
      if (!send()) {
        const drained = new Promise<boolean>((r) => call.once('drain', () => r(true)));
        const quiet = new Promise<boolean>((r) => setTimeout(() => r(false), 500));
        stalled = !(await Promise.race([drained, quiet]));
      }
    }
    expect(stalled).toBe(true);
    expect(sent).toBeLessThan(count / 4);
    const both = sampler();
    const ended = new Promise((r) => call.once('end', r));
    call.resume();
    while (sent < count) {
      if (!send()) await new Promise((r) => call.once('drain', r));
      if (sent % 64 === 0) both.sample();
    }
    call.end();
    await ended;
    expect(echoed).toBe(MB100);
    expect(both.peakMb()).toBeLessThan(64);
  }, 60_000);
});
