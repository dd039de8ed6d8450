// The loopback-only guard (src/netguard/) end to end, in this test process (guarded
// by test/setup/loopback-guard.ts) and in a fedgate child it starts.
//
// Safety: every refused destination below is one the kernel itself rejects without
// sending anything, so a broken guard fails these tests with the kernel's error (not
// NON_LOOPBACK_REFUSED) instead of sending a packet. Each was tried once without the
// guard, under strace:
//   - TCP to 224.0.0.1, ff02::1, ::ffff:224.0.0.1 (multicast) and 255.255.255.255
//     (broadcast): connect(2) returns ENETUNREACH, no SYN is sent;
//   - TCP to 0.0.0.0 and :: : Linux takes them for this host (ECONNREFUSED from the
//     local stack), so they never leave the machine either;
//   - UDP to 255.255.255.255 and ::ffff:255.255.255.255 on a socket without
//     SO_BROADCAST: sendmsg(2) and connect(2) return EACCES.
// Private and public ranges are covered by the pure isLoopbackAddress tests, which
// dial nothing. Names resolve through custom lookups answering these addresses.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Agent, fetch as undiciFetch, request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClusterPki } from '../src/localfed/pki.ts';
import { CLI, ROOT, start } from './helpers/cli.ts';
import { waitFor } from './helpers/wait.ts';

const HERE = /test\/netguard\.test\.ts:\d+:\d+/;
const TCP_REFUSED = [
  '224.0.0.1',
  'ff02::1',
  '::ffff:224.0.0.1',
  '255.255.255.255',
  '0.0.0.0',
  '::',
];
const LOOPBACK = ['127.0.0.1', '127.0.0.2', '::1'];

/** The guard's error, naming the destination and (when `here`) this file as the caller. */
function expectRefusal(err: unknown, to: string, here = true): void {
  expect(err).toMatchObject({ name: 'FedgateError', code: 'NON_LOOPBACK_REFUSED' });
  const message = (err as Error).message;
  expect(message).toContain(`loopback-only guard refused`);
  expect(message).toContain(` to ${to}`);
  if (here) expect(message).toMatch(HERE);
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected the guard to throw');
}

const bracket = (ip: string) => (ip.includes(':') ? `[${ip}]` : ip);

/** A lookup that answers `address` for any name, in both the one and the all-answers form. */
function lookupTo(address: string): LookupFunction {
  const family = address.includes(':') ? 6 : 4;
  return ((_name: string, options: unknown, cb: (...a: unknown[]) => void) => {
    const all = typeof options === 'object' && (options as { all?: boolean }).all;
    if (all) cb(null, [{ address, family }]);
    else cb(null, address, family);
  }) as unknown as LookupFunction;
}

function socketError(socket: { once(e: 'error', l: (err: Error) => void): unknown }) {
  return new Promise<Error>((resolve) => socket.once('error', resolve));
}

describe('TCP outside loopback is refused before connecting', () => {
  it.each(TCP_REFUSED)('net.connect to %s throws at once', (ip) => {
    expectRefusal(
      thrown(() => net.connect(6443, ip)),
      `${bracket(ip)}:6443`,
    );
  });

  it('tls.connect', () => {
    expectRefusal(
      thrown(() => tls.connect({ host: '224.0.0.1', port: 443 })),
      '224.0.0.1:443',
    );
  });

  it('http.request', () => {
    expectRefusal(
      thrown(() => http.request('http://224.0.0.1:8080/').end()),
      '224.0.0.1:8080',
    );
  });

  it('http2.connect', () => {
    expectRefusal(
      thrown(() => http2.connect('http://[ff02::1]:8080')),
      '[ff02::1]:8080',
    );
  });

  // undici dials from its dispatcher, later: no frame of this file is on the stack.
  it('undici request and fetch', async () => {
    const err = await undiciRequest('http://224.0.0.1:8080/').catch((e: unknown) => e);
    expectRefusal(err, '224.0.0.1:8080', false);
    const fetched = await undiciFetch('http://224.0.0.1:8080/').catch((e: unknown) => e);
    expectRefusal((fetched as Error).cause, '224.0.0.1:8080', false);
  });

  it('global fetch', async () => {
    const err = await fetch('http://[ff02::1]:8080/').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expectRefusal((err as Error).cause, '[ff02::1]:8080', false);
  });
});

