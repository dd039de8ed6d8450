// Hostile DNS clients against the real listeners (node:net and node:dgram sockets,
// raw wire format): TCP is not rate limited, slow or stuck TCP clients are cut and
// cannot fill the connection table, and error answers carry the right rcode and no AA.
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/catalog/model.ts';
import { configSchema } from '../../src/config/schema.ts';
import { DnsServer } from '../../src/dns/server.ts';
import { HealthStore } from '../../src/health/store.ts';
import { Router } from '../../src/routing/router.ts';
import { endpoints, service } from '../fixtures/services.ts';
import { dig } from '../helpers/tools.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const ZONE = { region: 'us-east', zone: 'us-east-a' };
const WEB = 'web.shop.svc.clusterset.local';
const svc = service([{ cluster: 'a', endpoints: endpoints(0, 64, ZONE) }]);
const snapshot: Snapshot = {
  version: 1,
  createdAt: 0,
  services: new Map([[svc.key, svc]]),
  clusters: new Map(),
};

const servers: DnsServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** A DnsServer on a 127.45.x.y address with these `dns` settings. */
async function start(host: string, dns: Record<string, unknown>) {
  const config = configSchema.parse({
    federation: { name: 'galaxy', domain: 'example.test' },
    clusters: [{ name: 'a', kubeconfig: 'a.kubeconfig' }],
    self: ZONE,
    dns: { listen: [`${host}:0`], ...dns },
  });
  const health = new HealthStore();
  const server = await DnsServer.start({
    config,
    catalog: { current: () => snapshot, subscribe: () => () => {} },
    health,
    router: new Router(
      { ...config.routing, localities: config.localities, self: config.self },
      health,
    ),
    log: pino({ level: 'silent' }),
  });
  servers.push(server);
  return { server, at: { host, port: server.addresses().tcp[0]!.port } };
}

