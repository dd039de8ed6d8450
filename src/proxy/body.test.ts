import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { IdleBody, REPLAY_LIMIT, RequestBodyIdle } from './body.ts';

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

  it('keeps what it gave for a refused try, which the next body gives first, then the rest', async () => {
    const req = new PassThrough();
    const first = new IdleBody(req, 1000, () => {}, [], true);
    req.write('ab');
    expect((await first.next()).value?.toString()).toBe('ab');
    const replay = first.replayable();
    expect(replay?.map(String)).toEqual(['ab']);
    first.close();
    const second = new IdleBody(req, 1000, () => {}, replay, true);
    setTimeout(() => req.end('cd'), 10);
    const chunks: string[] = [];
    for await (const c of second) chunks.push(c.toString());
    expect(chunks.join('')).toBe('abcd');
  });

  it('keeps nothing past REPLAY_LIMIT, when not asked to, or once the backend answered', async () => {
    const big = new PassThrough();
    const body = new IdleBody(big, 1000, () => {}, [], true);
    big.write(Buffer.alloc(REPLAY_LIMIT + 1));
    await body.next();
    expect(body.replayable()).toBeUndefined();
    const plain = new PassThrough();
    const unkept = new IdleBody(plain, 1000, () => {});
    plain.write('x');
    await unkept.next();
    expect(unkept.replayable()).toBeUndefined();
    const answered = new PassThrough();
    const forgotten = new IdleBody(answered, 1000, () => {}, [], true);
    answered.write('x');
    await forgotten.next();
    forgotten.forget();
    expect(forgotten.replayable()).toBeUndefined();
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
