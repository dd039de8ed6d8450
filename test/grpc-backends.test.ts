// gRPC through fedgate to real gRPC servers over HTTP/2: grpc-js clients → the TLS
// listener → ProxyServer → the local federation's gRPC echo servers (grpc-js, HTTP/2
// with prior knowledge, grpc.health.v1 on the same port). What the HTTP/2 transport
// makes reachable: retries by a trailers-only status, statuses in trailers reaching
// outlier detection, and the gRPC health check moving real traffic. Addresses: 127.205.x.x.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ActiveChecker } from '../src/health/active.ts';
import { type EchoMode, type GrpcEcho, startGrpcEcho } from '../src/localfed/grpc-echo.ts';
import { type EchoClient, grpcEchoClient } from '../src/localfed/grpc-echo-client.ts';
import { ECHO_SERVICE } from '../src/localfed/grpc-echo-proto.ts';
import { service } from './fixtures/services.ts';
import { type GrpcProxy, startGrpcProxy } from './helpers/grpc-proxy.ts';
import { CHECK_CONFIG } from './helpers/health.ts';
import { series } from './helpers/proxy-env.ts';
import { waitFor } from './helpers/wait.ts';

const ECHO = 'echo.test';
const HOSTS = ['127.205.1.1', '127.205.1.2', '127.205.1.3'];

interface Pod {
  readonly echo: GrpcEcho;
  mode: EchoMode;
}

async function pods(): Promise<Pod[]> {
  return Promise.all(
    HOSTS.map(async (host, i) => {
      const pod = { mode: 'ok' as EchoMode } as { echo: GrpcEcho; mode: EchoMode };
      pod.echo = await startGrpcEcho({
        host,
        port: 0,
        info: {
          cluster: `c${i}`,
          region: 'r',
          zone: 'z',
          node: 'n',
          pod: `echo-${i}`,
          namespace: 'shop',
          service: 'echo',
          ip: host,
        },
        mode: () => pod.mode,
      });
      return pod;
    }),
  );
}

/** Errors as grpc-js reports them. */
async function failure(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
  } catch (err) {
    return err as { code: number; details: string };
  }
  throw new Error('the call succeeded');
}

