// The gRPC benchmark's pieces against real servers: the prepared body is a call grpc-js
// answers, the reply check catches a gRPC error h2load counts as success, and nginx's
// grpc_pass (as the benchmark configures it) carries the calls.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BENCH_SERVICE,
  callEcho,
  callsWithoutReply,
  type GrpcBackend,
  PAYLOAD,
  startGrpcBackend,
  UNARY_PATH,
  unaryRequestBody,
} from './grpc-unary.ts';
import { runH2load } from './h2load.ts';
import { freePort } from './lib.ts';
import { type NginxProxy, startNginxProxy } from './nginx.ts';

const HOST = '127.215.1.1';
const GRPC_HEADERS = ['content-type: application/grpc', 'te: trailers'];

describe('the gRPC benchmark', () => {
  let dir = '';
  let backend: GrpcBackend | undefined;
  let failing: Server | undefined;
  let failingPort = 0;
  let nginx: NginxProxy | undefined;
  const body = unaryRequestBody();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-grpc-bench-test-'));
    await writeFile(join(dir, 'call.bin'), body);
    backend = await startGrpcBackend(HOST, 0);
    // The same method, answering every call UNAVAILABLE: trailers only, HTTP 200.
    failing = new Server();
    failing.addService(BENCH_SERVICE, {
      Echo: (_call: ServerUnaryCall<Buffer, Buffer>, done: sendUnaryData<Buffer>) =>
        done({ code: status.UNAVAILABLE, details: 'down for the test' }),
    });
    failingPort = await new Promise<number>((resolve, reject) =>
      failing?.bindAsync(`${HOST}:0`, ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    nginx = await startNginxProxy({
      listen: [{ port: await freePort(), http2: true }],
      upstreams: [`${HOST}:${backend.port}`],
      upstreamProtocol: 'grpc',
      dir: join(dir, 'nginx'),
    });
  });

  afterAll(async () => {
    await nginx?.stop();
    await backend?.stop();
    failing?.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  const load = (address: string) =>
    runH2load({
      url: `http://${address}${UNARY_PATH}`,
      clients: 2,
      streams: 4,
      durationSec: 1,
      bodyFile: join(dir, 'call.bin'),
      headers: GRPC_HEADERS,
      logFile: join(dir, 'h2load.log'),
    });

  it('frames the message as one gRPC call: a 5-byte prefix with its length', () => {
    expect(body.length).toBe(PAYLOAD.length + 5);
    expect(body[0]).toBe(0);
    expect(body.readUInt32BE(1)).toBe(PAYLOAD.length);
    expect(body.subarray(5).equals(PAYLOAD)).toBe(true);
  });

  it('echoes a grpc-js call, and says which status a failing target gave', async () => {
    await expect(callEcho({ address: `${HOST}:${backend?.port}` })).resolves.toBeUndefined();
    await expect(callEcho({ address: `${HOST}:${failingPort}` })).rejects.toThrow(
      /status 14 down for the test/,
    );
  });

  it('answers the prepared body from h2load with one reply message per call', async () => {
    const r = await load(`${HOST}:${backend?.port}`);
    expect(r.succeeded).toBeGreaterThan(0);
    expect(r.failed).toBe(0);
    expect(r.dataBytes).toBeGreaterThanOrEqual(r.succeeded * body.length);
    expect(callsWithoutReply(r, body.length)).toBe(0);
    expect(r.p50Ms).toBeGreaterThan(0);
    expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
  });

  it('counts calls answered with a gRPC error as failed, though h2load saw HTTP 200', async () => {
    const r = await load(`${HOST}:${failingPort}`);
    expect(r.succeeded).toBeGreaterThan(0);
    expect(r.dataBytes).toBe(0);
    expect(callsWithoutReply(r, body.length)).toBe(r.succeeded);
  });

  it('carries calls through nginx grpc_pass, from grpc-js and from h2load', async () => {
    const address = `${nginx?.host}:${nginx?.port}`;
    await expect(callEcho({ address })).resolves.toBeUndefined();
    const r = await load(address);
    expect(r.succeeded).toBeGreaterThan(0);
    expect(r.failed).toBe(0);
    expect(callsWithoutReply(r, body.length)).toBe(0);
  });
});