describe('names resolving outside loopback are refused after the lookup', () => {
  const resolved = '224.0.0.1:6443 (far.example.test resolved to it)';

  it.each([
    ['all answers (Happy Eyeballs)', {}],
    ['one answer', { family: 4 }],
    ['one answer, autoSelectFamily off', { autoSelectFamily: false }],
  ])('net.connect, %s', async (_what, more) => {
    const socket = net.connect({
      host: 'far.example.test',
      port: 6443,
      lookup: lookupTo('224.0.0.1'),
      ...more,
    });
    expectRefusal(await socketError(socket), resolved);
    expect(socket.destroyed).toBe(true);
  });

  it('http.request with its own lookup', async () => {
    const req = http.request({
      host: 'far.example.test',
      port: 6443,
      lookup: lookupTo('224.0.0.1'),
    });
    req.end();
    expectRefusal(await socketError(req), resolved);
  });

  it('undici with a connect lookup', async () => {
    const dispatcher = new Agent({ connect: { lookup: lookupTo('ff02::1') } });
    try {
      const err = await undiciRequest('http://far.example.test:6443/', { dispatcher }).catch(
        (e: unknown) => e,
      );
      expectRefusal(err, '[ff02::1]:6443 (far.example.test resolved to it)', false);
    } finally {
      await dispatcher.close();
    }
  });

  it('dgram send and connect, through the socket’s own lookup', async () => {
    const socket = dgram.createSocket({
      type: 'udp4',
      lookup: lookupTo('255.255.255.255') as never,
    });
    try {
      const sent = await new Promise<Error | null>((resolve) =>
        socket.send('x', 53, 'far.example.test', resolve),
      );
      expectRefusal(sent, '255.255.255.255:53 (far.example.test resolved to it)');
      const connected = await new Promise<Error | undefined>((resolve) =>
        socket.connect(53, 'far.example.test', resolve as () => void),
      );
      expectRefusal(connected, '255.255.255.255:53 (far.example.test resolved to it)');
      // Without a callback, dgram's own way: an 'error' event.
      const event = socketError(socket);
      socket.send('x', 53, 'far.example.test');
      expectRefusal(await event, '255.255.255.255:53 (far.example.test resolved to it)');
    } finally {
      socket.close();
    }
  });
});

describe('UDP outside loopback is refused before sending', () => {
  const msg = Buffer.from('fedgate');
  const shapes: [string, (s: dgram.Socket, to: string) => void][] = [
    ['send(msg, port, address)', (s, to) => s.send(msg, 53, to)],
    ['send(msg, port, address, cb)', (s, to) => s.send(msg, 53, to, () => {})],
    ['send(msg, offset, length, port, address)', (s, to) => s.send(msg, 0, 3, 53, to)],
    [
      'send(msg, offset, length, port, address, cb)',
      (s, to) => s.send(msg, 1, 2, 53, to, () => {}),
    ],
    ['send([msgs], port, address)', (s, to) => s.send([msg, 'more'], 53, to)],
    ['send(string, port, address)', (s, to) => s.send('fedgate', 53, to)],
    ['connect(port, address)', (s, to) => s.connect(53, to)],
    ['connect(port, address, cb)', (s, to) => s.connect(53, to, () => {})],
    ['connectSync(port, address)', (s, to) => s.connectSync(53, to)],
  ];

  // Broadcast on a socket without SO_BROADCAST: EACCES from the kernel (see the top).
  const sockets = [
    ['udp4', '255.255.255.255'],
    ['udp6', '::ffff:255.255.255.255'],
  ] as const;
  const cases = sockets.flatMap(([type, to]) =>
    shapes.map(([shape, call]) => [type, shape, to, call] as const),
  );

  it.each(cases)('%s %s to %s throws at once', (type, _shape, to, call) => {
    const socket = dgram.createSocket(type);
    try {
      expectRefusal(
        thrown(() => call(socket, to)),
        `${bracket(to)}:53`,
      );
    } finally {
      socket.close();
    }
  });
});

// ---- loopback still works ---------------------------------------------------------------

let pki: Awaited<ReturnType<typeof makeClusterPki>>;
const servers: net.Server[] = [];
/** Port of each kind of server, by listening address. */
const tcpPorts = new Map<string, number>();
const tlsPorts = new Map<string, number>();
const httpPorts = new Map<string, number>();
const h2Ports = new Map<string, number>();

