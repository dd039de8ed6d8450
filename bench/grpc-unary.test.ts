// The gRPC benchmark's pieces against real servers: the prepared body is a Unary call
// the local federation's echo answers, the reply check catches a gRPC error that h2load
// counts as success, and nginx's grpc_pass (as the benchmark configures it) carries the
// calls.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrpcEcho, startGrpcEcho } from '../src/localfed/grpc-echo.ts';
import {
  callsWithoutReply,
  checkEcho,
  MESSAGE,
  UNARY_PATH,
  unaryRequestBody,
} from './grpc-unary.ts';
import { runH2load } from './h2load.ts';
import { freePort } from './lib.ts';
import { type NginxProxy, startNginxProxy } from './nginx.ts';

const HOST = '127.215.1.1';
const AUTHORITY = 'echo.bench.example.test';
const POD = {
  cluster: 'alpha',
  region: 'us-east',
  zone: 'us-east-a',
  node: 'alpha-us-east-a-1',
  pod: 'echo-bench-0',
  namespace: 'shop',
  service: 'echo',
  ip: HOST,
};

describe('the gRPC benchmark', () => {
  let dir = '';
  let echo: GrpcEcho | undefined;
  let nginx: NginxProxy | undefined;
  const body = unaryRequestBody();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-grpc-bench-test-'));
    await writeFile(join(dir, 'call.bin'), body);
    // Asks the echo to end the call UNAVAILABLE: a gRPC error, HTTP 200.
    await writeFile(join(dir, 'failing.bin'), unaryRequestBody({ message: MESSAGE, status: 14 }));
    echo = await startGrpcEcho({ host: HOST, port: 0, info: POD });
    nginx = await startNginxProxy({
      listen: [{ port: await freePort(), http2: true }],
      upstreams: [`${HOST}:${echo.port}`],
      upstreamProtocol: 'grpc',
      dir: join(dir, 'nginx'),
    });
  });

  afterAll(async () => {
    await nginx?.stop();
    await echo?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const load = (address: string, file = 'call.bin') =>
    runH2load({
      url: `http://${address}${UNARY_PATH}`,
      authority: AUTHORITY,
      clients: 2,
      streams: 4,
      durationSec: 1,
      bodyFile: join(dir, file),
      headers: ['content-type: application/grpc', 'te: trailers'],
      logFile: join(dir, 'h2load.log'),
    });

  it('frames the request as one gRPC message: a 5-byte prefix with its length', () => {
    expect(body[0]).toBe(0);
    expect(body.readUInt32BE(1)).toBe(body.length - 5);
    expect(body.subarray(5).includes(Buffer.from(MESSAGE))).toBe(true);
  });

  it('checks a target with a grpc-js call, and says which status a failing one gave', async () => {
    const { replyBytes } = await checkEcho(`${HOST}:${echo?.port}`, AUTHORITY, POD);
    expect(replyBytes).toBeGreaterThan(body.length);
    await expect(
      checkEcho(`${HOST}:${echo?.port}`, AUTHORITY, { ...POD, pod: 'another-pod' }),
    ).rejects.toThrow(/echo-bench-0/);
    await expect(
      checkEcho(`127.215.1.2:${await freePort('127.215.1.2')}`, AUTHORITY, POD),
    ).rejects.toThrow(/status 14/);
  });

  it('answers the prepared body from h2load with one reply per call, as large as the check saw', async () => {
    const { replyBytes } = await checkEcho(`${HOST}:${echo?.port}`, AUTHORITY, POD);
    const r = await load(`${HOST}:${echo?.port}`);
    expect(r.succeeded).toBeGreaterThan(0);
    expect(r.failed).toBe(0);
    // Every reply came whole, in one message of the size the check measured.
    expect(r.dataBytes % replyBytes).toBe(0);
    expect(r.dataBytes).toBeGreaterThanOrEqual(r.succeeded * replyBytes);
    expect(callsWithoutReply(r, replyBytes)).toBe(0);
    expect(r.p50Ms).toBeGreaterThan(0);
    expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
  });

  it('counts calls answered with a gRPC error as failed, though h2load saw HTTP 200', async () => {
    const { replyBytes } = await checkEcho(`${HOST}:${echo?.port}`, AUTHORITY, POD);
    const r = await load(`${HOST}:${echo?.port}`, 'failing.bin');
    expect(r.succeeded).toBeGreaterThan(0);
    expect(r.dataBytes).toBe(0);
    expect(callsWithoutReply(r, replyBytes)).toBe(r.succeeded);
  });

  it('carries calls through nginx grpc_pass, from grpc-js and from h2load', async () => {
    const address = `${nginx?.host}:${nginx?.port}`;
    const { replyBytes } = await checkEcho(address, AUTHORITY, POD);
    const r = await load(address);
    expect(r.succeeded).toBeGreaterThan(0);
    expect(r.failed).toBe(0);
    expect(callsWithoutReply(r, replyBytes)).toBe(0);
  });
});
