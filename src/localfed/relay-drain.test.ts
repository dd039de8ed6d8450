import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HeldRequests } from './relay-drain.ts';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** A loopback server whose every request goes to `held`; returns its URL. */
async function holding(held: HeldRequests): Promise<string> {
  const server = createServer((req, res) => held.hold(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  close = () => {
    held.cut();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function fetchText(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', body }),
      );
    }).on('error', reject);
  });
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('HeldRequests', () => {
  it('answers a request held past its limit with a 503 Status', async () => {
    const held = new HeldRequests(200);
    const url = await holding(held);
    const answer = await fetchText(`${url}/api/v1/services`);
    expect(answer.status).toBe(503);
    expect(answer.type).toBe('application/json');
    expect(JSON.parse(answer.body)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the API server did not become ready within 0.2 s; try again later',
      reason: 'ServiceUnavailable',
      code: 503,
    });
    expect(held.size).toBe(0);
  });

  it('forwards what it held, in arrival order, with the body unread', async () => {
    const held = new HeldRequests(60_000);
    const url = await holding(held);
    const a = fetchText(`${url}/a`);
    await until(() => held.size === 1);
    const b = fetchText(`${url}/b`);
    await until(() => held.size === 2);
    const order: string[] = [];
    held.release((req: IncomingMessage, res: ServerResponse) => {
      order.push(req.url ?? '');
      res.end(`forwarded ${req.url}`);
    });
    expect(order).toEqual(['/a', '/b']);
    expect((await a).body).toBe('forwarded /a');
    expect((await b).body).toBe('forwarded /b');
    expect(held.size).toBe(0);
  });

  it('forgets a client that gave up', async () => {
    const held = new HeldRequests(60_000);
    const url = await holding(held);
    const req = get(`${url}/watch`);
    req.on('error', () => {});
    await until(() => held.size === 1);
    req.destroy();
    await until(() => held.size === 0);
  });
});
