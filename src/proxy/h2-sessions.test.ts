import { EventEmitter } from 'node:events';
import { constants, type ServerHttp2Session } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { guardSession, noteClientReset, PREMATURE_RESET_SECONDS } from './h2-sessions.ts';
import type { ConnectionCloseReason, ProxyObserver } from './observer.ts';

/** A session as the guard sees it: stream events, GOAWAY and destroy recorded. */
class FakeSession extends EventEmitter {
  destroyed = false;
  goaways: number[] = [];
  goaway(code: number): void {
    this.goaways.push(code);
  }
  destroy(): void {
    this.destroyed = true;
  }
}

function guarded(limit: number) {
  const fake = new FakeSession();
  const session = fake as unknown as ServerHttp2Session;
  const seen = { resets: 0, closed: [] as ConnectionCloseReason[] };
  const observer: ProxyObserver = {
    request: () => {},
    retry: () => {},
    http2StreamReset: () => seen.resets++,
    connectionClosed: (reason) => seen.closed.push(reason),
  };
  guardSession(session, { prematureResetStreams: limit }, () => observer);
  /** One stream opened and closed; reset by the client `age` seconds in, or answered. */
  const stream = (reset?: number) => {
    const s = new EventEmitter();
    fake.emit('stream', s);
    if (reset !== undefined) noteClientReset(session, reset);
    s.emit('close');
  };
  return { fake, seen, stream };
}

describe('the HTTP/2 rapid-reset guard', () => {
  it('closes with GOAWAY ENHANCE_YOUR_CALM at half the limit in premature resets', async () => {
    const { fake, seen, stream } = guarded(20);
    for (let i = 0; i < 9; i++) stream(0);
    expect(fake.goaways).toEqual([]);
    stream(0);
    expect(fake.goaways).toEqual([constants.NGHTTP2_ENHANCE_YOUR_CALM]);
    expect(seen).toEqual({ resets: 10, closed: ['premature_resets'] });
    await new Promise((r) => setImmediate(r));
    expect(fake.destroyed).toBe(true);
  });

  it('past the limit, closes once half of all streams were premature, not before', () => {
    const { fake, seen, stream } = guarded(20);
    for (let i = 0; i < 30; i++) stream();
    // 39 streams, 9 premature: under half of the limit and of the streams.
    for (let i = 0; i < 9; i++) stream(0);
    expect(fake.goaways).toEqual([]);
    // Resets that come late are not premature: counted, never held against the connection.
    for (let i = 0; i < 30; i++) stream(PREMATURE_RESET_SECONDS);
    expect(fake.goaways).toEqual([]);
    expect(seen.resets).toBe(39);
    // 69 streams closed, 9 premature: closed at the premature reset that makes half,
    // the 50th more (59 premature, 118 streams closed but this one).
    let more = 0;
    while (fake.goaways.length === 0 && more < 200) {
      stream(0);
      more++;
    }
    expect(more).toBe(50);
    expect(seen.closed).toEqual(['premature_resets']);
  });

  it('never closes with a limit of 0, and ignores streams closed by the session ending', () => {
    const off = guarded(0);
    for (let i = 0; i < 100; i++) off.stream(0);
    expect(off.fake.goaways).toEqual([]);
    const ending = guarded(4);
    ending.fake.destroyed = true;
    for (let i = 0; i < 10; i++) ending.stream(0);
    expect(ending.seen).toEqual({ resets: 0, closed: [] });
  });
});
