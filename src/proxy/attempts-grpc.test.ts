// The attempt loop for gRPC calls, against a fake upstream (test/fixtures/attempt-loop.ts):
// retries by grpc-status in a trailers-only answer, never by the HTTP 200; outlier
// outcomes from the head or the trailers; the call's deadline; fedgate's own
// answers counted with their gRPC status.
import { afterEach, describe, expect, it } from 'vitest';
import {
  closeWorlds,
  errno,
  FakeCarrier,
  sleep,
  until,
  world,
} from '../../test/fixtures/attempt-loop.ts';
import type { GrpcCall } from './grpc.ts';

afterEach(closeWorlds);

const GRPC = { 'content-type': 'application/grpc' };
const call = (deadline?: number): FakeCarrier =>
  new FakeCarrier(false, { deadline } satisfies GrpcCall);
const unaryCall = (): FakeCarrier => call();
const trailersOnly = (status: number) => ({ ...GRPC, 'grpc-status': String(status) });

describe('the attempt loop, gRPC calls', () => {
  it('retries a trailers-only UNAVAILABLE (a POST) to another cluster, within the budget', () => {
    const w = world();
    const { carrier } = w.exchange('POST', unaryCall());
    expect(carrier.last.respond(200, trailersOnly(14))).toBe('retry');
    expect(carrier.tries).toHaveLength(2);
    expect(carrier.tries[1]!.cluster).not.toBe(carrier.tries[0]!.cluster);
    expect(carrier.last.respond(200, GRPC, { 'grpc-status': '0' })).toBe('deliver');
    expect(w.retried).toEqual(['grpc_status']);
    expect(w.requests).toEqual([
      expect.objectContaining({
        outcome: 'relayed',
        status: 200,
        grpc: true,
        grpcStatus: 0,
        tries: 2,
      }),
    ]);
  });

  it('relays INTERNAL, RESOURCE_EXHAUSTED and the rest by default: only UNAVAILABLE retries', () => {
    const w = world();
    for (const status of [1, 2, 4, 8, 13]) {
      const { carrier } = w.exchange('POST', unaryCall());
      expect(carrier.last.respond(200, trailersOnly(status)), String(status)).toBe('deliver');
      expect(carrier.tries).toHaveLength(1);
    }
    expect(w.retried).toEqual([]);
    expect(w.requests.map((r) => r.grpcStatus)).toEqual([1, 2, 4, 8, 13]);
  });

  it('retries what http.retries.grpcRetryOn names', () => {
    const w = world({ grpcRetryOn: new Set([13]) });
    const { carrier } = w.exchange('POST', unaryCall());
    expect(carrier.last.respond(200, trailersOnly(13))).toBe('retry');
    expect(carrier.last.respond(200, trailersOnly(14))).toBe('deliver');
    expect(w.retried).toEqual(['grpc_status']);
  });

  it('retries an HTTP 503 without grpc-status as UNAVAILABLE, and never an HTTP 200 with its status in trailers', () => {
    const w = world();
    const a = w.exchange('POST', unaryCall());
    expect(a.carrier.last.respond(503, { 'content-type': 'text/plain' })).toBe('retry');
    // The status comes after the answer started: too late to retry, whatever it is.
    const b = w.exchange('POST', unaryCall());
    expect(b.carrier.last.respond(200, GRPC, { 'grpc-status': '14' })).toBe('deliver');
    expect(b.carrier.tries).toHaveLength(1);
    expect(w.retried).toEqual(['grpc_status']);
  });

  it('does not retry an UNAVAILABLE once the request body has started streaming', () => {
    const w = world();
    const carrier = new FakeCarrier(true, { deadline: undefined });
    w.exchange('POST', carrier);
    carrier.bodyRead = true;
    expect(carrier.last.respond(200, trailersOnly(14))).toBe('deliver');
    expect(carrier.tries).toHaveLength(1);
  });

  it('holds UNAVAILABLE retries to the retry budget, as 5xx answers', () => {
    const w = world({ minConcurrency: 0, budget: 0 });
    const { carrier } = w.exchange('POST', unaryCall());
    expect(carrier.last.respond(200, trailersOnly(14))).toBe('deliver');
    expect(w.heldBack).toEqual(['grpc_status']);
    expect(w.requests.at(-1)).toMatchObject({ outcome: 'relayed', grpcStatus: 14 });
  });

  it('still retries connect failures and resets of a gRPC call elsewhere', () => {
    const w = world();
    const { carrier } = w.exchange('POST', unaryCall());
    carrier.last.fail(errno('ECONNREFUSED', true));
    carrier.last.fail(errno('ECONNRESET'));
    expect(carrier.tries).toHaveLength(3);
    expect(w.retried).toEqual(['connect', 'reset']);
  });

  it('tells outlier detection the gRPC status: from a trailers-only head at once, else from the trailers at the end', () => {
    const w = world();
    w.exchange('POST', unaryCall()).carrier.last.respond(200, trailersOnly(13));
    expect(w.reports.at(-1)!.outcome).toEqual({ origin: 'upstream', status: 200, grpcStatus: 13 });
    const { carrier } = w.exchange('POST', unaryCall());
    const t = carrier.last.t;
    const before = w.reports.length;
    expect(t.head(200, GRPC)).toBe('deliver');
    expect(w.reports).toHaveLength(before); // not judged on the 200
    t.release();
    t.answered({ 'grpc-status': '15' });
    expect(w.reports.at(-1)!.outcome).toEqual({ origin: 'upstream', status: 200, grpcStatus: 15 });
    expect(w.requests.at(-1)).toMatchObject({ grpcStatus: 15, outcome: 'relayed' });
  });

  it('reports a gRPC answer cut before its trailers as a reset, counted failed with no status', () => {
    const w = world();
    const { carrier } = w.exchange('POST', unaryCall());
    expect(carrier.last.t.head(200, GRPC)).toBe('deliver');
    expect(carrier.last.t.error(errno('ECONNRESET'))).toBe('cut');
    expect(w.reports.map((r) => r.outcome)).toEqual([{ origin: 'local', failure: 'reset' }]);
    expect(w.requests.at(-1)).toMatchObject({
      outcome: 'failed',
      grpc: true,
      grpcStatus: undefined,
    });
  });

  it("answers DEADLINE_EXCEEDED when the call's deadline passes before an answer: the try aborted, no endpoint blamed, no retry", async () => {
    const w = world({ perTryTimeout: 10_000 });
    const { carrier } = w.exchange('POST', call(performance.now() + 30));
    await until(() => carrier.answers.length > 0);
    expect(carrier.answers.map((a) => a.code)).toEqual(['UPSTREAM_TIMEOUT']);
    expect(carrier.answers[0]!.detail).toMatch(/deadline/);
    expect(carrier.last.aborted).toBeDefined();
    expect(carrier.tries).toHaveLength(1);
    expect(w.reports).toEqual([]);
    expect(w.retried).toEqual([]);
    expect(w.requests).toEqual([
      expect.objectContaining({ outcome: 'failed', status: 504, grpc: true, grpcStatus: 4 }),
    ]);
  });

  it('takes a deadline beyond what a Node timer holds (grpc-timeout 99999999H) as none', async () => {
    const w = world();
    const { carrier } = w.exchange('POST', call(performance.now() + 99_999_999 * 3_600_000));
    await sleep(20);
    expect(carrier.answers).toEqual([]);
    expect(carrier.last.respond(200, trailersOnly(0))).toBe('deliver');
  });

  it('leaves a call whose answer started to its client and upstream when the deadline passes', async () => {
    const w = world();
    const { carrier } = w.exchange('POST', call(performance.now() + 20));
    expect(carrier.last.t.head(200, GRPC)).toBe('deliver');
    await sleep(50);
    expect(carrier.answers).toEqual([]);
    expect(carrier.last.aborted).toBeUndefined();
    carrier.last.t.release();
    carrier.last.t.answered({ 'grpc-status': '0' });
    expect(w.requests).toHaveLength(1);
  });

  it("counts fedgate's own answers and a cancelled call with their gRPC status", () => {
    const w = world();
    const a = w.exchange('POST', unaryCall());
    a.carrier.last.fail(errno('ECONNREFUSED', true));
    a.carrier.last.fail(errno('ECONNREFUSED', true));
    a.carrier.last.fail(errno('ECONNREFUSED', true));
    expect(a.carrier.answers.map((x) => x.code)).toEqual(['UPSTREAM_UNREACHABLE']);
    expect(w.requests.at(-1)).toMatchObject({ status: 502, grpc: true, grpcStatus: 14 });
    const b = w.exchange('POST', unaryCall());
    expect(b.ex.cancel()).toBe(true);
    expect(b.carrier.last.aborted).toBeDefined();
    expect(w.requests.at(-1)).toMatchObject({ outcome: 'client_cancelled', grpcStatus: 1 });
    // A plain request carries neither.
    w.exchange('GET').carrier.last.respond(200);
    expect(w.requests.at(-1)).not.toHaveProperty('grpc');
  });
});
