// The attempt loop against a fake upstream: every row of the retry table in
// src/proxy/README.md, the retry budget, the per-try timer, "another cluster
// first", the pending queue and running out of descriptors. No sockets: the fake
// carrier records each try and the test says what the upstream did.
import { afterEach, describe, expect, it } from 'vitest';
import { endpoints, service } from '../../test/fixtures/services.ts';
import type { Snapshot } from '../catalog/model.ts';
import type { ErrorCode } from '../errors.ts';
import type { Outcome } from '../health/outlier.ts';
import { HealthStore } from '../health/store.ts';
import { createPicker } from '../routing/pickers.ts';
import { Router } from '../routing/router.ts';
import type { ProxyRequest } from './answers.ts';
import { type Carrier, Exchange, type LoopDeps } from './attempts.ts';
import { classify } from './failures.ts';
import type { ProxiedRequest } from './observer.ts';
import { RetryBudget } from './picks.ts';
import type { RetrySettings } from './route.ts';
import type { Try } from './try.ts';
import { Upstreams } from './upstreams.ts';

const HERE = { region: 'us-east', zone: 'us-east-a' };
/** Three clusters in this zone, two endpoints each. */
const SVC = service([
  { cluster: 'alpha', endpoints: endpoints(1, 2, HERE) },
  { cluster: 'beta', endpoints: endpoints(2, 2, HERE) },
  { cluster: 'gamma', endpoints: endpoints(3, 2, HERE) },
]);
const RETRIES: RetrySettings = { attempts: 2, budget: 0.2, minConcurrency: 3, perTryTimeout: 0 };

/** What the upstream of one try does, as undici would tell the handler. */
class FakeTry {
  readonly t: Try;
  aborted: Error | undefined;
  constructor(t: Try) {
    this.t = t;
    // undici answers an abort with onResponseError(reason).
    t.started({ abort: (reason) => this.fail(reason as Error) });
  }
  get cluster(): string {
    return this.t.target.cluster;
  }
  /** A response head and, when the loop keeps it, the whole body. */
  respond(status: number): 'deliver' | 'retry' | 'gone' {
    const verdict = this.t.head(status);
    this.t.release();
    this.t.answered();
    return verdict;
  }
  fail(err: Error): void {
    this.aborted ??= err;
    this.t.error(err);
  }
}

class FakeCarrier implements Carrier {
  readonly upgrade = false;
  readonly tries: FakeTry[] = [];
  readonly answers: { code: ErrorCode; detail: string }[] = [];
  readonly hasBody: boolean;
  bodyRead = false;
  constructor(hasBody = false) {
    this.hasBody = hasBody;
  }
  bodyStarted(): boolean {
    return this.bodyRead;
  }
  send(t: Try): void {
    this.tries.push(new FakeTry(t));
  }
  answer(code: ErrorCode, detail: string): void {
    this.answers.push({ code, detail });
  }
  get last(): FakeTry {
    return this.tries.at(-1)!;
  }
}

function errno(code: string, wrapped = false): Error {
  const e = Object.assign(new Error(code), { code });
  return wrapped ? Object.assign(new Error('connect failed'), { cause: e }) : e;
}

let open: Upstreams[] = [];
afterEach(async () => {
  for (const u of open) await u.close(true);
  open = [];
});

function world(retries: Partial<RetrySettings> = {}, limits = { perEndpoint: 100, pending: 10 }) {
  const router = new Router(
    { overprovisioning: 1.4, panicThreshold: 0.5, failoverOrder: {}, localities: [], self: HERE },
    new HealthStore(),
  );
  const upstreams = new Upstreams({
    maxRequestsPerEndpoint: limits.perEndpoint,
    maxPendingPerService: limits.pending,
    connectTimeoutMs: 1000,
    idleTimeoutMs: 1000,
    bodyTimeoutMs: 1000,
  });
  open.push(upstreams);
  const reports: { id: string; outcome: Outcome }[] = [];
  const requests: ProxiedRequest[] = [];
  const retried: string[] = [];
  /** Retries the budget held back, by reason. */
  const heldBack: string[] = [];
  const deps: LoopDeps = {
    catalog: { current: () => ({ services: new Map([[SVC.key, SVC]]) }) as unknown as Snapshot },
    router,
    health: { report: (_s, id, outcome) => reports.push({ id, outcome }) },
    upstreams,
    retries: { ...RETRIES, ...retries },
    observer: {
      request: (r) => requests.push(r),
      retry: (_s, reason) => retried.push(reason),
      retryBudgetExhausted: (_s, reason) => heldBack.push(reason),
    },
    exhaustion: { note: () => {} },
  };
  const budget = new RetryBudget();
  const policy = { picker: createPicker('p2c', { random: Math.random }), hashOn: undefined };
  const exchange = (method = 'GET', carrier = new FakeCarrier()) => {
    const req = {
      method,
      url: '/',
      headers: {},
      socket: { remoteAddress: '127.1.0.1' },
    } as unknown as ProxyRequest;
    const routed = {
      policy,
      locality: HERE,
      plan: router.plan(SVC, HERE),
      hash: undefined,
      headers: [],
    };
    const ex = new Exchange(() => deps, budget, SVC, routed, req, carrier);
    ex.start();
    return { ex, carrier };
  };
  return { exchange, reports, requests, retried, heldBack, upstreams };
}

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

  it('stops when the client goes away: the try is aborted and nothing is answered', () => {
    const w = world();
    const { ex, carrier } = w.exchange('GET');
    ex.cancel();
    expect(carrier.tries[0]!.aborted?.message).toBe('client went away');
    expect(carrier.tries).toHaveLength(1);
    expect(carrier.answers).toEqual([]);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(ok: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}