async function listen(server: net.Server, host: string): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as net.AddressInfo).port;
}

async function startServers(): Promise<void> {
  pki = await makeClusterPki('netguard', [...LOOPBACK, 'localhost']);
  for (const host of LOOPBACK) {
    const tcp = net.createServer((s) => s.end('hi'));
    tcpPorts.set(host, await listen(tcp, host));
    const tlsServer = tls.createServer({ cert: pki.serverCert, key: pki.serverKey }, (s) =>
      s.end('hi'),
    );
    tlsPorts.set(host, await listen(tlsServer, host));
    const web = http.createServer((_req, res) => res.end('hi'));
    web.keepAliveTimeout = 1;
    httpPorts.set(host, await listen(web, host));
    const h2 = http2.createServer((_req, res) => res.end('hi'));
    h2Ports.set(host, await listen(h2 as unknown as net.Server, host));
  }
}

function stopServers(): void {
  for (const s of servers) {
    s.close();
    (s as http.Server).closeAllConnections?.();
  }
}

function read(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (d) => {
      text += d;
    });
    socket.once('end', () => resolve(text));
    socket.once('error', reject);
  });
}

// `localhost` goes through dns.lookup, guarded; ::ffff:127.0.0.1 reaches the IPv4 listener.
const TARGETS = [
  ...LOOPBACK.map((h) => [h, h]),
  ['localhost', '127.0.0.1'],
  ['::ffff:127.0.0.1', '127.0.0.1'],
];

describe('loopback still works', () => {
  beforeAll(startServers);
  afterAll(stopServers);

  it.each(TARGETS)('net.connect to %s', async (host, server) => {
    expect(
      await read(net.connect({ host, port: tcpPorts.get(server)!, family: net.isIP(host) || 4 })),
    ).toBe('hi');
  });

  it.each(TARGETS)('tls.connect to %s', async (host, server) => {
    const socket = tls.connect({
      host,
      port: tlsPorts.get(server)!,
      ca: pki.caCert,
      servername: net.isIP(host) ? undefined : host,
      // The guard is under test, not the certificate's names (it has no ::ffff: form).
      checkServerIdentity: () => undefined,
    });
    expect(await read(socket)).toBe('hi');
  });

  it.each(TARGETS)(
    'http.request, undici request and fetch, and global fetch to %s',
    async (host, server) => {
      const url = `http://${bracket(host)}:${httpPorts.get(server)}/`;
      const viaHttp = await new Promise<string>((resolve, reject) =>
        http
          .get(url, { family: net.isIP(host) || 4 }, (res) => {
            let body = '';
            res.on('data', (d) => {
              body += d;
            });
            res.on('end', () => resolve(body));
          })
          .once('error', reject),
      );
      expect(viaHttp).toBe('hi');
      expect(await (await undiciRequest(url)).body.text()).toBe('hi');
      expect(await (await undiciFetch(url)).text()).toBe('hi');
      expect(await (await fetch(url)).text()).toBe('hi');
    },
  );

  it.each(LOOPBACK)('http2.connect to %s', async (host) => {
    const session = http2.connect(`http://${bracket(host)}:${h2Ports.get(host)}`);
    try {
      const stream = session.request({ ':path': '/' });
      let body = '';
      stream.on('data', (d) => {
        body += d;
      });
      await new Promise((resolve) => stream.once('end', resolve));
      expect(body).toBe('hi');
    } finally {
      session.close();
    }
  });

  it('a Unix socket path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedgate-netguard-'));
    try {
      const path = join(dir, 'sock');
      const server = net.createServer((s) => s.end('hi'));
      await new Promise<void>((resolve) => server.listen(path, resolve));
      expect(await read(net.connect(path))).toBe('hi');
      server.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['udp4', '127.0.0.1', '127.0.0.1'],
    ['udp4', '127.0.0.2', '127.0.0.2'],
    ['udp4', 'localhost', '127.0.0.1'],
    ['udp6', '::1', '::1'],
    ['udp6', '::ffff:127.0.0.1', '127.0.0.1'],
  ] as const)('dgram %s to %s, in every shape', async (type, to, at) => {
    const server = dgram.createSocket(at.includes(':') ? 'udp6' : 'udp4');
    const got: string[] = [];
    server.on('message', (m) => got.push(m.toString()));
    await new Promise<void>((resolve) => server.bind(0, at, resolve));
    const port = server.address().port;
    const client = dgram.createSocket(type);
    const connected = dgram.createSocket(type);
    try {
      const msg = Buffer.from('abcdef');
      await new Promise((resolve) => client.send('one', port, to, resolve));
      client.send(msg, 0, 3, port, to);
      await new Promise((resolve) => client.send([msg, 'x'], port, to, resolve));
      await new Promise<void>((resolve) => connected.connect(port, to, resolve));
      await new Promise((resolve) => connected.send('connected', resolve));
      await waitFor(() => got.length === 4, 5000, 'four datagrams');
      expect(got.sort()).toEqual(['abc', 'abcdefx', 'connected', 'one']);
    } finally {
      client.close();
      connected.close();
      server.close();
    }
  });
});

