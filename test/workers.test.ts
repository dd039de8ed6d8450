// `fedgate start --workers 2` end to end: a local federation (address blocks
// 190–192), fedgate as a child process on a config file, its DNS and proxy served by
// two worker processes sharing the listeners while the primary watches the clusters
// once. What is checked is behaviour seen from outside: both workers answer, /metrics
// sums them (and passes promtool), a failover is counted once however many workers
// route through it, a killed worker is replaced, and SIGTERM under load loses no
// request in flight and exits 0. Every loop is bounded; nothing asserts timing.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { LocalFederation } from '../src/localfed/federation.ts';
import type { TrafficView } from '../src/observe/traffic-view.ts';
import { CLI, fedgate, logLines, start } from './helpers/cli.ts';
import { DiscoveryEnv, FAST_WATCH, GALAXY_WEB, launchFederation } from './helpers/discovery-env.ts';
import { connectionRefused, freePort } from './helpers/ports.ts';
import { promtoolCheckMetrics, seriesTotal as total } from './helpers/prometheus.ts';
import { dig } from './helpers/tools.ts';
import { sleep, waitFor } from './helpers/wait.ts';

const ADDRESS_BLOCK = 190;
const WAIT_MS = 20_000;
const WEB = 'web.shop.svc.clusterset.local';

const SCENARIO = GALAXY_WEB;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One GET through the proxy on a connection of its own (so round robin spreads them). */
function get(port: number, path = '/'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { host: WEB }, agent: false, timeout: 30_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** One A query over TCP (DNS over TCP stays shared through node:cluster). */
async function resolveTcp(port: number): Promise<string[]> {
  const r = await dig({ host: '127.0.0.1', port }, ['+tcp', WEB, 'A']);
  return r.answers.filter((a) => a.type === 'A').map((a) => a.data);
}

/** Whether a plain UDP socket can bind 127.0.0.1:port now (no worker holds it). */
function udpFree(port: number): Promise<boolean> {
  const sock = createSocket('udp4');
  return new Promise((resolve) => {
    sock.once('error', () => resolve(false));
    sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
  });
}

/** One A query on a socket of its own. */
async function resolveA(port: number): Promise<string[]> {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  return r.resolve4(WEB);
}

/** A plain A query for WEB with this ID, hand-encoded so the test picks the source socket. */
function aQuery(id: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(1, 4); // QDCOUNT
  const labels = WEB.split('.').map((l) =>
    Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]),
  );
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** `count` queries from `sock` one after another, each answered within 2 s. */
async function askFrom(sock: UdpSocket, port: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const id = (i * 7919 + 1) & 0xffff;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        sock.off('message', onMessage);
        reject(new Error(`no answer to query ${i} from port ${sock.address().port} in 2 s`));
      }, 2000);
      const onMessage = (msg: Buffer) => {
        if (msg.length < 12 || msg.readUInt16BE(0) !== id) return;
        clearTimeout(timer);
        sock.off('message', onMessage);
        resolve();
      };
      sock.on('message', onMessage);
      sock.send(aQuery(id), port, '127.0.0.1');
    });
  }
}

async function udpSocket(): Promise<UdpSocket> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  return sock;
}

const env = new DiscoveryEnv();
let fed: LocalFederation;
let kubeconfigs: Record<string, string>;

function configText(
  ports: { dns: number; http: number; admin: number },
  over: { ttl?: string; http?: number[]; dns?: number } = {},
): string {
  return stringify({
    federation: { name: 'galaxy', domain: 'example.test' },
    self: { region: 'us-east', zone: 'us-east-a' },
    clusters: fed.clusters.map((c) => ({
      name: c.name,
      kubeconfig: kubeconfigs[c.name],
      region: c.name === 'gamma' ? 'eu-west' : 'us-east',
    })),
    // Counting needs every query answered: no response rate limiting.
    dns: {
      listen: [`127.0.0.1:${over.dns ?? ports.dns}`],
      rrl: { enabled: false },
      ttl: over.ttl ?? '5s',
    },
    http: {
      listen: [ports.http, ...(over.http ?? [])].map((p) => `127.0.0.1:${p}`),
      drainTimeout: '10s',
    },
    admin: { listen: `127.0.0.1:${ports.admin}` },
    watch: FAST_WATCH,
  });
}

