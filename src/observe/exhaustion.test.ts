import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FedgateError } from '../errors.ts';
import {
  acceptReserve,
  descriptorLimit,
  EXHAUSTED_RESOURCES,
  ExhaustionTracker,
  exhaustionCode,
  guardAccept,
  isDescriptorExhaustion,
} from './exhaustion.ts';
import { Metrics } from './metrics.ts';
import { mergeMetrics } from './metrics-merge.ts';

interface Line {
  level: number;
  msg: string;
  resource?: string;
  code?: string;
  suppressed?: number;
  total?: number;
}

function capture(): { lines: Line[]; log: pino.Logger } {
  const lines: Line[] = [];
  const log = pino(
    { level: 'debug', base: null },
    { write: (l: string) => void lines.push(JSON.parse(l) as Line) },
  );
  return { lines, log };
}

function errno(code: string, syscall = 'connect'): NodeJS.ErrnoException {
  return Object.assign(new Error(`${syscall} ${code}`), { code, syscall });
}

describe('isDescriptorExhaustion', () => {
  it('is EMFILE and ENFILE, on the error or down its cause chain', () => {
    expect(isDescriptorExhaustion(errno('EMFILE'))).toBe(true);
    expect(isDescriptorExhaustion(errno('ENFILE', 'accept'))).toBe(true);
    // undici's fetch: TypeError('fetch failed') caused by the socket's error.
    const fetchFailed = new TypeError('fetch failed', { cause: errno('EMFILE') });
    expect(isDescriptorExhaustion(fetchFailed)).toBe(true);
    // fedgate's own wrapping of that, one level further.
    const wrapped = new FedgateError('CLUSTER_UNREACHABLE', 'list failed', { cause: fetchFailed });
    expect(exhaustionCode(wrapped)).toBe('EMFILE');
    // Happy eyeballs: one AggregateError for every address tried.
    const aggregate = new AggregateError([errno('ECONNREFUSED'), errno('ENFILE')], 'all failed');
    expect(exhaustionCode(aggregate)).toBe('ENFILE');
    expect(isDescriptorExhaustion(new FedgateError('RESOURCE_EXHAUSTED', 'ours'))).toBe(true);
  });

  it('is nothing else: not memory (ENOBUFS, ENOMEM), not connect failures, not non-errors', () => {
    for (const code of ['ENOBUFS', 'ENOMEM', 'ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET']) {
      expect(isDescriptorExhaustion(errno(code)), code).toBe(false);
    }
    expect(isDescriptorExhaustion(new TypeError('fetch failed', { cause: errno('ENOBUFS') }))).toBe(
      false,
    );
    for (const v of [undefined, null, 'EMFILE', 24, {}])
      expect(isDescriptorExhaustion(v)).toBe(false);
  });

  it('follows a cyclic cause chain once', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isDescriptorExhaustion(a)).toBe(false);
  });
});

describe('descriptorLimit and acceptReserve', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedgate-limits-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the soft limit from a /proc/self/limits file', () => {
    const file = join(dir, 'limits');
    writeFileSync(
      file,
      [
        'Limit                     Soft Limit           Hard Limit           Units     ',
        'Max processes             63412                63412                processes ',
        'Max open files            256                  4096                 files     ',
        '',
      ].join('\n'),
    );
    expect(descriptorLimit(file)).toBe(256);
    writeFileSync(
      file,
      'Max open files            unlimited            unlimited            files\n',
    );
    expect(descriptorLimit(file)).toBeUndefined();
    expect(descriptorLimit(join(dir, 'absent'))).toBeUndefined();
  });

  it('keeps a sixteenth of the limit, between 32 and 1024, at most a quarter of a small one', () => {
    expect(acceptReserve(64)).toBe(16);
    expect(acceptReserve(256)).toBe(32);
    expect(acceptReserve(1024)).toBe(64);
    expect(acceptReserve(65_536)).toBe(1024);
    expect(acceptReserve(1_048_576)).toBe(1024);
    expect(acceptReserve(2)).toBe(1);
  });

  it('admits descriptors below the reserve only; everything without a known limit', () => {
    const { log } = capture();
    const t = new ExhaustionTracker({ log, descriptorLimit: 256 });
    expect(t.reserve).toBe(32);
    expect(t.admits(223)).toBe(true);
    expect(t.admits(224)).toBe(false);
    expect(t.admits(-1)).toBe(true); // no descriptor number (not Unix)
    const unknown = new ExhaustionTracker({ log, descriptorLimit: undefined });
    expect(unknown.reserve).toBe(0);
    expect(unknown.admits(1_000_000)).toBe(true);
  });
});

