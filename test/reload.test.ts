// Live configuration reload, end to end: a local federation (address blocks
// 180–182), fedgate running on a config file, and that file changed under it while
// real clients keep asking. In-process Fedgate for the fine-grained checks (its
// logger is captured); `fedgate start` as a child process for SIGHUP and the file
// watch. Every loop is bounded in count and time; what is asserted is behaviour.

import { Resolver } from 'node:dns/promises';
import { once } from 'node:events';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Client, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Snapshot } from '../src/catalog/model.ts';
import { loadConfig } from '../src/config/load.ts';
import { Fedgate } from '../src/fedgate.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { makeClusterPki } from '../src/localfed/pki.ts';
import { CLI, start } from './helpers/cli.ts';
import {
  DiscoveryEnv,
  ERROR,
  FAST_WATCH,
  LogCapture,
  launchFederation,
} from './helpers/discovery-env.ts';
import { connectionRefused, freePort } from './helpers/ports.ts';
import { waitFor } from './helpers/wait.ts';

const SCENARIO = `
federation: { name: galaxy, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }]
  - name: beta
    region: us-east
    zones: [{ name: us-east-b, nodes: 1 }]
  - name: gamma
    region: eu-west
    zones: [{ name: eu-west-a, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha, beta, gamma], replicasPerZone: 2 }
  - { name: solo, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8081 }], clusters: [gamma], replicasPerZone: 1 }
`;
const WEB = 'web.shop.svc.clusterset.local';
const SOLO = 'solo.shop.svc.clusterset.local';
const ALIAS = 'www.reload.test';
/** gamma's pods; alpha's and beta's are 127.180.* and 127.181.* */
const GAMMA = /^127\.182\./;
const EU_CLIENT = '127.3.0.1';
const WAIT_MS = 15_000;

interface Answer {
  cluster: string;
  zone: string;
  pod: string;
}

let fed: LocalFederation;
const env = new DiscoveryEnv();
let kubeconfigs: Record<string, string>;

/** A fedgate config file as a user writes it; `over` replaces top-level sections. */
function configText(clusters: string[], over: Record<string, unknown> = {}): string {
  return stringify({
    federation: { name: 'galaxy', domain: 'example.test' },
    self: { region: 'us-east', zone: 'us-east-a' },
    clusters: clusters.map((name) => ({
      name,
      kubeconfig: kubeconfigs[name],
      region: name === 'gamma' ? 'eu-west' : 'us-east',
    })),
    localities: [{ cidr: '127.3.0.0/16', region: 'eu-west', zone: 'eu-west-a' }],
    // Traffic loops ask far faster than response rate limiting allows.
    dns: { listen: ['127.0.0.1:0'], rrl: { enabled: false } },
    http: { listen: ['127.0.0.1:0'] },
    admin: { listen: '127.0.0.1:0' },
    watch: FAST_WATCH,
    ...over,
  });
}

function resolver(port: number, local?: string): Resolver {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  if (local) r.setLocalAddress(local);
  return r;
}

async function get(url: string, host: string, path = '/') {
  const r = await request(`${url}${path}`, {
    headers: { host },
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await r.body.text();
  return { status: r.statusCode, text, json: () => JSON.parse(text) as Answer };
}

/** A running fedgate on a config file in the env's directory. */
class Running {
  readonly log = new LogCapture('info');
  file = '';
  fedgate!: Fedgate;

  async start(name: string, text: string): Promise<this> {
    this.file = join(await env.dir(), name);
    await writeFile(this.file, text);
    this.fedgate = await Fedgate.start(loadConfig(this.file), this.log.logger);
    const r = await this.fedgate.whenReady();
    if (!r.ready) throw new Error(`not ready: missing ${r.missing.join(', ')}`);
    return this;
  }

  async reload(text: string) {
    await writeFile(this.file, text);
    return this.fedgate.reloadFile(this.file, 'test');
  }

  get dnsPort(): number {
    return this.fedgate.dns.addresses().udp[0]!.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.fedgate.proxy.addresses().http[0]!.port}`;
  }

  /** The info lines that say a reload applied, newest last. */
  reloads(): string[] {
    return this.log.find(/^configuration reloaded/).map((e) => e.msg);
  }
}

/** A bounded loop of HTTP requests and DNS queries; counts what failed and why. */
function traffic(r: Running) {
  const state = { http: 0, dns: 0, failures: [] as string[], stop: false };
  const dns = resolver(r.dnsPort);
  const url = r.url;
  const done = (async () => {
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < 20_000 && !state.stop && Date.now() < deadline; i++) {
      try {
        const res = await get(url, WEB);
        if (res.status === 200) state.http++;
        else state.failures.push(`http ${res.status}: ${res.text.trim()}`);
      } catch (e) {
        state.failures.push(`http: ${(e as Error).message}`);
      }
      try {
        const a = await dns.resolve4(WEB);
        if (a.length > 0) state.dns++;
        else state.failures.push('dns: empty answer');
      } catch (e) {
        state.failures.push(`dns: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    }
  })();
  return {
    state,
    /** Waits until `n` more of each have succeeded. */
    progress: async (n: number) => {
      const h = state.http;
      const d = state.dns;
      await waitFor(
        () => state.http >= h + n && state.dns >= d + n,
        WAIT_MS,
        `${n} more requests and queries`,
      );
    },
    stop: async () => {
      state.stop = true;
      await done;
      return state;
    },
  };
}

