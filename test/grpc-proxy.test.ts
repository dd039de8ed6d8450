// gRPC through fedgate end to end: @grpc/grpc-js clients calling the local
// federation's echo service (src/localfed/grpc-echo.ts) through a real ProxyServer,
// over h2c on the plain listener and over HTTP/2 on the TLS one, to backends whose
// service port says `appProtocol: grpc`. All four call kinds, metadata and trailers,
// a status the backend chose, 100 MB each way with flat memory, and a whole cluster
// failing under load. Addresses: 127.201.x.x.
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer as createH2cServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type * as grpc from '@grpc/grpc-js';
import * as grpcjs from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GrpcEcho,
  MESSAGE_KEY,
  STATUS_KEY,
  startGrpcEcho,
} from '../src/localfed/grpc-echo.ts';
import { type EchoClient, grpcEchoClient } from '../src/localfed/grpc-echo-client.ts';
import { type EchoReply, echoServiceClient } from '../src/localfed/grpc-echo-proto.ts';
import { makeClusterPki } from '../src/localfed/pki.ts';
import { hostOf, type StaticProxy, startStaticProxy } from './helpers/static-proxy.ts';
import { sleep } from './helpers/wait.ts';

const ECHO = 'shop/grpc-echo';
const HOST = hostOf(ECHO);
const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

function where(cluster: string, i: number) {
  return {
    cluster,
    region: 'r1',
    zone: 'z1',
    node: `${cluster}-node`,
    pod: `echo-${cluster}-${i}`,
    namespace: 'shop',
    service: 'grpc-echo',
  };
}

async function echoes(cluster: string, octet: number, n: number): Promise<GrpcEcho[]> {
  const out: GrpcEcho[] = [];
  for (let i = 0; i < n; i++) {
    const host = `127.201.${octet}.${i + 1}`;
    out.push(await startGrpcEcho({ host, port: 0, info: { ...where(cluster, i), ip: host } }));
  }
  return out;
}

function endpoints(cluster: string, octet: number, backends: readonly GrpcEcho[]) {
  return backends.map((b, i) => ({ address: `127.201.${octet}.${i + 1}`, port: b.port, cluster }));
}

function collect<T>(stream: grpc.ClientReadableStream<T>): Promise<T[]> {
  const got: T[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (m: T) => got.push(m));
    stream.on('end', () => resolve(got));
    stream.on('error', reject);
  });
}

/** A full garbage collection, so a sample counts what is held, not what awaits collection. */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/**
 * The largest growth of heap plus Buffer memory (the test process holds client,
 * fedgate and backend) over `run`, sampled every 100 ms after a full collection.
 */
