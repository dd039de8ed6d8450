// The sample backends against real clients on loopback: what fedgate's proxy tests
// rely on (echo, bytes, status, delay, reset, failure modes, WebSocket echo).
import { get as httpGet } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Backend, type PodInfo } from './backends.ts';

const MiB = 2 ** 20;

function pod(n: number, ports: number[]): PodInfo {
  return {
    cluster: 'alpha',
    region: 'us-east',
    zone: 'us-east-a',
    node: 'alpha-node-1',
    pod: `web-${n}`,
    namespace: 'shop',
    service: 'web',
    ip: `127.250.0.${n}`,
    ports,
  };
}

const b = new Backend(pod(1, [18080, 18081]));
const base = 'http://127.250.0.1:18080';
const agent = new Agent();

beforeAll(() => b.start());
afterEach(() => {
  b.mode = 'ok';
  b.healthy = true;
});
afterAll(async () => {
  await agent.close();
  await b.stop();
});

async function get(path: string, init: Parameters<typeof request>[1] = {}) {
  const res = await request(`${base}${path}`, { dispatcher: agent, ...init });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** The error a request fails with, or a failure if it does not. */
async function failure(url: string): Promise<NodeJS.ErrnoException> {
  try {
    const res = await request(url, { dispatcher: agent });
    await res.body.dump();
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  throw new Error(`${url} answered`);
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// A full GC now and then keeps garbage buffers out of the RSS being measured.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Reads a body to the end; returns its length and the highest RSS seen meanwhile. */
async function drain(body: AsyncIterable<Buffer>, check?: (c: Buffer) => void) {
  let length = 0;
  let peak = process.memoryUsage.rss();
  for await (const c of body) {
    check?.(c);
    length += c.length;
    if (length % (16 * MiB) < c.length) {
      gc();
      peak = Math.max(peak, process.memoryUsage.rss());
    }
  }
  return { length, peak };
}

function baselineRss(): number {
  gc();
  return process.memoryUsage.rss();
}

describe('ordinary answers', () => {
  it('name where they run and echo the request, headers included', async () => {
    const before = b.requests;
    const res = await get('/some/path?x=1', {
      headers: { 'x-forwarded-for': '127.11.2.3', forwarded: 'for=127.11.2.3;proto=https' },
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({
      cluster: 'alpha',
      region: 'us-east',
      zone: 'us-east-a',
      node: 'alpha-node-1',
      pod: 'web-1',
      namespace: 'shop',
      service: 'web',
      ip: '127.250.0.1',
      address: '127.250.0.1:18080',
      method: 'GET',
      host: '127.250.0.1:18080',
      path: '/some/path?x=1',
      headers: expect.objectContaining({
        host: '127.250.0.1:18080',
        'x-forwarded-for': '127.11.2.3',
        forwarded: 'for=127.11.2.3;proto=https',
      }),
    });
    expect(b.requests).toBe(before + 1);
    const other = await request('http://127.250.0.1:18081/', { dispatcher: agent });
    expect(await other.body.json()).toMatchObject({ address: '127.250.0.1:18081' });
  });

  it('/healthz follows `healthy` and is not counted', async () => {
    const before = b.requests;
    expect((await get('/healthz')).status).toBe(200);
    b.healthy = false;
    const res = await get('/healthz?verbose=1');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text)).toEqual({ status: 'failing', pod: 'web-1' });
    expect(b.requests).toBe(before);
  });
});

describe('/echo', () => {
  it('sends a sized body back with the same length and content type', async () => {
    const body = JSON.stringify({ hello: 'world' });
    const res = await get('/echo', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(res.status).toBe(200);
    expect(res.text).toBe(body);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(res.headers['transfer-encoding']).toBeUndefined();
  });

  it('sends a streamed body back chunked', async () => {
    async function* parts() {
      yield Buffer.from('one,');
      await new Promise((r) => setTimeout(r, 20));
      yield Buffer.from('two');
    }
    const res = await get('/echo', { method: 'PUT', body: Readable.from(parts()) });
    expect(res.text).toBe('one,two');
    expect(res.headers['transfer-encoding']).toBe('chunked');
  });

  it('GET /echo is an ordinary answer', async () => {
    expect(JSON.parse((await get('/echo')).text)).toMatchObject({ method: 'GET', path: '/echo' });
  });

  it('streams 128 MiB through without holding it', async () => {
    const size = 128 * MiB;
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    async function* upload() {
      for (let sent = 0; sent < size; sent += chunk.length) yield chunk;
    }
    const before = baselineRss();
    const res = await request(`${base}/echo`, {
      dispatcher: agent,
      method: 'POST',
      body: Readable.from(upload()),
      headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' },
    });
    expect(res.headers['content-length']).toBe(String(size));
    let wrong = 0;
    const { length, peak } = await drain(res.body, (c) => {
      if (!c.equals(chunk.subarray(0, c.length))) wrong++;
    });
    expect(length).toBe(size);
    expect(wrong).toBe(0);
    expect(peak - before).toBeLessThan(64 * MiB);
  });
});

describe('/bytes/N', () => {
  it('sends N bytes, byte k being k mod 256', async () => {
    const n = 200_000; // not a multiple of the 64 KiB chunk
    const res = await request(`${base}/bytes/${n}`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-length']).toBe(String(n));
    const bytes = Buffer.from(await res.body.arrayBuffer());
    expect(bytes.length).toBe(n);
    expect(bytes.every((x, k) => x === k % 256)).toBe(true);
  });

  it('HEAD sends only the headers, up to 2^40', async () => {
    const res = await get(`/bytes/${2 ** 40}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(2 ** 40));
    expect(res.text).toBe('');
    expect((await get(`/bytes/${2 ** 40 + 1}`)).status).toBe(400);
    expect((await get('/bytes/0')).headers['content-length']).toBe('0');
  });

  it('streams 128 MiB without holding it', async () => {
    const size = 128 * MiB;
    const before = baselineRss();
    const res = await request(`${base}/bytes/${size}`, { dispatcher: agent });
    const { length, peak } = await drain(res.body);
    expect(length).toBe(size);
    expect(peak - before).toBeLessThan(64 * MiB);
  });
});

describe('/status/CODE', () => {
  it('answers with the code, JSON like the ordinary answer', async () => {
    const before = b.requests;
    for (const code of [200, 302, 418, 500, 503, 599]) {
      const res = await get(`/status/${code}`);
      expect(res.status).toBe(code);
      expect(JSON.parse(res.text)).toMatchObject({
        pod: 'web-1',
        path: `/status/${code}`,
        status: code,
      });
    }
    expect(b.requests).toBe(before + 6);
  });

  it('sends no body with 204, 205 and 304', async () => {
    for (const code of [204, 205, 304]) {
      const res = await get(`/status/${code}`);
      expect(res.status).toBe(code);
      expect(res.text).toBe('');
    }
  });

  it('sends 102 and 103 as interim answers before a final 200', async () => {
    for (const code of [102, 103]) {
      const seen: number[] = [];
      const final = await new Promise<number>((resolve, reject) => {
        httpGet(`${base}/status/${code}`, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
          .on('information', (info) => seen.push(info.statusCode))
          .on('error', reject);
      });
      expect(seen).toEqual([code]);
      expect(final).toBe(200);
    }
  });

  it('refuses codes outside 100 < CODE < 600, 101, and unassigned 1xx', async () => {
    for (const code of [99, 100, 101, 150, 600, 1000]) {
      expect((await get(`/status/${code}`)).status).toBe(400);
    }
  });
});

describe('/delay/MS', () => {
  it('answers after MS milliseconds', async () => {
    const start = performance.now();
    const res = await get('/delay/200');
    expect(performance.now() - start).toBeGreaterThanOrEqual(195);
    expect(JSON.parse(res.text)).toMatchObject({ pod: 'web-1', path: '/delay/200' });
  });

  // White-box, as neither is visible on the wire: watch the backend's timer calls.
  it('caps MS at 60 000 and clears its timer when the client goes away', async () => {
    const set = vi.spyOn(globalThis, 'setTimeout');
    const clear = vi.spyOn(globalThis, 'clearTimeout');
    const abort = new AbortController();
    const pending = request(`${base}/delay/3600000`, { dispatcher: agent, signal: abort.signal })
      .then(() => 'answered')
      .catch(() => 'aborted');
    try {
      const armed = () => set.mock.calls.findIndex((c) => c[1] === 60_000);
      await until(() => armed() >= 0, 'a 60 s timer');
      const timer = set.mock.results[armed()]!.value;
      expect(clear).not.toHaveBeenCalledWith(timer);
      abort.abort();
      expect(await pending).toBe('aborted');
      await until(() => clear.mock.calls.some((c) => c[0] === timer), 'the timer to be cleared');
    } finally {
      abort.abort();
      set.mockRestore();
      clear.mockRestore();
    }
  });
});

describe('the conformance backend conventions (echo-basic)', () => {
  it('?delay=DURATION answers after it, with the query in path', async () => {
    const start = performance.now();
    const res = await get('/any?delay=200ms');
    expect(performance.now() - start).toBeGreaterThanOrEqual(195);
    expect([res.status, JSON.parse(res.text).path]).toEqual([200, '/any?delay=200ms']);
    expect((await get('/any?delay=soon')).status).toBe(400);
  });

  it('X-Echo-Set-Header sets the answer headers it names', async () => {
    const res = await get('/', { headers: { 'x-echo-set-header': 'X-Foo:1,x-foo:2, X-Bar: b' } });
    expect([res.headers['x-foo'], res.headers['x-bar']]).toEqual(['1,2', 'b']);
  });

  it('/retry/…: the first succeedAfter attempts of a uuid fail, as asked', async () => {
    const path = '/retry/x?uuid=backends-test&succeedAfter=2&responseCode=502';
    expect((await get(path)).status).toBe(502);
    expect((await get(path)).status).toBe(502);
    expect(JSON.parse((await get(path)).text)).toMatchObject({ pod: 'web-1' });
    // Without responseCode a failing attempt is a reset connection.
    expect(await failure(`${base}/retry/x?uuid=backends-test-reset&succeedAfter=1`)).toMatchObject({
      code: 'ECONNRESET',
    });
    expect((await get('/retry/x?succeedAfter=1')).status).toBe(400);
  });
});

describe('/reset', () => {
  it('resets the connection before any answer, and counts', async () => {
    const before = b.requests;
    expect(await failure(`${base}/reset`)).toMatchObject({ code: 'ECONNRESET' });
    expect(b.requests).toBe(before + 1);
    expect((await get('/')).status).toBe(200);
  });
});

describe('mode', () => {
  it('error503: every request but /healthz answers 503, all counted', async () => {
    b.mode = 'error503';
    const before = b.requests;
    for (const path of ['/', '/bytes/10', '/status/200']) {
      const res = await get(path);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.text)).toMatchObject({ pod: 'web-1', path, status: 503 });
    }
    expect((await get('/echo', { method: 'POST', body: 'x' })).status).toBe(503);
    expect((await get('/healthz')).status).toBe(200);
    expect(b.requests).toBe(before + 4);
  });

  it('reset: every request but /healthz is cut, all counted', async () => {
    b.mode = 'reset';
    const before = b.requests;
    expect(await failure(`${base}/`)).toMatchObject({ code: 'ECONNRESET' });
    expect(await failure(`${base}/status/200`)).toMatchObject({ code: 'ECONNRESET' });
    expect((await get('/healthz')).status).toBe(200);
    expect(b.requests).toBe(before + 2);
  });

  it('WebSocket upgrades fail in either mode, and count', async () => {
    for (const mode of ['error503', 'reset'] as const) {
      b.mode = mode;
      const before = b.requests;
      const ws = new WebSocket('ws://127.250.0.1:18080/chat');
      const code = await new Promise<number>((resolve) => {
        ws.onclose = (e) => resolve(e.code);
      });
      expect(code).toBe(1006);
      expect(b.requests).toBe(before + 1);
    }
  });
});

/** Opens a WebSocket and collects what it receives. */
async function openWebSocket(url: string) {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const received: (string | ArrayBuffer)[] = [];
  const waiting: (() => void)[] = [];
  ws.onmessage = (m) => {
    received.push(m.data as string | ArrayBuffer);
    waiting.shift()?.();
  };
  const closed = new Promise<CloseEvent>((resolve) => {
    ws.onclose = resolve;
  });
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const next = async () => {
    if (received.length === 0) await new Promise<void>((r) => waiting.push(r));
    return received.shift()!;
  };
  return { ws, next, closed };
}

describe('WebSocket', () => {
  it('says hello with where it runs, then echoes text and binary', async () => {
    const before = b.requests;
    const { ws, next, closed } = await openWebSocket('ws://127.250.0.1:18080/any/path');
    expect(JSON.parse((await next()) as string)).toEqual({
      pod: 'web-1',
      cluster: 'alpha',
      zone: 'us-east-a',
    });
    ws.send('hello there');
    expect(await next()).toBe('hello there');
    ws.send(new Uint8Array([0, 1, 2, 255]));
    expect(new Uint8Array((await next()) as ArrayBuffer)).toEqual(new Uint8Array([0, 1, 2, 255]));
    expect(b.requests).toBe(before + 1);
    ws.close();
    expect((await closed).code).toBe(1005);
  });
});

describe('stop', () => {
  it('closes WebSockets, streams and waiting requests promptly; start serves again', async () => {
    const s = new Backend(pod(2, [18082]));
    const url = 'http://127.250.0.2:18082';
    const own = new Agent();
    try {
      await s.start();
      const socket = await openWebSocket('ws://127.250.0.2:18082/');
      // Settled here so that their failures during stop() are not reported as unhandled.
      const delayed = request(`${url}/delay/60000`, { dispatcher: own }).then(
        () => 'answered',
        (e: Error) => e.name,
      );
      const stream = await request(`${url}/bytes/${2 ** 40}`, { dispatcher: own });
      const streamed = drain(stream.body).then(
        () => 'ended',
        (e: Error) => e.name,
      );
      await until(() => s.requests === 3, 'all three requests');

      const start = performance.now();
      await s.stop();
      expect(performance.now() - start).toBeLessThan(1_000);
      expect((await socket.closed).code).toBe(1001);
      expect(await delayed).not.toBe('answered');
      expect(await streamed).not.toBe('ended');
      const refused = await new Promise<string | undefined>((resolve) => {
        const c = connect(18082, '127.250.0.2');
        c.on('connect', () => resolve(undefined));
        c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code));
      });
      expect(refused).toBe('ECONNREFUSED');

      await s.start();
      const again = await request(`${url}/`, { dispatcher: own });
      expect(again.statusCode).toBe(200);
      await again.body.dump();
    } finally {
      await own.close();
      await s.stop();
    }
  });
});