describe('ExhaustionTracker', () => {
  it('counts every note and logs one line per resource a minute, with how many it held back', () => {
    let now = 1_000_000;
    const { lines, log } = capture();
    const t = new ExhaustionTracker({ log, now: () => now, descriptorLimit: 256 });
    const err = errno('EMFILE');
    // A burst: 100 notes over 50 seconds, one line.
    for (let i = 0; i < 100; i++) {
      t.note('upstream_connect', err);
      now += 500;
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 50,
      resource: 'upstream_connect',
      code: 'EMFILE',
      suppressed: 0,
      total: 1,
    });
    expect(lines[0]!.msg).toMatch(/^out of file descriptors: .*503 RESOURCE_EXHAUSTED/);
    // Another resource has its own minute.
    t.note('watch', new TypeError('fetch failed', { cause: errno('ENFILE') }));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ resource: 'watch', code: 'ENFILE', suppressed: 0 });
    // 59.999 s after the first line: still held back; at 60 s, the next line says how many were.
    now = 1_000_000 + 59_999;
    t.note('upstream_connect', err);
    expect(lines).toHaveLength(2);
    now = 1_000_000 + 60_000;
    t.note('upstream_connect', err);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ resource: 'upstream_connect', suppressed: 100, total: 102 });
    // Quiet for longer than a minute: the next one logs at once, nothing held back.
    now += 10 * 60_000;
    t.note('upstream_connect', err);
    expect(lines[3]).toMatchObject({ suppressed: 0, total: 103 });
    expect(Object.fromEntries(t.counts())).toEqual({ upstream_connect: 103, watch: 1 });
  });

  it('names what happens for every resource', () => {
    const { lines, log } = capture();
    const t = new ExhaustionTracker({ log, descriptorLimit: undefined });
    for (const r of EXHAUSTED_RESOURCES) t.note(r, errno('EMFILE'));
    expect(lines.map((l) => l.resource)).toEqual([...EXHAUSTED_RESOURCES]);
    expect(new Set(lines.map((l) => l.msg)).size).toBe(EXHAUSTED_RESOURCES.length);
  });
});

describe('guardAccept', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function listening(): Promise<{ server: Server; port: number; served: number[] }> {
    const served: number[] = [];
    const s = createServer((socket) => {
      // As DNS does: the guard ran first, and a shed socket is already destroyed.
      if (socket.destroyed) return;
      served.push(1);
      socket.end('hello');
    });
    server = s;
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const at = s.address();
    return { server: s, port: typeof at === 'object' && at ? at.port : 0, served };
  }

  function exchange(port: number): Promise<string> {
    return new Promise((resolve) => {
      const c = connect(port, '127.0.0.1');
      let got = '';
      c.on('data', (d) => {
        got += d.toString();
      });
      c.on('error', () => resolve(`error:${got}`));
      c.on('close', () => resolve(got));
    });
  }

  it('closes a connection on a reserved descriptor before the server sees it, counted', async () => {
    const { lines, log } = capture();
    // A limit of 1 reserves every descriptor: each connection is shed.
    const t = new ExhaustionTracker({ log, descriptorLimit: 1 });
    const { server: s, port, served } = await listening();
    guardAccept(s, 'dns_tcp_accept', t, log);
    expect(await exchange(port)).not.toBe('hello');
    expect(await exchange(port)).not.toBe('hello');
    expect(served).toEqual([]);
    expect(t.counts().get('dns_tcp_accept')).toBe(2);
    expect(lines.filter((l) => l.resource === 'dns_tcp_accept')).toHaveLength(1);
    expect(s.listening).toBe(true);
  });

  it('lets connections through while the reserve is free', async () => {
    const { log } = capture();
    const t = new ExhaustionTracker({ log, descriptorLimit: 1_000_000 });
    const { server: s, port, served } = await listening();
    guardAccept(s, 'http_accept', t, log);
    expect(await exchange(port)).toBe('hello');
    expect(served).toHaveLength(1);
    expect(t.counts().size).toBe(0);
  });

  it("handles the server's 'error' events: exhaustion counted, anything else logged, still listening", async () => {
    const { lines, log } = capture();
    const t = new ExhaustionTracker({ log, descriptorLimit: undefined });
    const { server: s, port } = await listening();
    guardAccept(s, 'http_accept', t, log);
    // What Node's onconnection emits when libuv reports a failed accept.
    s.emit('error', errno('EMFILE', 'accept'));
    s.emit('error', errno('ECONNABORTED', 'accept'));
    expect(t.counts().get('http_accept')).toBe(1);
    expect(lines.some((l) => l.msg === 'listener error; still listening')).toBe(true);
    expect(s.listening).toBe(true);
    expect(await exchange(port)).toBe('hello');
  });
});

describe('fedgate_resource_exhausted_total', () => {
  it('is exported by resource, every one from 0, and summed across processes', async () => {
    const { log } = capture();
    const one = new ExhaustionTracker({ log, descriptorLimit: undefined });
    const two = new ExhaustionTracker({ log, descriptorLimit: undefined });
    one.note('watch', errno('EMFILE'));
    one.note('health_probe', errno('EMFILE'));
    two.note('http_accept', errno('EMFILE'));
    two.note('watch', errno('EMFILE'));
    for (let i = 0; i < 3; i++) two.note('upstream_connect', errno('EMFILE'));
    // Registered ahead of the worker/primary split: both kinds of registry have it.
    const a = new Metrics({ worker: '0', exhaustion: one });
    const b = new Metrics({ worker: '1', exhaustion: two });
    const own = await a.registry.metrics();
    expect(own).toContain('# TYPE fedgate_resource_exhausted_total counter');
    expect(own).toContain('fedgate_resource_exhausted_total{resource="watch"} 1');
    const text = await mergeMetrics([await a.json(), await b.json()], a.registry.contentType);
    expect(text).toContain('fedgate_resource_exhausted_total{resource="watch"} 2');
    expect(text).toContain('fedgate_resource_exhausted_total{resource="health_probe"} 1');
    expect(text).toContain('fedgate_resource_exhausted_total{resource="http_accept"} 1');
    expect(text).toContain('fedgate_resource_exhausted_total{resource="upstream_connect"} 3');
    // Every resource is there from 0, so the first exhaustion is an increase.
    expect(text).toContain('fedgate_resource_exhausted_total{resource="dns_tcp_accept"} 0');
  });
});
