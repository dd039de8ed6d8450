// How a request leaves the attempt loop outside the retry table, against a fake
// upstream (test/fixtures/attempt-loop.ts): its client's share, the process out of
// descriptors, undici refusing the request itself, and the client going away.
import { afterEach, describe, expect, it } from 'vitest';
import {
  closeWorlds,
  errno,
  FakeCarrier,
  SVC,
  sleep,
  until,
  world,
} from '../../test/fixtures/attempt-loop.ts';
import { classify } from './failures.ts';
import type { Try } from './try.ts';

afterEach(closeWorlds);

describe('the attempt loop, ending', () => {
  it("refuses a client's requests past its share at once, counting waiting ones, and serves others", async () => {
    // Six endpoints × 1 slot, a share of a half: three places per client netblock.
    const w = world({ perTryTimeout: 1000 }, { perEndpoint: 1, pending: 10, share: 0.5 });
    const hog = Array.from({ length: 3 }, () => w.exchange('GET', undefined, '127.1.0.9'));
    const excess = w.exchange('GET', undefined, '127.1.0.200'); // the same /24
    expect(excess.carrier.tries).toHaveLength(0);
    expect(excess.carrier.answers.map((a) => a.code)).toEqual(['CLIENT_OVER_SHARE']);
    expect(w.requests.at(-1)).toMatchObject({ status: 429, outcome: 'rejected' });
    const other = w.exchange('GET', undefined, '127.2.0.1');
    expect(other.carrier.tries).toHaveLength(1);
    // A place comes back when the request is over, not before.
    hog[0]!.carrier.last.respond(200);
    await until(() => w.requests.length === 2);
    expect(w.exchange('GET', undefined, '127.1.0.9').carrier.tries).toHaveLength(1);
    expect(w.exchange('GET', undefined, '127.1.0.9').carrier.answers[0]?.code).toBe(
      'CLIENT_OVER_SHARE',
    );
  });

  it('answers RESOURCE_EXHAUSTED when no socket could be opened: no retry, no report', () => {
    const w = world();
    const { carrier } = w.exchange('GET');
    carrier.last.fail(errno('EMFILE', true));
    expect(carrier.tries).toHaveLength(1);
    expect(carrier.answers.map((a) => a.code)).toEqual(['RESOURCE_EXHAUSTED']);
    expect(w.reports).toEqual([]);
    expect(w.retried).toEqual([]);
    expect(w.requests.at(-1)).toMatchObject({ status: 503, cluster: '' });
  });

  it("classifies undici's refusals of the request itself, and anything thrown at dispatch, as the request's", () => {
    for (const code of [
      'UND_ERR_INVALID_ARG',
      'UND_ERR_NOT_SUPPORTED',
      'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
    ]) {
      expect(classify(errno(code)), code).toBe('request');
    }
    expect(classify(errno('ERR_ASSERTION'), true)).toBe('request');
    expect(classify(errno('ERR_ASSERTION'))).toBe('reset');
    // A pool closed under the try is fedgate's own doing, a connect failure the endpoint's.
    expect(classify(errno('UND_ERR_CLOSED'), true)).toBe('reset');
    expect(classify(errno('ECONNREFUSED', true), true)).toBe('connect');
  });

  it('answers 400 REQUEST_UNFORWARDABLE when undici refuses the request: no retry, no report, rejected', () => {
    const w = world();
    // Thrown inside dispatch(), before the request started, whatever the error's code.
    const refusing = new (class extends FakeCarrier {
      override send(t: Try): void {
        t.error(errno('ERR_ASSERTION'));
      }
    })();
    w.exchange('GET', refusing);
    // Refused later (undici queued it first): by the error's code.
    const { carrier } = w.exchange('GET');
    carrier.last.fail(
      Object.assign(new Error('duplicate host header'), { code: 'UND_ERR_INVALID_ARG' }),
    );
    for (const c of [refusing, carrier]) {
      expect(c.answers.map((a) => a.code)).toEqual(['REQUEST_UNFORWARDABLE']);
    }
    expect(carrier.tries).toHaveLength(1);
    expect(carrier.answers[0]!.detail).toContain('duplicate host header');
    expect(w.reports).toEqual([]);
    expect(w.retried).toEqual([]);
    expect(w.requests.map((r) => [r.status, r.outcome, r.service])).toEqual([
      [400, 'rejected', SVC.key],
      [400, 'rejected', SVC.key],
    ]);
  });

  it('stops when the client goes away: the try is aborted and nothing is answered', () => {
    const w = world();
    const { ex, carrier } = w.exchange('GET');
    expect(ex.cancel()).toBe(true);
    expect(carrier.tries[0]!.aborted?.message).toBe('client went away');
    expect(carrier.tries).toHaveLength(1);
    expect(carrier.answers).toEqual([]);
    // The slot is free again, and the request counted once: client_cancelled, 499,
    // at the endpoint it waited on, with no served tier.
    expect(w.upstreams.outstanding(carrier.tries[0]!.t.target.id)).toBe(0);
    const target = carrier.tries[0]!.t.target;
    expect(w.requests).toEqual([
      expect.objectContaining({
        outcome: 'client_cancelled',
        status: 499,
        cluster: target.cluster,
        tier: '',
      }),
    ]);
    expect(ex.cancel()).toBe(false);
    expect(w.requests).toHaveLength(1);
  });

  it('counts a request answered whole once, whatever the client does after', () => {
    const w = world();
    const { ex, carrier } = w.exchange('GET');
    carrier.last.respond(200);
    expect(ex.cancel()).toBe(false);
    expect(w.requests.map((r) => r.outcome)).toEqual(['relayed']);
  });

  it('drops a request the client cancels from the pending queue', async () => {
    const w = world({ perTryTimeout: 1000 }, { perEndpoint: 1, pending: 1 });
    const busy = Array.from({ length: 6 }, () => w.exchange('GET'));
    const waiting = w.exchange('GET');
    expect(w.upstreams.pendingCount(SVC.key)).toBe(1);
    expect(waiting.ex.cancel()).toBe(true);
    await until(() => w.upstreams.pendingCount(SVC.key) === 0);
    busy[0]!.carrier.last.respond(200);
    await sleep(10);
    expect(waiting.carrier.tries).toHaveLength(0);
    expect(w.requests.filter((r) => r.outcome === 'client_cancelled')).toEqual([
      expect.objectContaining({ status: 499, cluster: '' }),
    ]);
  });
});