describe('gRPC to grpc-js backends over HTTP/2', () => {
  let dir: string;
  let p: GrpcProxy;
  let echo: Pod[];
  let client: EchoClient;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-grpc-h2-'));
    echo = await pods();
    // One endpoint per cluster; the port says gRPC, so the proxy speaks HTTP/2 to it.
    const svc = service(
      HOSTS.map((address, i) => ({
        cluster: `c${i}`,
        endpoints: [{ address, port: echo[i]!.echo.port }],
      })),
      'shop/echo',
      { ports: [{ name: 'grpc', protocol: 'TCP', port: 80, appProtocol: 'grpc' }] },
    );
    // The fixture names endpoint ports `http`: rename them for the grpc service port.
    const grpcSvc = {
      ...svc,
      clusters: svc.clusters.map((m) => ({
        ...m,
        endpoints: m.endpoints.map((e) => ({
          ...e,
          ports: e.ports.map((x) => ({ ...x, name: 'grpc' })),
        })),
      })),
    };
    p = await startGrpcProxy({
      dir,
      host: '127.205.0.1',
      services: [grpcSvc],
      aliases: { [ECHO]: 'shop/echo' },
      http: { retries: { minConcurrency: 100 } },
    });
    client = grpcEchoClient(`${p.host}:${p.port}`, {
      tls: { ca: p.ca, servername: ECHO },
      authority: ECHO,
    });
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    for (const pod of echo) pod.mode = 'ok';
  });

  afterAll(async () => {
    client?.close();
    await p?.close();
    await Promise.all((echo ?? []).map((pod) => pod.echo.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('reaches the backends: a unary call answered by one of them', async () => {
    const a = await client.unary({ message: 'hi' });
    expect(a.value.message).toBe('hi');
    expect(['c0', 'c1', 'c2']).toContain(a.value.where.cluster);
  });

  it('retries a trailers-only UNAVAILABLE to another cluster, with the message sent again', async () => {
    echo[0]!.mode = 'error503';
    const before = await series(p.metrics, 'fedgate_http_retries_total', 'reason="grpc_status"');
    const answers = [];
    for (let i = 0; i < 30; i++) answers.push(await client.unary({ message: `m${i}` }));
    expect(answers.map((a) => a.value.message)).toEqual(answers.map((_, i) => `m${i}`));
    expect(answers.every((a) => a.value.where.cluster !== 'c0')).toBe(true);
    const retried =
      (await series(p.metrics, 'fedgate_http_retries_total', 'reason="grpc_status"')) - before;
    expect(retried).toBeGreaterThan(0);
    // Counted as an upstream 5xx would be for c0, the one that failed.
    const c0 = p.reports.filter((r) => r.id === `c0/${HOSTS[0]}`).slice(-retried);
    expect(c0.map((r) => r.outcome)).toEqual(
      Array(retried).fill({ origin: 'upstream', status: 200, grpcStatus: status.UNAVAILABLE }),
    );
  });

  it('never retries a streaming call whose body the client has not ended: its UNAVAILABLE reaches the client', async () => {
    echo[0]!.mode = 'error503';
    const before = await series(p.metrics, 'fedgate_http_retries_total', 'reason="grpc_status"');
    const codes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { call, answer } = client.clientStream();
      call.write({ message: 'part' });
      // The body stays open until the answer is in, or a moment has passed.
      const ended = setTimeout(() => call.end(), 100);
      const code = await answer.then(
        () => status.OK,
        (err: { code: number }) => err.code,
      );
      clearTimeout(ended);
      call.end();
      codes.push(code);
    }
    expect(codes).toContain(status.UNAVAILABLE);
    expect(codes.filter((c) => c !== status.OK && c !== status.UNAVAILABLE)).toEqual([]);
    expect(await series(p.metrics, 'fedgate_http_retries_total', 'reason="grpc_status"')).toBe(
      before,
    );
  });

  it('relays INTERNAL as it came, unretried, and tells outlier detection the status from the trailers', async () => {
    const before = await series(p.metrics, 'fedgate_http_retries_total', 'reason="grpc_status"');
    const reports = p.reports.length;
    const err = await failure(
      client.unary({ message: 'x', status: status.INTERNAL, statusMessage: 'it broke' }),
    );
    expect(err.code).toBe(status.INTERNAL);
    expect(err.details).toBe('it broke');
    expect(await series(p.metrics, 'fedgate_http_retries_total', 'reason="grpc_status"')).toBe(
      before,
    );
    expect(p.reports.slice(reports).map((r) => r.outcome)).toEqual([
      { origin: 'upstream', status: 200, grpcStatus: status.INTERNAL },
    ]);
    expect(
      await series(
        p.metrics,
        'fedgate_grpc_requests_total',
        'grpc_status="13"',
        'outcome="relayed"',
      ),
    ).toBeGreaterThanOrEqual(1);
  });

  it('ends a call past its deadline DEADLINE_EXCEEDED, unretried, whoever of fedgate, backend or client saw it first', async () => {
    const before = await series(p.metrics, 'fedgate_http_retries_total');
    const err = await failure(
      client.unary({ message: 'slow', delayMs: 5000 }, { deadlineMs: 300 }),
    );
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    expect(await series(p.metrics, 'fedgate_http_retries_total')).toBe(before);
  });

  it('takes an endpoint whose gRPC health check fails out of the plan, and back when it serves', async () => {
    const checker = new ActiveChecker({
      config: { ...CHECK_CONFIG, type: 'grpc', grpcService: ECHO_SERVICE },
      addressing: 'endpoints',
      store: p.store,
      log: pino({ level: 'silent' }),
    });
    cleanups.push(() => checker.stop());
    checker.update(p.snapshot());
    const id = `c0/${HOSTS[0]}`;
    await waitFor(() => p.store.endpoint('shop/echo', id)?.check === 'healthy', 5000, 'healthy');
    echo[0]!.echo.setHealth(ECHO_SERVICE, 'NOT_SERVING');
    await waitFor(
      () => p.store.endpoint('shop/echo', id)?.check === 'unhealthy',
      5000,
      'unhealthy',
    );
    const clusters = async (n: number) => {
      const seen: string[] = [];
      for (let i = 0; i < n; i++)
        seen.push((await client.unary({ message: 'x' })).value.where.cluster);
      return seen;
    };
    expect(await clusters(30)).not.toContain('c0');
    echo[0]!.echo.setHealth(ECHO_SERVICE, 'SERVING');
    await waitFor(
      () => p.store.endpoint('shop/echo', id)?.check === 'healthy',
      5000,
      'healthy again',
    );
    expect(await clusters(30)).toContain('c0');
  });
});