/** A query: ID, opcode, question count; the question (A, IN) when `name` is given. */
function message(id: number, name: string | undefined, opcode = 0): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head[2] = opcode << 3;
  head.writeUInt16BE(name === undefined ? 0 : 1, 4);
  if (name === undefined) return head;
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  return Buffer.concat([head, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

function framed(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

interface Header {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rcode: number;
  ancount: number;
}

function header(b: Buffer): Header {
  return {
    id: b.readUInt16BE(0),
    qr: (b[2]! & 0x80) !== 0,
    opcode: (b[2]! >> 3) & 15,
    aa: (b[2]! & 4) !== 0,
    tc: (b[2]! & 2) !== 0,
    rcode: b[3]! & 15,
    ancount: b.readUInt16BE(6),
  };
}

function connected(at: { host: string; port: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(at.port, at.host, () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `msgs` in one write and reads `msgs.length` framed answers (or fails after 5 s). */
async function tcpExchange(at: { host: string; port: number }, msgs: Buffer[]): Promise<Buffer[]> {
  const sock = await connected(at);
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${out.length} of ${msgs.length} TCP answers`));
    }, 5000);
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`closed after ${out.length} answers`)));
    sock.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      while (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        out.push(got.subarray(2, 2 + got.readUInt16BE(0)));
        got = got.subarray(2 + got.readUInt16BE(0));
      }
      if (out.length === msgs.length) {
        clearTimeout(timer);
        sock.destroy();
        resolve(out);
      }
    });
    sock.write(Buffer.concat(msgs.map(framed)));
  });
}

/** Sends each message over UDP from one socket; the answers that came within `waitMs`. */
async function udpExchange(
  at: { host: string; port: number },
  msgs: Buffer[],
  waitMs = 1000,
): Promise<Buffer[]> {
  const sock = createSocket('udp4');
  const out: Buffer[] = [];
  sock.on('message', (m) => out.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  for (const m of msgs) sock.send(m, at.port, at.host);
  await sleep(waitMs);
  sock.close();
  return out;
}

/** A client that sends a length prefix and then one byte every `everyMs`, never finishing. */
function trickle(sock: Socket, everyMs: number): () => void {
  sock.on('error', () => {});
  sock.write(Buffer.from([0, 40]));
  const t = setInterval(() => {
    if (!sock.destroyed) sock.write(Buffer.from([0]));
  }, everyMs);
  return () => {
    clearInterval(t);
    sock.destroy();
  };
}

const closed = (s: Socket, ms: number) =>
  new Promise<boolean>((r) => {
    if (s.destroyed) return r(true);
    const t = setTimeout(() => r(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      r(true);
    });
  });

describe('DNS over TCP against hostile clients', () => {
  it('answers 100 pipelined TCP queries in full under strict RRL, while UDP stays limited', async () => {
    const { server, at } = await start('127.45.1.1', { rrl: { responsesPerSecond: 1, slip: 2 } });
    const answers = await tcpExchange(
      at,
      Array.from({ length: 100 }, (_, i) => message(i, WEB)),
    );
    expect(answers).toHaveLength(100);
    for (const [i, a] of answers.entries()) {
      expect(header(a)).toMatchObject({ id: i, qr: true, tc: false, rcode: 0, aa: true });
      expect(header(a).ancount).toBeGreaterThan(0);
    }
    // UDP from the same client is still limited: slipped (TC=1, empty) or dropped.
    const udp = await udpExchange(
      at,
      Array.from({ length: 30 }, (_, i) => message(1000 + i, WEB)),
    );
    const full = udp.filter((m) => !header(m).tc && header(m).ancount > 0).length;
    expect(full).toBeLessThan(30);
    const s = server.rrl.stats();
    expect(s.slipped + s.dropped).toBeGreaterThanOrEqual(30 - full);
  });

  it('gives dig, slipped a truncated UDP answer by RRL, the whole answer over TCP', async () => {
    const { server, at } = await start('127.45.1.2', { rrl: { responsesPerSecond: 1, slip: 1 } });
    // Spend the bucket: every further UDP answer to this client and name slips.
    await udpExchange(
      at,
      Array.from({ length: 5 }, (_, i) => message(i, WEB)),
      300,
    );
    const r = await dig(at, [WEB, 'A']);
    expect(server.rrl.stats().slipped).toBeGreaterThan(0);
    expect(r.retriedOverTcp).toBe(true);
    expect(r.status).toBe('NOERROR');
    expect(r.flags).toContain('aa');
    expect(r.flags).not.toContain('tc');
    expect(r.answers.length).toBeGreaterThan(0);
  });

  it('cuts a TCP message trickled past dns.tcp.ioTimeout, and one that never finishes, and counts them', async () => {
    const { server, at } = await start('127.45.2.1', {
      tcp: { ioTimeout: '300ms', idleTimeout: '30s' },
    });
    // One byte every 100 ms: the idle timeout never fires, only the message deadline.
    const slow = await connected(at);
    const stopSlow = trickle(slow, 100);
    // A length prefix of 65,535 and a few bytes, then silence.
    const huge = await connected(at);
    huge.on('error', () => {});
    huge.write(Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(100)]));
    try {
      expect(await closed(slow, 5000)).toBe(true);
      expect(await closed(huge, 5000)).toBe(true);
      await waitFor(() => server.tcpClosed.get('io_timeout') === 2, 5000, 'two io_timeout cuts');
      // A client that sends whole queries is unaffected.
      const [a] = await tcpExchange(at, [message(7, WEB)]);
      expect(header(a!)).toMatchObject({ id: 7, rcode: 0 });
    } finally {
      stopSlow();
      huge.destroy();
    }
  });

  it('lets a fresh TCP query through when trickling clients outnumber dns.tcp.maxConnections', async () => {
    // A message deadline far off: only the connection table's policy can help here.
    const { server, at } = await start('127.45.3.1', {
      tcp: { ioTimeout: '60s', idleTimeout: '60s', maxConnections: 4 },
    });
    const stops: (() => void)[] = [];
    try {
      for (let i = 0; i < 8; i++) stops.push(trickle(await connected(at), 200));
      await sleep(300);
      const [a] = await tcpExchange(at, [message(9, WEB)]);
      expect(header(a!)).toMatchObject({ id: 9, qr: true, rcode: 0 });
      expect(server.tcpClosed.get('evicted')).toBeGreaterThanOrEqual(5);
    } finally {
      for (const stop of stops) stop();
    }
  });

  it('answers an unknown opcode NOTIMP, with or without a question, and sets AA on no error', async () => {
    const { at } = await start('127.45.4.1', {});
    const replies = await udpExchange(
      at,
      [
        message(1, undefined, 3), // unassigned opcode, no question
        message(2, WEB, 15), // unassigned opcode, a question
        message(3, undefined, 0), // QUERY without a question
        message(4, 'example.com'), // not ours
        message(5, 'nope.svc.clusterset.local'), // ours, absent
        message(6, WEB), // ours
      ],
      500,
    );
    const byId = new Map(replies.map((r) => [header(r).id, header(r)]));
    expect(byId.get(1)).toMatchObject({ qr: true, opcode: 3, rcode: 4, aa: false });
    expect(byId.get(2)).toMatchObject({ qr: true, opcode: 15, rcode: 4, aa: false });
    expect(byId.get(3)).toMatchObject({ rcode: 1, aa: false });
    expect(byId.get(4)).toMatchObject({ rcode: 5, aa: false });
    expect(byId.get(5)).toMatchObject({ rcode: 3, aa: true });
    expect(byId.get(6)).toMatchObject({ rcode: 0, aa: true });
  });

  it('keeps what it buffers for a client that never reads bounded, and cuts it', async () => {
    const { server, at } = await start('127.45.5.1', {
      maxAnswers: 64,
      tcp: { ioTimeout: '1s', idleTimeout: '60s' },
    });
    // 40,000 pipelined queries whose answers are ~20 times their size; never a read.
    const sock = await connected(at);
    sock.on('error', () => {});
    const one = framed(message(1, WEB));
    const flood = Buffer.concat(Array.from({ length: 40_000 }, () => one));
    sock.write(flood);
    let most = 0;
    const LIMIT = 256 * 1024;
    try {
      await waitFor(
        () => {
          most = Math.max(most, server.tcpBuffered());
          return server.tcpClosed.get('write_timeout') === 1 || most > LIMIT;
        },
        20_000,
        'the non-reading client cut',
        5,
      );
      // One high-water mark plus one answer, not the 40,000 answers (~45 MB).
      expect(most).toBeLessThanOrEqual(LIMIT);
      expect(server.tcpClosed.get('write_timeout')).toBe(1);
      expect(server.responder.stats.queries).toBeLessThan(40_000);
    } finally {
      sock.destroy();
    }
  });
});
