// The attempt loop against a fake upstream (test/fixtures/attempt-loop.ts): every
// row of the retry table in src/proxy/README.md, the retry budget, the per-try
// timer, "another cluster first" and the pending queue.
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

afterEach(closeWorlds);

describe('the attempt loop', () => {
  it('classifies the six connect errors, on the error or its cause, and anything else as a reset', () => {
    for (const code of [
      'ECONNREFUSED',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'EADDRNOTAVAIL',
      'UND_ERR_CONNECT_TIMEOUT',
      'ENOTFOUND',
    ]) {
      expect(classify(errno(code)), code).toBe('connect');
      expect(classify(errno(code, true)), `${code} as cause`).toBe('connect');
    }
    for (const code of ['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE'])
      expect(classify(errno(code))).toBe('reset');
  });

  it('retries a failed connect, for any method, to another cluster, outside the budget', () => {
    const w = world({ minConcurrency: 0, budget: 0 });
    for (const method of ['GET', 'POST', 'PATCH']) {
      const { carrier } = w.exchange(method);
      carrier.last.fail(errno('ECONNREFUSED', true));
      expect(carrier.tries, method).toHaveLength(2);
      expect(carrier.tries[1]!.cluster).not.toBe(carrier.tries[0]!.cluster);
      expect(carrier.last.respond(200)).toBe('deliver');
      expect(carrier.answers).toEqual([]);
    }
    expect(w.retried).toEqual(['connect', 'connect', 'connect']);
    expect(w.heldBack).toEqual([]);
    expect(w.reports.filter((r) => r.outcome.origin === 'local')).toHaveLength(3);
    expect(w.reports[0]!.outcome).toEqual({ origin: 'local', failure: 'connect' });
  });

  it('retries a connection reset before any response byte, for any method', () => {
    const w = world();
    const { carrier } = w.exchange('POST');
    carrier.last.fail(errno('ECONNRESET'));
    expect(carrier.tries).toHaveLength(2);
    expect(w.retried).toEqual(['reset']);
  });

  it('counts an answer cut short after its head as failed, with the status it began with, and retries nothing', () => {
    const w = world();
    const { carrier } = w.exchange();
    expect(carrier.last.t.head(200)).toBe('deliver');
    expect(carrier.last.t.error(errno('ECONNRESET'))).toBe('cut');
    expect(carrier.tries).toHaveLength(1);
    expect(w.requests.map((r) => [r.outcome, r.status, r.cluster])).toEqual([
      ['failed', 200, carrier.last.cluster],
    ]);
  });

  it('does not retry a connect failure or reset once the request body has started streaming', () => {
    const w = world();
    const { carrier } = w.exchange('POST', new FakeCarrier(true));
    carrier.bodyRead = true;
    carrier.last.fail(errno('ECONNRESET'));
    expect(carrier.tries).toHaveLength(1);
    expect(carrier.answers.map((a) => a.code)).toEqual(['UPSTREAM_UNREACHABLE']);
    expect(w.requests.at(-1)).toMatchObject({ status: 502, cluster: '', tries: 1 });
  });

  it('retries 502, 503 and 504 for idempotent methods only, and passes other statuses on', () => {
    const w = world();
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) {
      for (const status of [502, 503, 504]) {
        const { carrier } = w.exchange(method);
        expect(carrier.last.respond(status), `${method} ${status}`).toBe('retry');
        expect(carrier.tries).toHaveLength(2);
        expect(carrier.last.respond(200)).toBe('deliver');
      }
    }
    for (const method of ['POST', 'PATCH']) {
      const { carrier } = w.exchange(method);
      expect(carrier.last.respond(503), method).toBe('deliver');
      expect(carrier.tries).toHaveLength(1);
    }
    for (const status of [500, 501, 429, 404]) {
      const { carrier } = w.exchange('GET');
      expect(carrier.last.respond(status), String(status)).toBe('deliver');
    }
    expect(w.retried).toEqual(Array(18).fill('status'));
    expect(w.reports.some((r) => r.outcome.origin === 'local')).toBe(false);
  });

  it('does not retry a 503 once the request body has started streaming', () => {
    const w = world();
    const { carrier } = w.exchange('PUT', new FakeCarrier(true));
    carrier.bodyRead = true;
    expect(carrier.last.respond(503)).toBe('deliver');
    expect(w.requests.at(-1)).toMatchObject({ status: 503, tries: 1 });
  });

  it('makes at most retries.attempts retries, each in a cluster not tried yet, then relays the last answer', () => {
    const w = world();
    for (let i = 0; i < 20; i++) {
      const { carrier } = w.exchange('GET');
      expect(carrier.last.respond(503)).toBe('retry');
      expect(carrier.last.respond(503)).toBe('retry');
      expect(carrier.last.respond(503)).toBe('deliver');
      expect(carrier.tries).toHaveLength(3);
      expect(new Set(carrier.tries.map((t) => t.cluster)).size).toBe(3);
      expect(w.requests.at(-1)).toMatchObject({ status: 503, tries: 3 });
    }
    const { carrier } = w.exchange('GET');
    for (let i = 0; i < 3; i++) carrier.last.fail(errno('ECONNREFUSED'));
    expect(carrier.tries).toHaveLength(3);
    expect(carrier.answers).toEqual([
      { code: 'UPSTREAM_UNREACHABLE', detail: 'could not reach shop/web (connect, 3 tries)' },
    ]);
  });

  it('goes back to a tried cluster only when every cluster has been tried', () => {
    const w = world({ attempts: 5 });
    const { carrier } = w.exchange('GET');
    for (let i = 0; i < 5; i++) carrier.last.fail(errno('ECONNREFUSED'));
    const clusters = carrier.tries.map((t) => t.cluster);
    expect(new Set(clusters.slice(0, 3)).size).toBe(3);
    expect(new Set(carrier.tries.map((t) => t.t.target.id)).size).toBe(6);
    // Six endpoints, all tried: nothing left.
    carrier.last.fail(errno('ECONNREFUSED'));
    expect(carrier.answers.map((a) => a.code)).toEqual(['UPSTREAM_UNREACHABLE']);
  });

  it('holds 5xx and timeout retries to the budget: max(minConcurrency, budget × active) in flight', () => {
    const w = world({ minConcurrency: 2, budget: 0.1 });
    const all = Array.from({ length: 10 }, () => w.exchange('GET'));
    // Two retries take the budget (max(2, 0.1 × 10)) while they are in flight…
    expect(all[0]!.carrier.last.respond(503)).toBe('retry');
    expect(all[1]!.carrier.last.respond(503)).toBe('retry');
    // …so the third 503 is relayed, and counted.
    expect(all[2]!.carrier.last.respond(503)).toBe('deliver');
    expect(w.heldBack).toEqual(['status']);
    // A refused connection is a dead endpoint: retried regardless.
    all[3]!.carrier.last.fail(errno('ECONNREFUSED'));
    expect(all[3]!.carrier.tries).toHaveLength(2);
    // A retry that finishes gives its place back.
    all[0]!.carrier.last.respond(200);
    expect(all[4]!.carrier.last.respond(503)).toBe('retry');
    expect(w.retried).toEqual(['status', 'status', 'connect', 'status']);
  });

  it('answers 504 UPSTREAM_TIMEOUT when the budget holds back a timeout retry', async () => {
    const w = world({ minConcurrency: 0, budget: 0, perTryTimeout: 20 });
    const { carrier } = w.exchange('GET');
    await until(() => carrier.answers.length > 0);
    expect(carrier.tries).toHaveLength(1);
    expect(carrier.answers[0]!.code).toBe('UPSTREAM_TIMEOUT');
    expect(carrier.answers[0]!.detail).toContain('retry budget exhausted');
    expect(w.heldBack).toEqual(['timeout']);
  });

  it('aborts a try with no response head within perTryTimeout and retries it when idempotent', async () => {
    const w = world({ perTryTimeout: 20 });
    const { carrier } = w.exchange('GET');
    await until(() => carrier.tries.length === 2);
    expect(carrier.tries[0]!.aborted?.name).toBe('PerTryTimeout');
    expect(carrier.tries[1]!.cluster).not.toBe(carrier.tries[0]!.cluster);
    expect(w.reports[0]!.outcome).toEqual({ origin: 'local', failure: 'timeout' });
    // A head in time stops the timer.
    expect(carrier.last.respond(200)).toBe('deliver');
    await sleep(40);
    expect(carrier.tries).toHaveLength(2);
    expect(w.retried).toEqual(['timeout']);
    // Not idempotent: no retry, 504.
    const post = w.exchange('POST').carrier;
    await until(() => post.answers.length > 0);
    expect(post.tries).toHaveLength(1);
    expect(post.answers[0]!.code).toBe('UPSTREAM_TIMEOUT');
  });

  it('starts the per-try timer of a request with a body only once the body is sent', async () => {
    const w = world({ perTryTimeout: 20 });
    const { carrier } = w.exchange('PUT', new FakeCarrier(true));
    await sleep(40);
    expect(carrier.tries[0]!.aborted).toBeUndefined();
    carrier.last.t.arm(); // the handler's onRequestSent
    await until(() => carrier.tries[0]!.aborted !== undefined);
    expect(carrier.tries[0]!.aborted?.name).toBe('PerTryTimeout');
  });

  it('waits in the pending queue when every endpoint is at its cap, and overflows past it', async () => {
    const w = world({ perTryTimeout: 1000 }, { perEndpoint: 1, pending: 1 });
    const busy = Array.from({ length: 6 }, () => w.exchange('GET'));
    expect(busy.every((b) => b.carrier.tries.length === 1)).toBe(true);
    const waiting = w.exchange('GET');
    expect(waiting.carrier.tries).toHaveLength(0);
    expect(w.upstreams.pendingCount(SVC.key)).toBe(1);
    const overflow = w.exchange('GET');
    await until(() => overflow.carrier.answers.length > 0);
    expect(overflow.carrier.answers.map((a) => a.code)).toEqual(['UPSTREAM_OVERFLOW']);
    busy[0]!.carrier.last.respond(200);
    await until(() => waiting.carrier.tries.length === 1);
    expect(waiting.carrier.last.t.target.id).toBe(busy[0]!.carrier.last.t.target.id);
  });
});
