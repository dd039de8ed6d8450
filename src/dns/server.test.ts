// The DNS listeners over a snapshot literal: EDNS and malformed input at the
// protocol level, and TCP's several queries per connection, idle timeout and cap.
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpoints, service } from '../../test/fixtures/services.ts';
import { sleep, waitFor } from '../../test/helpers/wait.ts';
import type { Snapshot } from '../catalog/model.ts';
import { configSchema } from '../config/schema.ts';
import { HealthStore } from '../health/store.ts';
import { Router } from '../routing/router.ts';
import { DnsServer } from './server.ts';

const ZONE = { region: 'us-east', zone: 'us-east-a' };
const config = configSchema.parse({
  federation: { name: 'galaxy', domain: 'example.test' },
  clusters: [{ name: 'a', kubeconfig: 'a.kubeconfig' }],
  self: ZONE,
  dns: {
    listen: ['127.0.0.1:0', '[::1]:0'],
    tcp: { idleTimeout: '1s', ioTimeout: '10s', maxConnections: 3 },
  },
});
const svc = service([{ cluster: 'a', endpoints: endpoints(0, 3, ZONE) }]);
const snapshot: Snapshot = {
  version: 1,
  createdAt: 0,
  services: new Map([[svc.key, svc]]),
  clusters: new Map(),
};

function query(name: string, qtype: number, opt?: Buffer): Buffer {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const head = Buffer.from(`abcd0100000100000000000${opt ? 1 : 0}`, 'hex');
  return Buffer.concat([
    head,
    ...labels,
    Buffer.from([0, qtype >> 8, qtype & 255, 0, 1]),
    opt ?? Buffer.alloc(0),
  ]);
}

/** An OPT record: payload size, EDNS version, and options (code, data). */
function opt(payload: number, version: number, options: [number, Buffer][] = []): Buffer {
  const rdata = Buffer.concat(
    options.map(([code, data]) =>
      Buffer.concat([
        Buffer.from([code >> 8, code & 255, data.length >> 8, data.length & 255]),
        data,
      ]),
    ),
  );
  return Buffer.concat([
    Buffer.from([
      0,
      0,
      41,
      payload >> 8,
      payload & 255,
      0,
      version,
      0,
      0,
      rdata.length >> 8,
      rdata.length & 255,
    ]),
    rdata,
  ]);
}

/** A TCP connection to the server at `port`, once connected. */
function openTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
}

