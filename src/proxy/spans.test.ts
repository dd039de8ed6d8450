import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  type ReadableSpan,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import type { Target } from '../routing/types.ts';
import type { ProxyRequest } from './answers.ts';
import { type ProxyTracing, RequestTrace, withTraceHeaders } from './spans.ts';

const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';

function tracing(ratio = 1): { tracing: ProxyTracing; spans: () => ReadableSpan[] } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return {
    tracing: { tracer: provider.getTracer('test'), propagator: new W3CTraceContextPropagator() },
    spans: () => exporter.getFinishedSpans(),
  };
}

function request(headers: Record<string, string>, url = '/cart?id=7'): ProxyRequest {
  return {
    method: 'GET',
    url,
    httpVersion: '1.1',
    headers: { host: 'cart.shop.svc.clusterset.local:8080', 'user-agent': 'curl/8', ...headers },
    socket: { remoteAddress: '127.0.0.9' },
  } as unknown as ProxyRequest;
}

function target(cluster: string, address: string): Target {
  return {
    id: `${cluster}/${address}`,
    cluster,
    address,
    endpoint: { locality: { region: 'r1', zone: `${cluster}-z` } },
    weight: 1,
    share: 1,
  } as unknown as Target;
}

const routing = { service: 'shop/cart', picker: 'p2c' };

/** The traceparent of a try's header pairs, split. */
function traceparent(pairs: string[]): { trace: string; span: string; flags: string } {
  const i = pairs.indexOf('traceparent');
  const [, trace = '', span = '', flags = ''] = (pairs[i + 1] ?? '').split('-');
  return { trace, span, flags };
}