/** One DNS query over an open TCP connection: the A answers' TTLs. */
async function tcpTtls(sock: Socket, name: string): Promise<number[]> {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const msg = Buffer.concat([
    Buffer.from('abcd00000001000000000000', 'hex'),
    ...labels,
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  const framed = Buffer.alloc(2 + msg.length);
  framed.writeUInt16BE(msg.length);
  msg.copy(framed, 2);
  const reply = new Promise<Buffer>((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        sock.off('data', onData);
        resolve(got.subarray(2, 2 + got.readUInt16BE(0)));
      }
    };
    sock.on('data', onData);
    sock.once('close', () => reject(new Error('the DNS TCP connection closed')));
  });
  sock.write(framed);
  const r = await reply;
  // The header and question are as asked; the answers follow.
  let at = msg.length;
  const ttls: number[] = [];
  for (let i = 0; i < r.readUInt16BE(6); i++) {
    at += 2; // a compression pointer to the question's name
    const rdlength = r.readUInt16BE(at + 8);
    ttls.push(r.readUInt32BE(at + 4));
    at += 10 + rdlength;
  }
  return ttls;
}

beforeAll(async () => {
  ({ fed, kubeconfigs } = await launchFederation(SCENARIO, 180, await env.dir()));
}, 60_000);

afterAll(async () => {
  await fed?.stop();
  await env.cleanup();
});