describe('DnsServer protocol', () => {
  let dns: DnsServer;
  let port: number;
  const health = new HealthStore();

  beforeAll(async () => {
    const router = new Router(
      { ...config.routing, localities: config.localities, self: config.self },
      health,
    );
    dns = await DnsServer.start({
      config,
      catalog: { current: () => snapshot, subscribe: () => () => {} },
      health,
      router,
      log: pino({ level: 'silent' }),
    });
    port = dns.addresses().udp[0]!.port;
  });
  afterAll(async () => {
    await dns?.stop();
  });

  const udp = (msg: Buffer, wait = 1000) =>
    new Promise<Buffer | undefined>((resolve) => {
      const s = createSocket('udp4');
      const timer = setTimeout(() => {
        s.close();
        resolve(undefined);
      }, wait);
      s.on('message', (m) => {
        clearTimeout(timer);
        s.close();
        resolve(m);
      });
      s.send(msg, port, '127.0.0.1');
    });
  const rcode = (m: Buffer) => m[3]! & 0x0f;
  const name = 'web.shop.svc.clusterset.local';

  it('echoes OPT with payload 1232, ignores unknown options, answers BADVERS to version 1', async () => {
    const ok = (await udp(query(name, 1, opt(4096, 0, [[65001, Buffer.from('hi')]]))))!;
    expect(rcode(ok)).toBe(0);
    expect(ok.readUInt16BE(6)).toBe(3);
    const optAt = ok.length - 11;
    expect(ok.readUInt16BE(optAt + 1)).toBe(41);
    expect(ok.readUInt16BE(optAt + 3)).toBe(1232);
    const bad = (await udp(query(name, 1, opt(4096, 1))))!;
    // BADVERS = 16: 0 in the header, 1 in the OPT's extended rcode.
    expect(rcode(bad)).toBe(0);
    expect(bad.readUInt16BE(6)).toBe(0);
    expect(bad[bad.length - 11 + 5]).toBe(1);
  });

  it('listens on IPv6 too, UDP and TCP on the same port', async () => {
    const { udp: u, tcp: t } = dns.addresses();
    expect(u.map((a) => a.family)).toEqual(['IPv4', 'IPv6']);
    expect(t.map((a) => a.port)).toEqual(u.map((a) => a.port));
    const reply = await new Promise<Buffer>((resolve) => {
      const s = createSocket('udp6');
      s.on('message', (m) => {
        s.close();
        resolve(m);
      });
      s.send(query(name, 1), u[1]!.port, '::1');
    });
    expect(rcode(reply)).toBe(0);
    expect(reply.readUInt16BE(6)).toBe(3);
  });

  it('FORMERR when the header can be read, silence when not, and never answers a response', async () => {
    const broken = Buffer.concat([query(name, 1).subarray(0, 20)]);
    const r = (await udp(broken))!;
    expect(rcode(r)).toBe(1);
    expect(r.readUInt16BE(0)).toBe(0xabcd);
    expect(await udp(Buffer.from('abcd01', 'hex'), 300)).toBeUndefined();
    const response = query(name, 1);
    response[2] = 0x80;
    expect(await udp(response, 300)).toBeUndefined();
    const notify = query(name, 1);
    notify[2] = 4 << 3;
    const notimp = (await udp(notify))!;
    expect(rcode(notimp)).toBe(4);
    expect((notimp[2]! >> 3) & 0x0f).toBe(4);
    // RFC 7871: a Client Subnet whose address is longer than its prefix says is a FORMERR.
    const badEcs = opt(1232, 0, [[8, Buffer.from([0, 1, 24, 0, 198, 51, 100, 7])]]);
    expect(rcode((await udp(query(name, 1, badEcs)))!)).toBe(1);
  });

  it('answers several queries on one TCP connection, in order', async () => {
    const sock = connect(port, '127.0.0.1');
    const replies: Buffer[] = [];
    let buf = Buffer.alloc(0);
    sock.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
    });
    const frame = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]);
    const qs = [query(name, 1), query('nope.clusterset.local', 1), query('example.com', 1)];
    for (const [i, m] of qs.entries()) m.writeUInt16BE(i + 1, 0);
    // All three in one write, the last split across two.
    const all = Buffer.concat(qs.map(frame));
    sock.write(all.subarray(0, all.length - 5));
    await sleep(20);
    sock.write(all.subarray(all.length - 5));
    await waitFor(() => replies.length === 3, 5000, 'three replies');
    expect(replies.map((r) => [r.readUInt16BE(0), rcode(r)])).toEqual([
      [1, 0],
      [2, 3],
      [3, 5],
    ]);
    sock.destroy();
  });

  it('closes idle TCP connections and, at the cap, the one idle longest', async () => {
    const open = () => openTcp(port);
    // Nothing sent, nothing closed on our side: only the server's idle timeout ends it.
    const idle = await open();
    await closed(idle);

    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) held.push(await open());
    for (const s of held) s.on('error', () => {});
    const evictedBefore = dns.tcpClosed.get('evicted') ?? 0;
    const fourth = await open();
    // Past the cap the new connection is taken and the one idle longest (the first) goes.
    await closed(held[0]!);
    await waitFor(() => (dns.tcpClosed.get('evicted') ?? 0) === evictedBefore + 1, 5000);
    expect(held.slice(1).every((s) => !s.destroyed)).toBe(true);
    expect(fourth.destroyed).toBe(false);
    for (const s of [...held, fourth]) s.destroy();
  });
});