describe('RequestTrace', () => {
  it("continues the client's trace: a server span with the HTTP attributes, a client span per try named by the try's traceparent", () => {
    const t = tracing(0);
    const req = request({
      traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01`,
      tracestate: 'vendor=abc',
    });
    const trace = new RequestTrace(t.tracing, req, { ...routing, route: 'shop/r', rule: 1 });
    const a = target('east', '127.0.0.2:9000');
    const headers = trace.tryStarted(a, 1);
    trace.end({ status: 200, outcome: 'relayed', target: a, tier: 'zone', attempts: 1 });

    const spans = t.spans();
    expect(spans).toHaveLength(2);
    const [client, server] = spans as [ReadableSpan, ReadableSpan];
    // Sampled although the ratio is 0: the parent was.
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(server.spanContext().traceId).toBe(PARENT_TRACE);
    expect(server.parentSpanContext?.spanId).toBe(PARENT_SPAN);
    expect(server.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/cart',
      'url.query': 'id=7',
      'url.scheme': 'http',
      'server.address': 'cart.shop.svc.clusterset.local',
      'server.port': 8080,
      'network.protocol.version': '1.1',
      'client.address': '127.0.0.9',
      'user_agent.original': 'curl/8',
      'http.response.status_code': 200,
      'fedgate.service': 'shop/cart',
      'fedgate.picker': 'p2c',
      'fedgate.route': 'shop/r',
      'fedgate.rule': 1,
      'fedgate.cluster': 'east',
      'fedgate.zone': 'east-z',
      'fedgate.locality.tier': 'zone',
      'fedgate.attempts': 1,
      'fedgate.outcome': 'relayed',
    });
    expect(server.attributes['error.type']).toBeUndefined();
    expect(client.kind).toBe(SpanKind.CLIENT);
    expect(client.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(client.attributes).toMatchObject({
      'server.address': '127.0.0.2',
      'server.port': 9000,
      'http.response.status_code': 200,
      'fedgate.cluster': 'east',
      'fedgate.attempt': 1,
    });
    const sent = traceparent(headers);
    expect(sent).toEqual({ trace: PARENT_TRACE, span: client.spanContext().spanId, flags: '01' });
    expect(headers[headers.indexOf('tracestate') + 1]).toBe('vendor=abc');
  });

  it('a retry: the failed try carries its reason as error.type, the next one the reason it retries and its resend count', () => {
    const t = tracing(1);
    const trace = new RequestTrace(t.tracing, request({}), routing);
    const a = target('east', '127.0.0.2:9000');
    const b = target('west', '127.0.0.3:9000');
    const first = trace.tryStarted(a, 1);
    trace.tryFailed(undefined, 'connect');
    const second = trace.tryStarted(b, 2, 'connect');
    trace.end({ status: 200, outcome: 'relayed', target: b, tier: 'failover', attempts: 2 });

    const [tryA, tryB, server] = t.spans() as [ReadableSpan, ReadableSpan, ReadableSpan];
    // A new trace: no parent, the ratio sampled it.
    expect(server.parentSpanContext).toBeUndefined();
    expect(tryA.attributes['error.type']).toBe('connect');
    expect(tryA.status.code).toBe(SpanStatusCode.ERROR);
    expect(tryA.attributes['fedgate.cluster']).toBe('east');
    expect(tryB.attributes).toMatchObject({
      'fedgate.cluster': 'west',
      'fedgate.retry.reason': 'connect',
      'http.request.resend_count': 1,
      'http.response.status_code': 200,
    });
    expect(server.attributes).toMatchObject({ 'fedgate.attempts': 2, 'fedgate.cluster': 'west' });
    expect(server.events.map((e) => [e.name, e.attributes?.['fedgate.retry.reason']])).toEqual([
      ['fedgate.retry', 'connect'],
    ]);
    expect(traceparent(first).span).toBe(tryA.spanContext().spanId);
    expect(traceparent(second).span).toBe(tryB.spanContext().spanId);
  });

  it("fedgate's own 5xx answer is the server span's error.type; a gRPC call's status is on it", () => {
    const t = tracing(1);
    const trace = new RequestTrace(t.tracing, request({}), routing);
    trace.tryStarted(target('east', '127.0.0.2:9000'), 1);
    trace.tryFailed(undefined, 'reset');
    trace.answered('UPSTREAM_UNREACHABLE');
    trace.end({
      status: 502,
      outcome: 'failed',
      target: undefined,
      tier: '',
      attempts: 1,
      grpcStatus: 14,
    });
    const server = t.spans().find((s) => s.kind === SpanKind.SERVER);
    expect(server?.attributes['error.type']).toBe('UPSTREAM_UNREACHABLE');
    expect(server?.attributes['fedgate.grpc.status']).toBe(14);
    expect(server?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a request the client cancelled has no response status: its 499 was never sent', () => {
    const t = tracing(1);
    const trace = new RequestTrace(t.tracing, request({}), routing);
    const a = target('east', '127.0.0.2:9000');
    trace.tryStarted(a, 1);
    trace.end({ status: 499, outcome: 'client_cancelled', target: a, tier: '', attempts: 1 });
    for (const s of t.spans()) {
      expect(s.attributes['http.response.status_code']).toBeUndefined();
      expect(s.attributes['error.type']).toBeUndefined();
    }
    const server = t.spans().find((s) => s.kind === SpanKind.SERVER);
    expect(server?.attributes['fedgate.outcome']).toBe('client_cancelled');
  });

  it('an unsampled parent: nothing recorded, the trace still passed on unsampled', () => {
    const t = tracing(1);
    const req = request({ traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-00` });
    const trace = new RequestTrace(t.tracing, req, routing);
    const headers = trace.tryStarted(target('east', '127.0.0.2:9000'), 1);
    trace.end({ status: 200, outcome: 'relayed', target: undefined, tier: '', attempts: 1 });
    expect(t.spans()).toEqual([]);
    const sent = traceparent(headers);
    expect(sent.trace).toBe(PARENT_TRACE);
    expect(sent.flags).toBe('00');
    expect(sent.span).not.toBe(PARENT_SPAN);
  });

  it('a new trace is sampled by the ratio: 0 records none', () => {
    const t = tracing(0);
    const trace = new RequestTrace(t.tracing, request({}), routing);
    const headers = trace.tryStarted(target('east', '127.0.0.2:9000'), 1);
    trace.end({ status: 200, outcome: 'relayed', target: undefined, tier: '', attempts: 1 });
    expect(t.spans()).toEqual([]);
    expect(traceparent(headers).flags).toBe('00');
  });
});

describe('withTraceHeaders', () => {
  it("replaces the client's traceparent and tracestate, whatever their case, and keeps the rest in order", () => {
    const out = withTraceHeaders(
      ['Host', 'a', 'TraceParent', 'client', 'x-b', '1', 'tracestate', 's'],
      ['traceparent', 'mine'],
    );
    expect(out).toEqual(['Host', 'a', 'x-b', '1', 'traceparent', 'mine']);
  });
});