describe('reloading a running fedgate', () => {
  let run: Running | undefined;
  afterEach(async () => {
    await run?.fedgate.stop();
    run = undefined;
  });

  it('applies a good config and rejects bad ones while traffic flows, without a failed request', async () => {
    run = await new Running().start('traffic.yaml', configText(['alpha', 'beta']));
    const r = run;
    const dns = resolver(r.dnsPort);
    expect((await dns.resolve4(WEB, { ttl: true }))[0]!.ttl).toBe(5);
    expect((await get(r.url, ALIAS)).status).toBe(404);
    const load = traffic(r);
    await load.progress(20);

    // Good: a longer TTL and a new alias.
    const good = configText(['alpha', 'beta'], {
      dns: { listen: ['127.0.0.1:0'], rrl: { enabled: false }, ttl: '17s' },
      http: { listen: ['127.0.0.1:0'], aliases: { [ALIAS]: 'shop/web' } },
    });
    const applied = await r.reload(good);
    expect(applied).toMatchObject({ ok: true });
    expect(r.reloads().at(-1)).toBe(
      'configuration reloaded: settings changed: dns.ttl, http.aliases',
    );
    expect((await dns.resolve4(WEB, { ttl: true }))[0]!.ttl).toBe(17);
    const viaAlias = await get(r.url, ALIAS);
    expect(viaAlias.status).toBe(200);
    expect(viaAlias.json().cluster).toMatch(/^(alpha|beta)$/);
    await load.progress(20);

    // Bad: a value the schema refuses. One error line names it; nothing changes.
    let mark = r.log.entries.length;
    const invalid = good.replace('ttl: 17s', 'ttl: soon');
    expect(invalid).not.toBe(good);
    const rejected = await r.reload(invalid);
    expect(rejected).toMatchObject({ ok: false, code: 'CONFIG_INVALID' });
    const errors = r.log.atLeast(ERROR, mark);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toContain('configuration reload rejected');
    expect(errors[0]!.msg).toContain('dns.ttl: expected a duration');
    expect(r.fedgate.config.dns.ttl).toBe(17_000);

    // Bad too: a new listener that cannot bind. Rejected whole: the TTL change with it is not applied.
    const holder: Server = createServer();
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const taken = (holder.address() as { port: number }).port;
    try {
      const unbindable = configText(['alpha', 'beta', 'gamma'], {
        dns: { listen: ['127.0.0.1:0'], rrl: { enabled: false }, ttl: '30s' },
        http: { listen: ['127.0.0.1:0', `127.0.0.1:${taken}`], aliases: { [ALIAS]: 'shop/web' } },
      });
      mark = r.log.entries.length;
      const refused = await r.reload(unbindable);
      expect(refused).toMatchObject({ ok: false, code: 'LISTEN_FAILED' });
      const line = r.log.atLeast(ERROR, mark);
      expect(line).toHaveLength(1);
      expect(line[0]!.msg).toContain('http.listen: listen EADDRINUSE');
    } finally {
      holder.close();
    }
    expect((await dns.resolve4(WEB, { ttl: true }))[0]!.ttl).toBe(17);
    expect((await get(r.url, ALIAS)).status).toBe(200);
    expect(r.fedgate.discovery.watchers.map((w) => w.name)).toEqual(['alpha', 'beta']);
    expect(r.fedgate.journal.recent({ kinds: ['reload'] }).map((e) => e.detail?.ok)).toEqual([
      true,
      false,
      false,
    ]);

    await load.progress(20);
    const done = await load.stop();
    expect(done.failures).toEqual([]);
    expect(done.http).toBeGreaterThanOrEqual(60);
  });

  it('adds and removes a member cluster live: its endpoints appear in DNS and the proxy, then leave', async () => {
    run = await new Running().start('members.yaml', configText(['alpha', 'beta']));
    const r = run;
    const dns = resolver(r.dnsPort);
    const eu = resolver(r.dnsPort, EU_CLIENT);
    const snapshots: Snapshot[] = [];
    r.fedgate.discovery.catalog.subscribe((s) => snapshots.push(s));
    await expect(dns.resolve4(SOLO)).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect((await get(r.url, SOLO)).status).toBe(404);
    // eu-west has no cluster yet: its clients are answered from us-east.
    expect((await eu.resolve4(WEB)).some((a) => GAMMA.test(a))).toBe(false);

    const added = await r.reload(configText(['alpha', 'beta', 'gamma']));
    expect(added).toMatchObject({ ok: true, changes: { clusters: { added: ['gamma'] } } });
    expect(r.reloads().at(-1)).toBe('configuration reloaded: clusters added: gamma');
    // Already ready: adding a cluster does not take the replica out of its Service.
    expect(r.fedgate.readiness().ready).toBe(true);
    const solo = await waitFor(
      () => dns.resolve4(SOLO).catch(() => undefined),
      WAIT_MS,
      "gamma's solo service in DNS",
    );
    expect(solo.every((a) => GAMMA.test(a))).toBe(true);
    expect((await get(r.url, SOLO)).json().cluster).toBe('gamma');
    await waitFor(
      async () => (await eu.resolve4(WEB)).every((a) => GAMMA.test(a)),
      WAIT_MS,
      "eu-west clients answered with gamma's web pods",
    );
    expect(r.fedgate.readiness()).toEqual({ ready: true, reason: 'ready' });

    const before = snapshots.length;
    const removed = await r.reload(configText(['alpha', 'beta']));
    expect(removed).toMatchObject({ ok: true, changes: { clusters: { removed: ['gamma'] } } });
    // Gone at once, from every service in one snapshot.
    const after = snapshots.slice(before);
    const withGamma = (s: Snapshot, key: string) =>
      s.services.get(key)?.clusters.some((m) => m.cluster === 'gamma') ?? false;
    expect(after).toHaveLength(1);
    expect(withGamma(after[0]!, 'shop/web')).toBe(false);
    expect(after[0]!.services.has('shop/solo')).toBe(false);
    expect(after[0]!.clusters.has('gamma')).toBe(false);
    await expect(dns.resolve4(SOLO)).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect((await get(r.url, SOLO)).status).toBe(404);
    expect((await eu.resolve4(WEB)).some((a) => GAMMA.test(a))).toBe(false);
    expect(r.fedgate.discovery.watchers.map((w) => w.name)).toEqual(['alpha', 'beta']);
  });

  it('restarts a cluster whose kubeconfig changed without its endpoints leaving, and re-weights in place', async () => {
    run = await new Running().start('restart.yaml', configText(['alpha', 'beta']));
    const r = run;
    const catalog = r.fedgate.discovery.catalog;
    const gaps: number[] = [];
    catalog.subscribe((s) => {
      const web = s.services.get('shop/web');
      const alpha = web?.clusters.find((m) => m.cluster === 'alpha');
      if (!alpha || alpha.endpoints.length === 0) gaps.push(s.version);
    });
    const dir = await env.dir();
    const withKubeconfig = (path: string) =>
      configText(['alpha', 'beta']).replace(kubeconfigs.alpha!, path);
    const first = r.fedgate.discovery.watchers[0]!;

    // Same credentials at another path: a new watcher takes over once it has listed.
    const copy = join(dir, 'alpha-copy.kubeconfig');
    await copyFile(kubeconfigs.alpha!, copy);
    const moved = await r.reload(withKubeconfig(copy));
    expect(moved).toMatchObject({
      ok: true,
      changes: { clusters: { restarted: [{ name: 'alpha', why: 'kubeconfig path changed' }] } },
    });
    const second = r.fedgate.discovery.watchers[0]!;
    expect(second).not.toBe(first);
    await waitFor(() => second.status.state === 'synced', WAIT_MS, 'the new watcher to sync');
    expect(catalog.current().clusters.get('alpha')!.state).toBe('synced');

    // Credentials the API refuses: the last known endpoints stay, marked stale.
    const bad = join(dir, 'alpha-bad.kubeconfig');
    await writeFile(bad, (await readFile(copy, 'utf8')).replace(/token: .*/, 'token: wrong'));
    expect(await r.reload(withKubeconfig(bad))).toMatchObject({ ok: true });
    await waitFor(
      () => catalog.current().clusters.get('alpha')!.error?.code === 'CLUSTER_UNAUTHORIZED',
      WAIT_MS,
      'alpha to be marked as failing',
    );
    expect(catalog.current().clusters.get('alpha')!.state).toBe('stale');
    expect((await get(r.url, WEB)).json().cluster).toBe('alpha');

    // Fixed in place (same path, new content): SIGHUP's case, a rotated Secret.
    await copyFile(copy, bad);
    const fixed = await r.reload(
      withKubeconfig(bad).replace(/(name: beta\n)/, '$1    weight: 3\n'),
    );
    expect(fixed).toMatchObject({
      ok: true,
      changes: {
        clusters: {
          restarted: [{ name: 'alpha', why: 'kubeconfig file changed' }],
          updated: ['beta'],
        },
      },
    });
    await waitFor(
      () => catalog.current().clusters.get('alpha')!.state === 'synced',
      WAIT_MS,
      'alpha to sync again',
    );
    const beta = catalog
      .current()
      .services.get('shop/web')!
      .clusters.find((m) => m.cluster === 'beta');
    expect(beta!.weight).toBe(3);
    expect(gaps).toEqual([]);
  });

  it('keeps connections on listeners that stay, drains the ones removed and opens new ones', async () => {
    const [removedPort, newPort] = [await freePort(), await freePort()];
    const http = (ports: (number | 0)[]) => ({ listen: ports.map((p) => `127.0.0.1:${p}`) });
    run = await new Running().start(
      'listeners.yaml',
      configText(['alpha', 'beta'], { http: http([0, removedPort]) }),
    );
    const r = run;
    const kept = new Client(r.url, { pipelining: 1 });
    const leaving = new Client(`http://127.0.0.1:${removedPort}`, { pipelining: 1 });
    let keptConnects = 0;
    kept.on('connect', () => keptConnects++);
    const ask = (c: Client, path = '/') =>
      c.request({ path, method: 'GET', headers: { host: WEB } }).then(async (res) => {
        await res.body.text();
        return res.statusCode;
      });
    const dnsTcp = connect(r.fedgate.dns.addresses().tcp[0]!.port, '127.0.0.1');
    await once(dnsTcp, 'connect');
    try {
      expect(await ask(kept)).toBe(200);
      expect(await ask(leaving)).toBe(200);
      expect(await tcpTtls(dnsTcp, WEB)).toContain(5);
      // In flight on the listener about to go: it must finish.
      const slow = ask(leaving, '/delay/500');

      const next = configText(['alpha', 'beta'], {
        http: http([0, newPort]),
        dns: { listen: ['127.0.0.1:0'], rrl: { enabled: false }, ttl: '9s' },
      });
      const applied = await r.reload(next);
      expect(applied).toMatchObject({ ok: true });
      expect(r.reloads().at(-1)).toBe(
        `configuration reloaded: listeners opened: http 127.0.0.1:${newPort}; listeners closed: http 127.0.0.1:${removedPort}; settings changed: dns.ttl`,
      );

      // The keep-alive connections made before the reload serve after it.
      expect(await ask(kept)).toBe(200);
      expect(keptConnects).toBe(1);
      expect(await tcpTtls(dnsTcp, WEB)).toEqual(expect.arrayContaining([9]));
      expect(await slow).toBe(200);
      // The removed listener takes no new connection; the new one does.
      await waitFor(
        () => connectionRefused(removedPort),
        WAIT_MS,
        'the removed listener to refuse connections',
      );
      expect((await get(`http://127.0.0.1:${newPort}`, WEB)).status).toBe(200);
      expect(r.fedgate.proxy.addresses().http.map((a) => a.port)).toEqual([
        Number(new URL(r.url).port),
        newPort,
      ]);
    } finally {
      dnsTcp.destroy();
      await kept.close();
      await leaving.destroy();
    }
  });

  it('rotates TLS certificates under a kept listener; its HTTP/2 sessions carry on', async () => {
    const dir = await env.dir();
    const cert = join(dir, 'edge.crt');
    const key = join(dir, 'edge.key');
    const one = await makeClusterPki('edge-one', [WEB]);
    await writeFile(cert, one.serverCert);
    await writeFile(key, one.serverKey);
    const text = configText(['alpha', 'beta'], {
      http: { listen: [], tls: { listen: ['127.0.0.1:0'], certificates: [{ cert, key }] } },
    });
    run = await new Running().start('tls.yaml', text);
    const port = run.fedgate.proxy.addresses().https[0]!.port;
    const handshake = (ca: string) =>
      new Promise<boolean>((resolve, reject) => {
        const s = tlsConnect({
          host: '127.0.0.1',
          port,
          servername: WEB,
          ca,
          rejectUnauthorized: false,
        });
        s.once('secureConnect', () => {
          resolve(s.authorized);
          s.end();
        });
        s.once('error', reject);
      });
    const session = h2connect(`https://127.0.0.1:${port}`, { ca: one.caCert, servername: WEB });
    const h2get = () =>
      new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': '/', ':authority': WEB });
        req.once('response', (h) => resolve(Number(h[':status'])));
        req.once('error', reject);
        req.resume();
        req.end();
      });
    try {
      expect(await h2get()).toBe(200);
      expect(await handshake(one.caCert)).toBe(true);

      // A rotation: same paths, new files (cert-manager's case; SIGHUP reloads it).
      const two = await makeClusterPki('edge-two', [WEB]);
      await writeFile(cert, two.serverCert);
      await writeFile(key, two.serverKey);
      const applied = await run.reload(text);
      expect(applied).toMatchObject({ ok: true, changes: { settings: ['http.tls.certificates'] } });
      expect(run.fedgate.proxy.addresses().https[0]!.port).toBe(port);
      expect(await handshake(two.caCert)).toBe(true);
      expect(await handshake(one.caCert)).toBe(false);
      expect(await h2get()).toBe(200);
    } finally {
      session.destroy();
    }
  });
});