// ---- fedgate processes -------------------------------------------------------------------

describe('fedgate processes are guarded too', () => {
  it('a fedgate child refuses to dial a member API outside loopback, and says so', async () => {
    // The setup file set it; the child inherits it, as every child of a test does.
    expect(process.env.FEDGATE_LOOPBACK_ONLY).toBe('1');
    const dir = await mkdtemp(join(tmpdir(), 'fedgate-netguard-'));
    // Multicast: should the guard fail, the kernel refuses the connect (see the top).
    await writeFile(
      join(dir, 'far.kubeconfig'),
      `apiVersion: v1
kind: Config
clusters: [{ name: far, cluster: { server: "https://224.0.0.1:6443", insecure-skip-tls-verify: true } }]
users: [{ name: far, user: { token: t } }]
contexts: [{ name: far, context: { cluster: far, user: far } }]
current-context: far
`,
    );
    const file = join(dir, 'fedgate.yaml');
    await writeFile(
      file,
      `federation: { name: galaxy, domain: example.test }
admin: { listen: "127.0.0.1:0" }
dns: { listen: ["127.0.0.1:0"] }
http: { listen: ["127.0.0.1:0"] }
watch: { startupTimeout: 5s }
clusters:
  - { name: far, kubeconfig: far.kubeconfig, region: us-east }
`,
    );
    const p = start(process.execPath, [CLI, 'start', '--config', file]);
    try {
      await waitFor(
        () => p.out().includes('loopback-only guard refused a TCP connection to 224.0.0.1:6443'),
        20_000,
        'the child to log the guard’s refusal',
      );
      expect(p.out()).not.toMatch(/ENETUNREACH/);
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
      await rm(dir, { recursive: true, force: true });
    }
  });

  // The other entries cannot be made to dial cheaply; what guards them is that the
  // guard's import comes first (ESM evaluates imports in order, before anything else).
  // Every file in bench/ is taken for a process entry (run alone, spawned or forked)
  // unless it is one of these libraries or a test file (vitest guards those through
  // setupFiles), so a new entry cannot be missed.
  const BENCH_LIBRARIES = [
    'catalog-fixture.ts',
    'child.ts',
    'dns-coredns.ts',
    'dns-fedgate.ts',
    'dns-floor.ts',
    'dns-knot.ts',
    'dns-load.ts',
    'dns-mix.ts',
    'dns-process.ts',
    'dns-report.ts',
    'dns-zonefile.ts',
    'grpc-unary.ts',
    'h2load.ts',
    'http-anchors.ts',
    'lib.ts',
    'load-report.ts',
    'load-rounds.ts',
    'nginx.ts',
    'otlp-discard.ts',
    'proxy-targets.ts',
    'route-set.ts',
  ];

  it('every process entry imports the guard first', async () => {
    const bench = (await readdir(join(ROOT, 'bench')))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !BENCH_LIBRARIES.includes(f))
      .map((f): [string, string] => [`bench/${f}`, '../src/netguard/install.ts']);
    const entries: [string, string][] = [
      ['src/cli.ts', './netguard/from-env.ts'],
      ['src/workers/main.ts', '../netguard/from-env.ts'],
      ...bench,
    ];
    expect(bench.map(([f]) => f)).toContain('bench/run.ts');
    expect(bench.map(([f]) => f)).toContain('bench/catalog-sim.ts');
    expect(bench.map(([f]) => f)).toContain('bench/dns-floor-server.ts');
    for (const [file, guard] of entries) {
      const first = /^import\s.*$/m.exec(readFileSync(join(ROOT, file), 'utf8'))?.[0];
      expect(first, file).toBe(`import '${guard}';`);
    }
  });
});