async function memoryGrowth(run: () => Promise<void>): Promise<number> {
  const used = () => {
    collectGarbage();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const base = used();
  let most = 0;
  const timer = setInterval(() => {
    most = Math.max(most, used() - base);
  }, 100);
  try {
    await run();
  } finally {
    clearInterval(timer);
  }
  return Math.max(most, used() - base);
}

describe('gRPC through fedgate', () => {
  let c0: GrpcEcho[];
  let c1: GrpcEcho[];
  let fg: StaticProxy;
  let ca = '';
  const clients: EchoClient[] = [];

  beforeAll(async () => {
    c0 = await echoes('c0', 0, 2);
    c1 = await echoes('c1', 1, 1);
    const pki = await makeClusterPki('grpc-edge', [HOST]);
    ca = pki.caCert;
    const cert = join(tmpdir(), `fedgate-grpc-${process.pid}.crt`);
    const key = join(tmpdir(), `fedgate-grpc-${process.pid}.key`);
    await writeFile(cert, pki.serverCert);
    await writeFile(key, pki.serverKey);
    fg = await startStaticProxy(
      [
        {
          key: ECHO,
          portName: 'grpc',
          appProtocol: 'grpc',
          endpoints: [...endpoints('c0', 0, c0), ...endpoints('c1', 1, c1)],
        },
      ],
      { tls: { listen: ['127.0.0.1:0'], certificates: [{ cert, key }] } },
    );
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await fg?.stop();
    for (const b of [...(c0 ?? []), ...(c1 ?? [])]) await b.stop();
  });

  const client = (via: 'h2c' | 'tls'): EchoClient => {
    const c =
      via === 'h2c'
        ? grpcEchoClient(`127.0.0.1:${new URL(fg.url).port}`, { authority: HOST })
        : grpcEchoClient(`127.0.0.1:${fg.httpsPort}`, {
            authority: HOST,
            tls: { ca, servername: HOST },
          });
    clients.push(c);
    return c;
  };

  for (const via of ['h2c', 'tls'] as const) {
    describe(`over ${via}`, () => {
      it('unary, server streaming, client streaming and bidi calls all arrive and come back', async () => {
        const c = client(via);
        const u = await c.unary({ message: 'hi' });
        expect(u.value.message).toBe('hi');
        expect(['c0', 'c1']).toContain(u.value.where?.cluster);
        expect(u.value.authority).toBe(HOST);

        const replies = await collect(c.serverStream({ message: 's', count: 5 }));
        expect(replies.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);

        const cs = c.clientStream();
        for (const m of ['a', 'b', 'c']) cs.call.write({ message: m });
        cs.call.end();
        const summary = await cs.answer;
        expect(Number(summary.value.messages)).toBe(3);
        expect(summary.value.messagesText).toBe('a\nb\nc');

        const bidi = c.bidi();
        const got = collect(bidi as unknown as grpc.ClientReadableStream<EchoReply>);
        for (const m of ['x', 'y']) bidi.write({ message: m });
        bidi.end();
        expect((await got).map((r) => r.message)).toEqual(['x', 'y']);
      });

      it('carries metadata both ways, response headers and trailers, and the status the backend chose', async () => {
        const c = client(via);
        const u = await c.unary({ message: 'm' }, { metadata: { 'x-trace': 'abc' } });
        expect(u.headers.get('echo-x-trace')).toEqual(['abc']);
        expect(u.trailers.get('echo-x-trace')).toEqual(['abc']);

        const err = await c
          .unary({}, { metadata: { [STATUS_KEY]: '9', [MESSAGE_KEY]: 'not today' } })
          .then(
            () => undefined,
            (e: grpc.ServiceError) => e,
          );
        expect(err?.code).toBe(9);
        expect(err?.details).toBe('not today');
      });
    });
  }

  it('streams 100 MB each way with flat memory', async () => {
    const c = client('h2c');
    const total = 100 * MiB;
    const down = await memoryGrowth(async () => {
      let bytes = 0;
      const s = c.serverStream({ count: total / CHUNK, size: CHUNK });
      s.on('data', (r: EchoReply) => {
        bytes += r.payload.length;
      });
      await new Promise((resolve, reject) => s.on('end', resolve).on('error', reject));
      expect(bytes).toBe(total);
    });
    const payload = Buffer.alloc(CHUNK, 7);
    const up = await memoryGrowth(async () => {
      const cs = c.clientStream();
      for (let i = 0; i < total / CHUNK; i++) {
        if (!cs.call.write({ payload })) await new Promise((r) => cs.call.once('drain', r));
      }
      cs.call.end();
      expect(Number((await cs.answer).value.bytes)).toBe(total);
    });
    // REPORT_MEMORY=1 prints the figures (bytes).
    if (process.env.REPORT_MEMORY) console.log(`growth down ${down} up ${up}`);
    expect(down).toBeLessThan(100 * MiB);
    expect(up).toBeLessThan(100 * MiB);
  }, 120_000);
});

/** A unary-only echo server that shuts down gracefully (in-flight calls finish, new ones are refused). */
async function gracefulEcho(host: string, cluster: string) {
  const server = new grpcjs.Server();
  server.addService(echoServiceClient().service, {
    Unary: (
      call: grpc.ServerUnaryCall<{ message: string }, unknown>,
      cb: grpc.sendUnaryData<unknown>,
    ) => cb(null, { message: call.request.message, where: { cluster } }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpcjs.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return {
    port,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/**
 * 8 loops of unary calls for 6 s through a proxy with outlier detection; at 2 s the
 * `dead` cluster's backends stop (`stop`). What failed, where calls were served, and
 * fedgate's tries to the dead cluster more than a second after it stopped.
 */
async function clusterDies(
  alivePorts: readonly number[],
  deadPorts: readonly number[],
  stop: () => Promise<void>,
) {
  const at = (octet: number, cluster: string, ports: readonly number[]) =>
    ports.map((port, i) => ({ address: `127.201.${octet}.${i + 1}`, port, cluster }));
  const deadIds = new Set(deadPorts.map((_, i) => `dead/127.201.11.${i + 1}`));
  const fg = await startStaticProxy(
    [
      {
        key: ECHO,
        portName: 'grpc',
        appProtocol: 'grpc',
        endpoints: [...at(10, 'alive', alivePorts), ...at(11, 'dead', deadPorts)],
      },
    ],
    {},
    undefined,
    { consecutiveGatewayFailure: 1, maxEjectionPercent: 100, baseEjectionTime: '60s' },
  );
  const c = grpcEchoClient(`127.0.0.1:${new URL(fg.url).port}`, { authority: HOST });
  try {
    const served = new Map<string, number>();
    const failed: string[] = [];
    const end = performance.now() + 6000;
    const loop = async () => {
      while (performance.now() < end) {
        try {
          const r = await c.unary({ message: 'x' });
          const cluster = r.value.where?.cluster ?? '?';
          served.set(cluster, (served.get(cluster) ?? 0) + 1);
        } catch (e) {
          failed.push((e as grpc.ServiceError).details ?? String(e));
        }
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    await sleep(2000);
    const killedAt = performance.now();
    await stop();
    await Promise.all(loops);
    const late = fg.reports.filter(
      (r, i) => (fg.reportedAt[i] ?? 0) > killedAt + 1000 && deadIds.has(r.split(' ')[1] ?? ''),
    );
    if (process.env.DEBUG_CLUSTER)
      console.log(fg.reports.filter((r) => !r.includes('upstream/200')));
    return { served, failed, late };
  } finally {
    c.close();
    await fg.stop();
  }
}

describe('a backend dying between its head and its message', () => {
  it("sends the call to another cluster: the head is held until the answer's first byte", async () => {
    // Answers every call with a gRPC head, then cuts its connection (a pod killed mid-answer).
    const dying = createH2cServer();
    let heads = 0;
    dying.on('stream', (stream) => {
      stream.on('error', () => {});
      heads++;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      setTimeout(() => stream.session?.socket.destroy(), 20);
    });
    dying.listen(0, '127.201.20.1');
    await once(dying, 'listening');
    const [alive] = await echoes('alive', 21, 1);
    const fg = await startStaticProxy([
      {
        key: ECHO,
        portName: 'grpc',
        appProtocol: 'grpc',
        endpoints: [
          {
            address: '127.201.20.1',
            port: (dying.address() as AddressInfo).port,
            cluster: 'dying',
          },
          { address: '127.201.21.1', port: alive!.port, cluster: 'alive' },
        ],
      },
    ]);
    const c = grpcEchoClient(`127.0.0.1:${new URL(fg.url).port}`, { authority: HOST });
    try {
      for (let i = 0; i < 6; i++) {
        const r = await c.unary({ message: `m${i}` });
        expect(r.value.message).toBe(`m${i}`);
        expect(r.value.where?.cluster).toBe('alive');
      }
      expect(heads).toBeGreaterThan(0);
    } finally {
      c.close();
      await fg.stop();
      await alive!.stop();
      dying.close();
    }
  });
});

/** Both clusters' backends; the dead one's are stopped 2 s into the load. */
interface Stoppable {
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * The load through a dying cluster, then what every such run must show: nothing lost
 * but, when `cutMidAnswer`, calls whose backend died after its message and before its
 * trailers (the client already had part of the answer: no proxy can send it again).
 */
async function expectNothingLost(
  alive: readonly Stoppable[],
  dead: readonly Stoppable[],
  cutMidAnswer = false,
) {
  try {
    const r = await clusterDies(
      alive.map((b) => b.port),
      dead.map((b) => b.port),
      async () => {
        await Promise.all(dead.map((b) => b.stop()));
      },
    );
    const midAnswer = r.failed.filter((f) => f.startsWith('Received RST_STREAM with code 2'));
    if (cutMidAnswer) expect(midAnswer.length).toBeLessThanOrEqual(8);
    expect(cutMidAnswer ? r.failed.length - midAnswer.length : r.failed.length).toBe(0);
    expect(r.served.get('dead') ?? 0).toBeGreaterThan(0);
    expect(r.served.get('alive') ?? 0).toBeGreaterThan(0);
    expect(r.late).toEqual([]);
  } finally {
    for (const b of alive) await b.stop();
  }
}

describe('a whole cluster failing under gRPC load', () => {
  it('shut down gracefully: no call fails, and none goes there a second after', async () => {
    const alive = [
      await gracefulEcho('127.201.10.1', 'alive'),
      await gracefulEcho('127.201.10.2', 'alive'),
    ];
    const dead = [
      await gracefulEcho('127.201.11.1', 'dead'),
      await gracefulEcho('127.201.11.2', 'dead'),
    ];
    await expectNothingLost(alive, dead);
  }, 30_000);

  it('killed (connections cut): only calls cut mid-answer fail, the others in flight there go to the other cluster, and none goes there a second after', async () => {
    // A unary call's whole message is kept until its answer's first byte, so the
    // calls cut before it are sent again to the other cluster; one cut after its
    // message and before its trailers reaches the client as a reset (at most the 8 in flight).
    await expectNothingLost(await echoes('alive', 10, 2), await echoes('dead', 11, 2), true);
  }, 30_000);
});