describe('a backend TLS rotation', () => {
  let run: Running | undefined;
  afterEach(async () => {
    await run?.fedgate.stop();
    run = undefined;
  });

  it('is a changed setting when only a file changed, and a file that does not parse rejects the reload', async () => {
    const dir = await env.dir();
    const ca = join(dir, 'backend-ca.pem');
    await writeFile(ca, (await makeClusterPki('backend-one', [WEB])).caCert);
    const text = configText(['alpha'], {
      routing: { backendTLS: { mesh: { caFiles: [ca], hostname: 'web.internal' } } },
    });
    run = await new Running().start('backend-tls.yaml', text);
    expect(await run.reload(text)).toMatchObject({ ok: true, changes: { settings: [] } });
    await writeFile(ca, (await makeClusterPki('backend-two', [WEB])).caCert);
    expect(await run.reload(text)).toMatchObject({
      ok: true,
      changes: { settings: ['routing.backendTLS'] },
    });
    await writeFile(ca, 'not a certificate');
    expect(await run.reload(text)).toMatchObject({
      ok: false,
      code: 'CONFIG_INVALID',
      problem: expect.stringContaining('routing.backendTLS.mesh.caFiles[0]'),
    });
  });
});

describe('fedgate start reloads on SIGHUP and on a change to its file', () => {
  it('applies the file as changed, SIGHUP too, and keeps running on a bad one', async () => {
    const dir = await env.dir();
    const file = join(dir, 'cli.yaml');
    const dnsPort = await freePort({ udp: true });
    const httpPort = await freePort();
    const adminPort = await freePort();
    const text = (ttl: string) =>
      configText(['alpha', 'beta'], {
        dns: { listen: [`127.0.0.1:${dnsPort}`], rrl: { enabled: false }, ttl },
        http: { listen: [`127.0.0.1:${httpPort}`] },
        admin: { listen: `127.0.0.1:${adminPort}` },
      });
    await writeFile(file, text('5s'));
    const child = start(process.execPath, [CLI, 'start', '--config', file]);
    const reloads = () =>
      child
        .out()
        .split('\n')
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as { msg: string; trigger?: string; level: number }];
          } catch {
            return []; // the banner, and anything not a log line
          }
        })
        .filter((e) => /^configuration reload/.test(e.msg ?? ''));
    const ttl = async () =>
      (
        await resolver(dnsPort)
          .resolve4(WEB, { ttl: true })
          .catch(() => [{ ttl: -1 }])
      )[0]!.ttl;
    try {
      await waitFor(() => child.out().includes('fedgate: ready'), 30_000, 'fedgate to be ready');
      expect(await ttl()).toBe(5);

      // The file changes: an editor's save.
      await writeFile(file, text('11s'));
      await waitFor(async () => (await ttl()) === 11, WAIT_MS, 'the new TTL after a file change');
      // The answer can change before the reload's log line reaches the pipe.
      await waitFor(() => reloads().length > 0, WAIT_MS, 'the reload logged');
      expect(reloads().at(-1)).toMatchObject({
        trigger: 'file change',
        msg: 'configuration reloaded: settings changed: dns.ttl',
      });

      // SIGHUP, sent before the watch's debounce is up: the reload is SIGHUP's.
      await writeFile(file, text('13s'));
      process.kill(child.child.pid!, 'SIGHUP');
      await waitFor(async () => (await ttl()) === 13, WAIT_MS, 'the new TTL after SIGHUP');
      expect(reloads().some((e) => e.trigger === 'SIGHUP' && e.msg.includes('dns.ttl'))).toBe(true);

      // A bad file: logged, and the last good one keeps running.
      await writeFile(file, `${await readFile(file, 'utf8')}\nnonsense: [\n`);
      await waitFor(
        () => reloads().some((e) => e.msg.startsWith('configuration reload rejected')),
        WAIT_MS,
        'the bad file to be rejected',
      );
      expect(await ttl()).toBe(13);
      expect((await get(`http://127.0.0.1:${httpPort}`, WEB)).status).toBe(200);

      process.kill(child.child.pid!, 'SIGTERM');
      expect(await child.exited).toBe(0);
    } finally {
      if (child.child.exitCode === null && child.child.signalCode === null) {
        process.kill(-child.child.pid!, 'SIGKILL');
      }
    }
  }, 90_000);
});
