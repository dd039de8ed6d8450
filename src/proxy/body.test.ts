import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { IdleBody, RequestBodyIdle } from './body.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('IdleBody', () => {
  it('passes the body through in order and ends with it', async () => {
    const req = new PassThrough();
    const body = new IdleBody(req, 1000, () => {});
    req.write('ab');
    setTimeout(() => req.end('cd'), 10);
    const chunks: string[] = [];
    for await (const c of body) chunks.push(c.toString());
    expect(chunks.join('')).toBe('abcd');
  });

  it('gives up after idleMs without bytes while waiting for them, once', async () => {
    const req = new PassThrough();
    let idle = 0;
    const body = new IdleBody(req, 50, () => idle++);
    req.write('x');
    expect((await body.next()).value?.toString()).toBe('x');
    await expect(body.next()).rejects.toBeInstanceOf(RequestBodyIdle);
    expect(idle).toBe(1);
    await expect(body.next()).rejects.toBeInstanceOf(RequestBodyIdle);
    expect(idle).toBe(1);
  });

  it('does not count time the reader is busy elsewhere (the upstream taking the body)', async () => {
    const req = new PassThrough();
    let idle = 0;
    const body = new IdleBody(req, 30, () => idle++);
    req.write('x');
    await body.next();
    await sleep(100);
    req.end('y');
    expect((await body.next()).value?.toString()).toBe('y');
    expect((await body.next()).done).toBe(true);
    expect(idle).toBe(0);
  });

  it('never destroys the request when the reader stops early, and close() ends a waiting read', async () => {
    const req = new PassThrough();
    const body = new IdleBody(req, 1000, () => {});
    const waiting = body.next();
    body.close();
    expect((await waiting).done).toBe(true);
    await body.return();
    expect(req.destroyed).toBe(false);
  });
});