beforeAll(async () => {
  ({ fed, kubeconfigs } = await launchFederation(SCENARIO, ADDRESS_BLOCK, await env.dir()));
}, 60_000);

afterAll(async () => {
  await fed?.stop();
  await env.cleanup();
});

describe('fedgate start --workers', () => {
  it('is documented, and anything but a whole number from 1 to 256 is a usage error', async () => {
    const help = await fedgate(['start', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--workers N');
    expect(help.stdout).toMatch(/default: one per core/);
    const file = join(await env.dir(), 'unused.yaml');
    for (const bad of ['0', '257', 'two', '1.5', '-1', '']) {
      const r = await fedgate(['start', '--config', file, `--workers=${bad}`]);
      expect(r.code, `--workers ${bad}`).toBe(2);
      expect(r.stderr).toContain('--workers must be a whole number from 1 to 256');
    }
  });

  it('with 1 serves everything in one process, as before', async () => {
    const ports = {
      dns: await freePort({ udp: true }),
      http: await freePort(),
      admin: await freePort(),
    };
    const file = join(await env.dir(), 'one.yaml');
    await writeFile(file, configText(ports));
    const child = start(process.execPath, [CLI, 'start', '--config', file, '--workers', '1']);
    try {
      await waitFor(() => child.out().includes('fedgate: ready'), WAIT_MS, 'fedgate ready');
      expect(child.out()).not.toContain('worker processes');
      expect((await get(ports.http)).status).toBe(200);
      expect((await resolveA(ports.dns)).length).toBeGreaterThan(0);
      const text = await (await fetch(`http://127.0.0.1:${ports.admin}/metrics`)).text();
      expect(total(text, 'fedgate_http_requests_total')).toBe(1);
      expect(text).not.toContain('fedgate_workers');
      expect(logLines(child.out()).some((l) => l.msg === 'worker serving')).toBe(false);
    } finally {
      child.child.kill('SIGTERM');
    }
    expect(await child.exited).toBe(0);
  }, 60_000);
});

describe('fedgate start --workers 2', () => {
  let child: ReturnType<typeof start>;
  let ports: { dns: number; http: number; admin: number };
  let file: string;
  const adminUrl = (path: string) => `http://127.0.0.1:${ports.admin}${path}`;
  const metrics = async () => (await fetch(adminUrl('/metrics'))).text();
  /** Worker slot → pid, from the workers' own "worker serving" lines (latest last). */
  const serving = () =>
    logLines(child.out())
      .filter((l) => l.msg === 'worker serving')
      .map((l) => ({ worker: l.worker!, pid: l.pid }));

  beforeAll(async () => {
    ports = {
      dns: await freePort({ udp: true }),
      http: await freePort(),
      admin: await freePort(),
    };
    file = join(await env.dir(), 'workers.yaml');
    await writeFile(file, configText(ports));
    child = start(process.execPath, [CLI, 'start', '--config', file, '--workers', '2']);
    await waitFor(() => child.out().includes('fedgate: ready'), WAIT_MS, 'fedgate ready');
  }, 60_000);

  afterAll(() => {
    if (child?.child.pid && child.child.exitCode === null && child.child.signalCode === null) {
      process.kill(-child.child.pid, 'SIGKILL');
    }
  });

  it('starts two workers on the shared listeners, and is ready only with both', async () => {
    expect(child.out()).toContain('DNS and HTTP served by 2 worker processes');
    expect(child.out()).toContain(`DNS 127.0.0.1:${ports.dns} (UDP and TCP)`);
    expect(child.out()).toContain(`HTTP http://127.0.0.1:${ports.http}`);
    const workers = serving();
    expect(workers.map((w) => w.worker).sort()).toEqual([0, 1]);
    expect(new Set(workers.map((w) => w.pid)).size).toBe(2);
    expect(workers.every((w) => w.pid !== child.child.pid)).toBe(true);
    const ready = await fetch(adminUrl('/readyz'));
    expect(ready.status).toBe(200);
    // The primary watches: only it says the clusters synced.
    const synced = logLines(child.out()).filter((l) => l.msg === 'member cluster synced');
    expect(synced).toHaveLength(3);
    expect(synced.every((l) => l.pid === child.child.pid)).toBe(true);
  });

  it('answers DNS and HTTP from both workers, and /metrics sums them', async () => {
    const N = 40;
    for (let i = 0; i < N; i++) {
      const r = await get(ports.http);
      expect(r.status, r.body).toBe(200);
      expect((JSON.parse(r.body) as { zone: string }).zone).toBe('us-east-a');
    }
    // Four at a time: the workers read one shared UDP socket, whoever asks first.
    for (let i = 0; i < N; i += 4) {
      const answers = await Promise.all([0, 1, 2, 3].map(() => resolveA(ports.dns)));
      for (const a of answers) {
        expect(a.length).toBeGreaterThan(0);
        // fedgate runs in us-east-a, alpha's pods there are 127.190.x.
        for (const address of a) expect(address).toMatch(/^127\.190\./);
      }
    }
    const text = await metrics();
    expect(total(text, 'fedgate_http_requests_total')).toBe(N);
    expect(total(text, 'fedgate_http_request_duration_seconds_count')).toBe(N);
    expect(total(text, 'fedgate_dns_queries_total')).toBe(N);
    // Both workers took some of each; together, all of them.
    for (const protocol of ['http', 'dns']) {
      const by = [0, 1].map((w) =>
        total(text, 'fedgate_worker_requests_total', `worker="${w}"`, `protocol="${protocol}"`),
      );
      expect(by[0], `${protocol} by worker 0`).toBeGreaterThan(0);
      expect(by[1], `${protocol} by worker 1`).toBeGreaterThan(0);
      expect(by[0]! + by[1]!).toBe(N);
    }
    // The status page's traffic picture is whole: both workers' rings merged slot by slot.
    const traffic = (await (await fetch(adminUrl('/debug/traffic'))).json()) as TrafficView;
    const web = traffic.services.find((s) => s.service === 'shop/web');
    const sum = (protocol: string) =>
      (web?.flows ?? []).filter((f) => f.protocol === protocol).reduce((a, f) => a + f.count, 0);
    expect(sum('http')).toBe(N);
    expect(sum('dns')).toBeCloseTo(N, 6);
    expect(web?.flows.filter((f) => f.protocol === 'http').map((f) => f.zone)).toEqual([
      'us-east-a',
    ]);
    // What only the primary knows is there once: three clusters, one catalog.
    expect(total(text, 'fedgate_cluster_up')).toBe(3);
    expect(text.match(/^fedgate_catalog_version \d+$/gm)).toHaveLength(1);
    expect(total(text, 'fedgate_workers', 'state="listening"')).toBe(2);
    const lint = await promtoolCheckMetrics(text);
    expect({ code: lint.code, stdout: lint.stdout, stderr: lint.stderr }).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });
  }, 60_000);

  /** DNS queries each worker has answered, by slot. */
  const dnsByWorker = async () => {
    const text = await metrics();
    return [0, 1].map((w) =>
      total(text, 'fedgate_worker_requests_total', `worker="${w}"`, 'protocol="dns"'),
    );
  };

  it('spreads UDP queries over the workers by source port, each worker on a socket of its own', async () => {
    // Each worker binds its own socket (SO_REUSEPORT); the kernel picks one per
    // client address and port. Many source ports: each worker takes a share.
    const SOURCES = 200;
    const PER_SOURCE = 2;
    const before = await dnsByWorker();
    for (let i = 0; i < SOURCES; i += 10) {
      const socks = await Promise.all(Array.from({ length: 10 }, () => udpSocket()));
      try {
        await Promise.all(socks.map((s) => askFrom(s, ports.dns, PER_SOURCE)));
      } finally {
        for (const s of socks) s.close();
      }
    }
    const after = await dnsByWorker();
    const got = after.map((n, w) => n - before[w]!);
    console.log(`UDP queries from ${SOURCES} source ports, answered by worker: ${got.join(' / ')}`);
    expect(got[0]! + got[1]!).toBe(SOURCES * PER_SOURCE);
    // Binomial(200 sources, 1/2) × 2: below a quarter each is 7 standard deviations out.
    for (const [w, n] of got.entries()) {
      expect(n, `worker ${w}`).toBeGreaterThan((SOURCES * PER_SOURCE) / 4);
    }

    // One source port: every query to the same worker (a forwarder that sends from
    // one port is served by one worker).
    const one = await udpSocket();
    const before1 = await dnsByWorker();
    try {
      await askFrom(one, ports.dns, 50);
    } finally {
      one.close();
    }
    const got1 = (await dnsByWorker()).map((n, w) => n - before1[w]!);
    expect(got1.sort((a, b) => a - b)).toEqual([0, 50]);
  }, 60_000);

  it('reloads in every worker or in none: a new listener opens in both, a bad one changes nothing', async () => {
    const reloads = () =>
      logLines(child.out()).filter((l) => /^configuration reload/.test(l.msg) && !l.worker);
    const ttls = async () => {
      const seen = new Set<number>();
      for (let i = 0; i < 12; i++) {
        const r = new Resolver({ timeout: 2000, tries: 1 });
        r.setServers([`127.0.0.1:${ports.dns}`]);
        for (const a of await r.resolve4(WEB, { ttl: true })) seen.add(a.ttl);
      }
      return [...seen];
    };
    const extra = await freePort();
    await writeFile(file, configText(ports, { ttl: '7s', http: [extra] }));
    await waitFor(() => reloads().length >= 1, WAIT_MS, 'the reload');
    expect(reloads().at(-1)).toMatchObject({
      level: 30,
      listenersOpened: [`http 127.0.0.1:${extra}`],
      settings: ['dns.ttl'],
    });
    const servedBefore = await metrics();
    for (let i = 0; i < 10; i++) expect((await get(extra)).status).toBe(200);
    const servedAfter = await metrics();
    // Both workers took connections on the new listener.
    for (const w of [0, 1]) {
      const by = (text: string) =>
        total(text, 'fedgate_worker_requests_total', `worker="${w}"`, 'protocol="http"');
      expect(by(servedAfter), `worker ${w}`).toBeGreaterThan(by(servedBefore));
    }
    // Every worker commits the new settings as its turn comes.
    await waitFor(async () => (await ttls()).join() === '7', WAIT_MS, 'TTL 7 from every worker');

    // A port another process holds: the whole reload is refused, in every worker.
    const held = createServer();
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
    const heldPort = (held.address() as AddressInfo).port;
    try {
      await writeFile(file, configText(ports, { ttl: '9s', http: [extra, heldPort] }));
      await waitFor(() => reloads().length >= 2, WAIT_MS, 'the bad reload');
      const rejected = reloads().at(-1)!;
      expect(rejected.level).toBe(50);
      expect(rejected.msg).toMatch(
        /^configuration reload rejected, the running configuration is unchanged: http\.listen: .*EADDRINUSE/,
      );
      expect(await ttls()).toEqual([7]);
      expect((await get(extra)).status).toBe(200);
    } finally {
      await new Promise((resolve) => held.close(resolve));
    }

    // Back as it was: the extra listener closes in both workers.
    await writeFile(file, configText(ports));
    await waitFor(() => reloads().length >= 3, WAIT_MS, 'the reload back');
    expect(reloads().at(-1)).toMatchObject({
      listenersClosed: [`http 127.0.0.1:${extra}`],
      settings: ['dns.ttl'],
    });
    await waitFor(
      () =>
        get(extra).then(
          () => false,
          (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED',
        ),
      WAIT_MS,
      'the removed listener to refuse connections',
    );
    await waitFor(async () => (await ttls()).join() === '5', WAIT_MS, 'TTL 5 from every worker');
  }, 60_000);

  it('moves DNS to a new address in every worker on reload, and refuses an address another process holds', async () => {
    const reloads = () =>
      logLines(child.out()).filter((l) => /^configuration reload/.test(l.msg) && !l.worker);
    const seen = reloads().length;
    const moved = await freePort({ udp: true });
    await writeFile(file, configText(ports, { dns: moved }));
    await waitFor(() => reloads().length > seen, WAIT_MS, 'the reload');
    expect(reloads().at(-1)).toMatchObject({
      level: 30,
      listenersOpened: [`dns 127.0.0.1:${moved}`],
      listenersClosed: [`dns 127.0.0.1:${ports.dns}`],
    });
    // Commits reach the workers in turn: wait until the old port is gone in both.
    await waitFor(() => udpFree(ports.dns), WAIT_MS, 'the old DNS port to close in every worker');
    const before = await dnsByWorker();
    for (let i = 0; i < 40; i += 10) {
      const socks = await Promise.all(Array.from({ length: 10 }, () => udpSocket()));
      try {
        await Promise.all(socks.map((s) => askFrom(s, moved, 1)));
      } finally {
        for (const s of socks) s.close();
      }
    }
    for (const r of await Promise.all([0, 1, 2, 3].map(() => resolveTcp(moved)))) {
      expect(r.length).toBeGreaterThan(0);
    }
    const got = (await dnsByWorker()).map((n, w) => n - before[w]!);
    expect(got[0]! + got[1]!).toBe(44);
    for (const [w, n] of got.entries()) expect(n, `worker ${w} on the new port`).toBeGreaterThan(0);

    // A UDP port another process holds (without SO_REUSEPORT): refused, nothing moves.
    const held = createSocket('udp4');
    await new Promise<void>((resolve) => held.bind(0, '127.0.0.1', resolve));
    try {
      await writeFile(file, configText(ports, { dns: held.address().port }));
      await waitFor(() => reloads().length > seen + 1, WAIT_MS, 'the bad reload');
      const rejected = reloads().at(-1)!;
      expect(rejected.level).toBe(50);
      expect(rejected.msg).toMatch(
        /^configuration reload rejected, the running configuration is unchanged: dns\.listen: .*EADDRINUSE/,
      );
      expect((await resolveA(moved)).length).toBeGreaterThan(0);
    } finally {
      held.close();
    }

    // Back where it was, for the tests after this one.
    await writeFile(file, configText(ports));
    await waitFor(() => reloads().length > seen + 2, WAIT_MS, 'the reload back');
    expect(reloads().at(-1)).toMatchObject({ listenersOpened: [`dns 127.0.0.1:${ports.dns}`] });
    await waitFor(() => udpFree(moved), WAIT_MS, 'the moved DNS port to close in every worker');
    expect((await resolveA(ports.dns)).length).toBeGreaterThan(0);
  }, 60_000);

  it('counts a failover once, though both workers route through it', async () => {
    const failovers = async () =>
      total(await metrics(), 'fedgate_failovers_total', 'service="shop/web"');
    expect(await failovers()).toBe(0);
    await fed.failZone('us-east-a');
    try {
      // Traffic from both workers, until it has left the failed zone.
      await waitFor(
        async () => {
          const zones = await Promise.all([0, 1, 2, 3].map(async () => get(ports.http)));
          return zones.every(
            (r) =>
              r.status === 200 && (JSON.parse(r.body) as { zone: string }).zone !== 'us-east-a',
          );
        },
        WAIT_MS,
        'traffic to leave us-east-a',
      );
      for (let i = 0; i < 20; i++) expect((await get(ports.http)).status).toBe(200);
      for (let i = 0; i < 10; i++) await resolveA(ports.dns);
      const text = await metrics();
      expect(
        total(text, 'fedgate_failovers_total', 'service="shop/web"', 'from="zone"', 'to="region"'),
      ).toBe(1);
      expect(await failovers()).toBe(1);
      const events = (await (await fetch(adminUrl('/events'))).json()) as {
        events: { kind: string; service?: string; detail?: Record<string, unknown> }[];
      };
      const shifts = events.events.filter((e) => e.kind === 'failover' && e.service === 'shop/web');
      expect(shifts.map((e) => `${e.detail?.from}→${e.detail?.to}`)).toEqual(['zone→region']);
      // One log line, from the primary.
      const lines = logLines(child.out()).filter((l) => l.msg === 'failover');
      expect(lines).toHaveLength(1);
      expect(lines[0]!.pid).toBe(child.child.pid);
    } finally {
      await fed.restoreZone('us-east-a');
    }
    await waitFor(
      async () =>
        (JSON.parse((await get(ports.http)).body) as { zone: string }).zone === 'us-east-a',
      WAIT_MS,
      'traffic to return to us-east-a',
    );
  }, 60_000);

  it('replaces a worker that dies, and keeps serving', async () => {
    const before = serving();
    const victim = before.find((w) => w.worker === 0)!;
    const survivor = before.find((w) => w.worker === 1)!;
    const servedBy0 = total(
      await metrics(),
      'fedgate_worker_requests_total',
      'worker="0"',
      'protocol="http"',
    );
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(
      () =>
        logLines(child.out()).some(
          (l) => l.level === 40 && /^worker 0 exited unexpectedly \(signal SIGKILL\)/.test(l.msg),
        ),
      WAIT_MS,
      'the primary to see worker 0 exit',
    );
    const replaced = await waitFor(
      () => serving().find((w) => w.worker === 0 && w.pid !== victim.pid),
      WAIT_MS,
      'a new worker 0',
    );
    expect(replaced.pid).not.toBe(survivor.pid);
    await waitFor(
      async () => (await fetch(adminUrl('/readyz'))).status === 200,
      WAIT_MS,
      '/readyz to be 200 again',
    );
    // Service goes on, on both workers.
    for (let i = 0; i < 20; i++) expect((await get(ports.http)).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await resolveA(ports.dns)).length).toBeGreaterThan(0);
    // The new worker's SOA serial is the old one's: every worker answers the same.
    const serials = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([`127.0.0.1:${ports.dns}`]);
      serials.add((await r.resolveSoa('example.test')).serial);
    }
    expect(serials.size).toBe(1);
    const text = await metrics();
    expect(total(text, 'fedgate_worker_restarts_total')).toBe(1);
    expect(total(text, 'fedgate_workers', 'state="listening"')).toBe(2);
    // What the dead worker had counted is still counted, and the new one adds to it.
    expect(
      total(text, 'fedgate_worker_requests_total', 'worker="0"', 'protocol="http"'),
    ).toBeGreaterThan(servedBy0);
    expect(total(text, 'fedgate_http_requests_total')).toBeGreaterThanOrEqual(
      total(text, 'fedgate_worker_requests_total', 'protocol="http"'),
    );
  }, 60_000);

  it('drains on SIGTERM under load: every request in flight completes, then it exits 0', async () => {
    const LOOPS = 8;
    const results: { status: number; connection: string | undefined }[] = [];
    const failures: string[] = [];
    let stop = false;
    let sentTerm = false;
    let finishedAfterTerm = 0;
    // Each loop sends slow requests one after another until told to stop; a request
    // is only started before the stop, so every one of them must be answered.
    const loops = Array.from({ length: LOOPS }, async () => {
      for (let i = 0; i < 200 && !stop; i++) {
        try {
          const r = await get(ports.http, '/delay/1000');
          results.push({ status: r.status, connection: r.headers.connection });
          if (r.status !== 200) failures.push(`status ${r.status}: ${r.body}`);
          if (sentTerm) finishedAfterTerm++;
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    });
    await waitFor(() => results.length >= 2 * LOOPS, WAIT_MS, 'the load to run');
    stop = true;
    // Every loop has one request on its way; give each a moment to be accepted.
    await sleep(300);
    sentTerm = true;
    const logFrom = child.out().length;
    child.child.kill('SIGTERM');
    // New connections are refused while those requests are still running.
    const refused = await waitFor(
      () => connectionRefused(ports.http),
      5000,
      'new connections to be refused after SIGTERM',
      25,
    );
    expect(refused).toBe(true);
    await Promise.all(loops);
    expect(failures).toEqual([]);
    expect(finishedAfterTerm).toBeGreaterThan(0);
    // Answers given while draining ask the client to close.
    expect(results.at(-1)?.connection).toBe('close');
    expect(await child.exited).toBe(0);
    const out = child.out().slice(logFrom);
    expect(out).not.toMatch(/were cut/);
    expect(out).not.toMatch(/"level":50/);
    expect(logLines(out).some((l) => l.msg === 'stopping' && l.pid === child.child.pid)).toBe(true);
  }, 60_000);
});
