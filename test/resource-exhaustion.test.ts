// fedgate out of file descriptors, end to end: `fedgate start` as a child process
// under `ulimit -n 256` in front of a local federation (address block 244–246), and
// floods of loopback connections from this process (whose own limit is far higher)
// until the child has none left. What is checked from outside: the child never
// exits; the proxy and DNS over TCP close what they cannot serve and count it, while
// /metrics and UDP DNS keep answering; a request that cannot get an upstream socket
// is answered 503 RESOURCE_EXHAUSTED, is not retried and is not held against the
// endpoint; each kind is logged once however often it happens; and once the
// connections close everything is served as before. Every flood and wait is bounded.

import { Resolver } from 'node:dns/promises';
import { writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { acceptReserve } from '../src/observe/exhaustion.ts';
import { CLI, logLines, start } from './helpers/cli.ts';
import { DiscoveryEnv, FAST_WATCH, GALAXY_WEB, launchFederation } from './helpers/discovery-env.ts';
import { freePort } from './helpers/ports.ts';
import { seriesTotal as total } from './helpers/prometheus.ts';
import { sleep, waitFor } from './helpers/wait.ts';

const ADDRESS_BLOCK = 244;
/** The child's descriptor limit: a few hundred connections exhaust it. */
const LIMIT = 256;
const WEB = 'web.shop.svc.clusterset.local';
const WAIT_MS = 20_000;
/** More connections than the child has descriptors, so each flood surely reaches the end. */
const FLOOD = LIMIT + 64;
/** Requests answered 503 on one connection: twice what would eject an endpoint. */
const BLAMELESS = 12;

const env = new DiscoveryEnv();
let fed: LocalFederation;
let child: ReturnType<typeof start>;
let ports: { dns: number; http: number; admin: number };

const exhaustionLines = (resource: string) =>
  logLines(child.out()).filter(
    (l) => l.msg.startsWith('out of file descriptors') && l.resource === resource,
  );

async function metrics(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${ports.admin}/metrics`, {
    signal: AbortSignal.timeout(5000),
  });
  expect(res.status).toBe(200);
  return res.text();
}

const exhausted = async (resource: string) =>
  total(await metrics(), 'fedgate_resource_exhausted_total', `resource="${resource}"`);

/** A connection held open; `closedByPeer` turns true if the child closes it. */
interface Held {
  readonly socket: Socket;
  closedByPeer: boolean;
}

/**
 * `count` connections to `port`, opened 32 at a time; resolves once each has either
 * connected or closed. Whatever the child accepts and keeps stays open until closed here.
 */
async function flood(port: number, count: number): Promise<Held[]> {
  const held: Held[] = [];
  for (let i = 0; i < count; i += 32) {
    const batch = Array.from({ length: Math.min(32, count - i) }, () => {
      const socket = connect({ host: '127.0.0.1', port });
      const h: Held = { socket, closedByPeer: false };
      held.push(h);
      socket.on('error', () => {});
      socket.on('end', () => {
        h.closedByPeer = true;
        socket.destroy();
      });
      return new Promise<void>((resolve) => {
        const settled = () => {
          socket.setTimeout(0);
          resolve();
        };
        socket.once('connect', settled);
        socket.once('close', settled);
        socket.setTimeout(5000, settled);
      });
    });
    await Promise.all(batch);
  }
  return held;
}

/**
 * Closes the flood's connections and waits until the child has closed its ends too
 * (its descriptors back under half the limit), so the next connection lands low.
 */
async function release(held: readonly Held[]): Promise<void> {
  for (const h of held) h.socket.destroy();
  await waitFor(
    async () => total(await metrics(), 'process_open_fds') < LIMIT / 2,
    WAIT_MS,
    'the child to close the flood connections',
  );
}

/** One A query over UDP. */
async function udpQuery(): Promise<string[]> {
  const r = new Resolver({ timeout: 2000, tries: 2 });
  r.setServers([`127.0.0.1:${ports.dns}`]);
  return r.resolve4(WEB);
}

function dnsQuery(name: string, id: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // one question
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const tail = Buffer.from([0, 0, 1, 0, 1]); // root, A, IN
  return Buffer.concat([header, ...labels, tail]);
}

/** One A query over a new TCP connection: the answer count, or 'closed' if cut unanswered. */
function tcpQuery(): Promise<number | 'closed'> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: ports.dns });
    const q = dnsQuery(WEB, 4242);
    const framed = Buffer.alloc(2 + q.length);
    framed.writeUInt16BE(q.length, 0);
    q.copy(framed, 2);
    let got = Buffer.alloc(0);
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error('DNS over TCP: no answer and no close in 5 s'));
    });
    socket.on('connect', () => socket.write(framed));
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        socket.destroy();
        resolve(got.readUInt16BE(2 + 6)); // ANCOUNT
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve('closed'));
  });
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const UPGRADE =
  'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

/** GET / through the proxy on a connection already open (HTTP/1.1, kept alive). */
function getOn(socket: Socket, extraHeaders = ''): Promise<Reply> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) {
      reject(new Error('the connection was closed before the request'));
      return;
    }
    let raw = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error('no whole response in 10 s')), 10_000);
    const done = (err?: Error, reply?: Reply) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(reply!);
    };
    const onClose = () => done(new Error(`closed after ${raw.length} bytes`));
    const onData = (d: Buffer) => {
      raw = Buffer.concat([raw, d]);
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [status, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const at = l.indexOf(':');
        headers[l.slice(0, at).trim().toLowerCase()] = l.slice(at + 1).trim();
      }
      const length = Number(headers['content-length'] ?? Number.NaN);
      if (!Number.isFinite(length)) return done(new Error('a response without content-length'));
      if (raw.length < end + 4 + length) return;
      done(undefined, {
        status: Number(status!.split(' ')[1]),
        headers,
        body: raw.subarray(end + 4, end + 4 + length).toString(),
      });
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(`GET / HTTP/1.1\r\nHost: ${WEB}\r\n${extraHeaders}\r\n`);
  });
}

/** One connection, idle (with the descriptors released first, it lands below the reserve). */
async function opened(port: number): Promise<Socket> {
  const [h] = await flood(port, 1);
  return h!.socket;
}

beforeAll(async () => {
  const dir = await env.dir();
  const launched = await launchFederation(GALAXY_WEB, ADDRESS_BLOCK, dir);
  fed = launched.fed;
  ports = { dns: await freePort({ udp: true }), http: await freePort(), admin: await freePort() };
  const file = join(dir, 'fedgate.yaml');
  await writeFile(
    file,
    stringify({
      federation: { name: 'galaxy', domain: 'example.test' },
      self: { region: 'us-east', zone: 'us-east-a' },
      clusters: fed.clusters.map((c) => ({
        name: c.name,
        kubeconfig: launched.kubeconfigs[c.name],
        region: c.name === 'gamma' ? 'eu-west' : 'us-east',
      })),
      dns: {
        listen: [`127.0.0.1:${ports.dns}`],
        rrl: { enabled: false },
        tcp: { idleTimeout: '60s' },
      },
      // Flood connections send nothing: long head and idle timeouts keep them open
      // for the test. Idle upstream connections close fast, so a request after a
      // pause needs a new one.
      http: {
        listen: [`127.0.0.1:${ports.http}`],
        timeouts: { headers: '60s', idle: '60s', upstreamIdle: '200ms' },
        drainTimeout: '2s',
      },
      admin: { listen: `127.0.0.1:${ports.admin}` },
      watch: FAST_WATCH,
    }),
  );
  // The shell lowers the limit, then becomes fedgate: the child is fedgate itself.
  child = start('sh', [
    '-c',
    `ulimit -n ${LIMIT} && exec "$0" "$@"`,
    process.execPath,
    CLI,
    'start',
    '--config',
    file,
    '--workers',
    '1',
  ]);
  await waitFor(() => child.out().includes('fedgate: ready'), WAIT_MS, 'fedgate ready');
}, 60_000);

afterAll(async () => {
  if (child?.child.pid && child.child.exitCode === null && child.child.signalCode === null) {
    process.kill(-child.child.pid, 'SIGKILL');
  }
  await fed?.stop();
  await env.cleanup();
});

describe(`fedgate out of file descriptors (ulimit -n ${LIMIT})`, () => {
  it('closes new proxy and DNS TCP connections it cannot serve, counted, and /metrics and UDP DNS still answer', async () => {
    expect(await exhausted('http_accept')).toBe(0);
    const http = await flood(ports.http, FLOOD);
    const held = [...http];
    try {
      // The last descriptors are kept from clients: some of the flood was cut at once.
      await waitFor(() => http.some((h) => h.closedByPeer), WAIT_MS, 'connections cut');
      expect(await exhausted('http_accept')).toBeGreaterThan(0);
      held.push(...(await flood(ports.dns, 64)));
      expect(await tcpQuery()).toBe('closed');
      await waitFor(async () => (await exhausted('dns_tcp_accept')) > 0, WAIT_MS, 'dns_tcp_accept');
      // UDP needs no descriptor per query: it answers through the flood.
      expect((await udpQuery()).length).toBeGreaterThan(0);
    } finally {
      await release(held);
    }
    expect(child.child.exitCode).toBeNull();
  }, 60_000);

  it('answers 503 RESOURCE_EXHAUSTED when no upstream socket can be opened: no retry, no blame on the endpoint', async () => {
    // Connections accepted while descriptors were plenty, for requests once they are not.
    const clients = [await opened(ports.http), await opened(ports.http)];
    const upgrading = await opened(ports.http);
    // Idle upstream connections from before have closed (upstreamIdle 200ms).
    await sleep(500);
    const before = await metrics();
    // Clients up to the reserve, then idle admin connections (the admin listener may
    // use the reserve: that is what keeps /metrics up) take the rest.
    const http = await flood(ports.http, FLOOD);
    // A handshake completes before fedgate accepts; libuv cutting one (it had no
    // descriptor for it) says every earlier one was accepted: none is left. How many
    // that takes depends on what the child holds just now (watches, idle upstream
    // connections), so admin connections are added until one is cut, at most LIMIT.
    const admin = await flood(ports.admin, acceptReserve(LIMIT));
    for (let n = admin.length; n < LIMIT && !admin.some((h) => h.closedByPeer); n += 16) {
      admin.push(...(await flood(ports.admin, 16)));
      await sleep(20);
    }
    try {
      await waitFor(() => admin.some((h) => h.closedByPeer), WAIT_MS, 'the descriptor table full');
      // More than outlier detection's consecutiveGatewayFailure (5) on one connection:
      // over the local tier's two endpoints, had any been blamed, one would be ejected.
      for (const [c, n] of [
        [clients[0]!, BLAMELESS],
        [clients[1]!, 1],
      ] as const) {
        for (let i = 0; i < n; i++) {
          const r = await getOn(c);
          expect(r.status, r.body).toBe(503);
          expect(r.headers['x-fedgate-error']).toBe('RESOURCE_EXHAUSTED');
          expect(r.body).toContain('out of file descriptors');
        }
      }
      // A WebSocket upgrade needs its own upstream socket just the same.
      const u = await getOn(upgrading, UPGRADE);
      expect(u.status, u.body).toBe(503);
      expect(u.headers['x-fedgate-error']).toBe('RESOURCE_EXHAUSTED');
      expect((await udpQuery()).length).toBeGreaterThan(0);
    } finally {
      await release([...admin, ...http]);
    }
    const after = await waitFor(
      async () => {
        const text = await metrics();
        return total(text, 'fedgate_resource_exhausted_total', 'resource="upstream_connect"') >=
          BLAMELESS + 2
          ? text
          : undefined;
      },
      WAIT_MS,
      'upstream_connect counted',
    );
    // Answered by fedgate itself, once each (the upgrade counted as a request too): no
    // retry, and outlier detection heard nothing.
    const requests = (t: string) =>
      total(t, 'fedgate_http_requests_total', 'code="5xx"', 'cluster=""');
    expect(requests(after) - requests(before)).toBe(BLAMELESS + 2);
    expect(total(after, 'fedgate_http_retries_total')).toBe(0);
    expect(total(after, 'fedgate_outlier_ejections_detected_total')).toBe(0);
    const services = (await (
      await fetch(`http://127.0.0.1:${ports.admin}/debug/services`)
    ).json()) as unknown;
    expect(JSON.stringify(services)).not.toMatch(/"ejected":[1-9]/);
    for (const c of [...clients, upgrading]) c.destroy();
  }, 60_000);

  it('logs each kind once a minute at most, with the count in /metrics', async () => {
    for (const resource of ['http_accept', 'dns_tcp_accept', 'upstream_connect']) {
      expect(exhaustionLines(resource), resource).toHaveLength(1);
      expect(await exhausted(resource), resource).toBeGreaterThan(1);
    }
    expect(exhaustionLines('upstream_connect')[0]).toMatchObject({ level: 50, suppressed: 0 });
  });

  it('serves as before once the connections close: proxy, DNS over TCP and UDP, /metrics', async () => {
    const c = await opened(ports.http);
    try {
      const r = await getOn(c);
      expect(r.status, r.body).toBe(200);
      expect((JSON.parse(r.body) as { zone: string }).zone).toBe('us-east-a');
      // The same connection again: kept alive, a pooled upstream connection.
      expect((await getOn(c)).status).toBe(200);
    } finally {
      c.destroy();
    }
    expect(await tcpQuery()).toBeGreaterThan(0);
    expect((await udpQuery()).length).toBeGreaterThan(0);
    const text = await metrics();
    expect(total(text, 'fedgate_cluster_up')).toBe(3);
    expect(child.child.exitCode).toBeNull();
  }, 60_000);

  it('drains and exits 0 on SIGTERM', async () => {
    child.child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  }, 30_000);
});