describe('DnsServer drain', () => {
  it('finishes the TCP queries it holds, closes idle connections, refuses new ones and keeps UDP', async () => {
    const health = new HealthStore();
    const router = new Router(
      { ...config.routing, localities: config.localities, self: config.self },
      health,
    );
    const dns = await DnsServer.start({
      config: { ...config, dns: { ...config.dns, listen: [{ host: '127.0.0.1', port: 0 }] } },
      catalog: { current: () => snapshot, subscribe: () => () => {} },
      health,
      router,
      log: pino({ level: 'silent' }),
    });
    const port = dns.addresses().tcp[0]!.port;
    try {
      const open = () => openTcp(port);
      const ended = (s: Socket) => new Promise<void>((r) => s.once('end', () => r()));
      const idle = await open();
      const busy = await open();
      let got = Buffer.alloc(0);
      busy.on('data', (c: Buffer) => {
        got = Buffer.concat([got, c]);
      });
      const m = query('web.shop.svc.clusterset.local', 1);
      const framed = Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]);
      // Half a query is in when the drain starts.
      busy.write(framed.subarray(0, 10));
      await sleep(50);
      const idleEnded = ended(idle);
      const busyEnded = ended(busy);
      const draining = dns.drain(5000);
      await idleEnded;
      // New connections are refused now.
      await expect(open()).rejects.toThrow(/ECONNREFUSED/);
      // UDP still answers while TCP drains.
      const udpReply = await new Promise<Buffer>((resolve) => {
        const u = createSocket('udp4');
        u.on('message', (r) => {
          u.close();
          resolve(r);
        });
        u.send(
          query('web.shop.svc.clusterset.local', 1),
          dns.addresses().udp[0]!.port,
          '127.0.0.1',
        );
      });
      expect(udpReply[3]! & 0x0f).toBe(0);
      expect(busy.destroyed).toBe(false);
      busy.write(framed.subarray(10));
      await busyEnded;
      // The held query got its whole answer before the server closed.
      expect(got.length).toBe(2 + got.readUInt16BE(0));
      expect(got.readUInt16BE(2 + 6)).toBe(3);
      busy.end();
      idle.end();
      expect(await draining).toEqual({ cut: 0 });
    } finally {
      await dns.stop();
    }
  });
});

describe('DnsServer reload of TCP limits', () => {
  it('applies a new dns.tcp.ioTimeout and maxConnections to the listeners it keeps', async () => {
    const health = new HealthStore();
    const router = new Router(
      { ...config.routing, localities: config.localities, self: config.self },
      health,
    );
    const at = (tcp: Record<string, unknown>) =>
      configSchema.parse({
        federation: { name: 'galaxy', domain: 'example.test' },
        clusters: [{ name: 'a', kubeconfig: 'a.kubeconfig' }],
        self: ZONE,
        dns: { listen: ['127.0.0.1:0'], tcp },
      });
    const first = at({ ioTimeout: '60s', idleTimeout: '60s', maxConnections: 10 });
    const dns = await DnsServer.start({
      config: first,
      catalog: { current: () => snapshot, subscribe: () => () => {} },
      health,
      router,
      log: pino({ level: 'silent' }),
    });
    const port = dns.addresses().tcp[0]!.port;
    const open = () => openTcp(port);
    try {
      const staged = await dns.stage(
        at({ ioTimeout: '200ms', idleTimeout: '60s', maxConnections: 2 }),
      );
      staged.commit();
      // Half a query: cut by the new deadline, not the old minute.
      const slow = await open();
      slow.write(Buffer.from([0, 40, 1]));
      await closed(slow);
      await waitFor(() => dns.tcpClosed.get('io_timeout') === 1, 5000);
      // The new cap: a third connection closes the one idle longest.
      const a = await open();
      await open();
      await open();
      await closed(a);
      expect(dns.tcpClosed.get('evicted')).toBe(1);
    } finally {
      await dns.stop();
    }
  });
});
