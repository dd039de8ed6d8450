// W3C Trace Context and OpenTelemetry spans for proxied requests: a server span per
// request, continuing the client's traceparent/tracestate (or a new trace, as the
// sampler decides), and a client span per try, whose context each try's request
// carries to its endpoint. Per-try spans rather than events on the server span: each
// try is a request of its own to another endpoint (often another cluster), with its
// own duration, status and failure, and the backend's span must name the try that
// reached it as its parent, which takes a span id per try. The tracer provider and
// the exporter are set up in observe/tracing.ts; this file only uses the API.
import type { IncomingHttpHeaders } from 'node:http';
import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { Target } from '../routing/types.ts';
import type { ProxyRequest } from './answers.ts';

/** What the proxy traces with: set up by observe/tracing.ts when `tracing.enabled`. */
export interface ProxyTracing {
  readonly tracer: Tracer;
  /** W3C Trace Context (traceparent, tracestate). */
  readonly propagator: TextMapPropagator;
}

/** The headers trace context travels in, which a traced try sets anew. */
const TRACE_HEADERS: ReadonlySet<string> = new Set(['traceparent', 'tracestate']);

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (h) => Object.keys(h),
  get: (h, key) => h[key],
};

const pairSetter: TextMapSetter<string[]> = {
  set: (out, key, value) => {
    out.push(key, value);
  },
};

/** What the server span is told when its request ends (attempts.ts's observe). */
export interface RequestEnd {
  readonly status: number;
  readonly outcome: string;
  readonly target: Target | undefined;
  readonly tier: string;
  readonly attempts: number;
  readonly grpcStatus?: number | undefined;
}

/** What the request was routed by, for the server span's fedgate.* attributes. */
export interface RequestRouting {
  readonly service: string;
  readonly picker: string;
  /** `namespace/name` of the Gateway API route, and the rule's index in it. */
  readonly route?: string | undefined;
  readonly rule?: number | undefined;
}

/** `host[:port]` of Host or :authority, split. */
function authority(h: IncomingHttpHeaders): { host: string; port: number | undefined } {
  const raw = h[':authority'] ?? h.host;
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (!value) return { host: '', port: undefined };
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(value);
  if (!m) return { host: value, port: undefined };
  return { host: m[1] ?? value, port: m[2] === undefined ? undefined : Number(m[2]) };
}

function serverAttributes(req: ProxyRequest, routing: RequestRouting): Attributes {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const { host, port } = authority(req.headers);
  const encrypted = (req.socket as { encrypted?: boolean } | null)?.encrypted === true;
  const version = req.httpVersion === '2.0' ? '2' : req.httpVersion;
  const attrs: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: req.method ?? 'GET',
    [ATTR_URL_PATH]: q < 0 ? url : url.slice(0, q),
    [ATTR_URL_SCHEME]: encrypted ? 'https' : 'http',
    [ATTR_SERVER_ADDRESS]: host,
    [ATTR_NETWORK_PROTOCOL_VERSION]: version,
    [ATTR_CLIENT_ADDRESS]: req.socket?.remoteAddress ?? '',
    'fedgate.service': routing.service,
    'fedgate.picker': routing.picker,
  };
  if (q >= 0) attrs[ATTR_URL_QUERY] = url.slice(q + 1);
  if (port !== undefined) attrs[ATTR_SERVER_PORT] = port;
  const ua = req.headers['user-agent'];
  if (ua) attrs[ATTR_USER_AGENT_ORIGINAL] = ua;
  if (routing.route) {
    attrs['fedgate.route'] = routing.route;
    if (routing.rule !== undefined) attrs['fedgate.rule'] = routing.rule;
  }
  return attrs;
}

/** The trace of one proxied request: its server span and the client span of its try under way. */
export class RequestTrace {
  readonly #tracing: ProxyTracing;
  readonly #span: Span;
  /** The context tries are children of: the server span's. */
  readonly #context: Context;
  readonly #method: string;
  #try: Span | undefined;
  #code: string | undefined;

  constructor(tracing: ProxyTracing, req: ProxyRequest, routing: RequestRouting) {
    this.#tracing = tracing;
    const parent = tracing.propagator.extract(ROOT_CONTEXT, req.headers, headerGetter);
    this.#method = req.method ?? 'GET';
    this.#span = tracing.tracer.startSpan(
      this.#method,
      { kind: SpanKind.SERVER, attributes: serverAttributes(req, routing) },
      parent,
    );
    this.#context = trace.setSpan(parent, this.#span);
  }

  /**
   * A try starts: its client span (when the request is sampled) and the traceparent
   * and tracestate its request carries, as name/value pairs. `attempt` counts from 1;
   * `retryOf`: why the try before it failed.
   */
  tryStarted(target: Target, attempt: number, retryOf?: string): string[] {
    this.#endTry(undefined, 'superseded');
    let ctx = this.#context;
    // Unsampled: no span to record, the trace still goes on with the server span's context.
    if (this.#span.isRecording()) {
      const [ip, port] = splitAddress(target.address);
      const attrs: Attributes = {
        [ATTR_HTTP_REQUEST_METHOD]: this.#method,
        [ATTR_SERVER_ADDRESS]: ip,
        [ATTR_NETWORK_PEER_ADDRESS]: ip,
        'fedgate.cluster': target.cluster,
        'fedgate.zone': target.endpoint.locality.zone ?? '',
        'fedgate.endpoint': target.address,
        'fedgate.attempt': attempt,
      };
      if (port !== undefined) {
        attrs[ATTR_SERVER_PORT] = port;
        attrs[ATTR_NETWORK_PEER_PORT] = port;
      }
      if (attempt > 1) attrs[ATTR_HTTP_REQUEST_RESEND_COUNT] = attempt - 1;
      if (retryOf) attrs['fedgate.retry.reason'] = retryOf;
      this.#try = this.#tracing.tracer.startSpan(
        this.#method,
        { kind: SpanKind.CLIENT, attributes: attrs },
        this.#context,
      );
      ctx = trace.setSpan(this.#context, this.#try);
      if (retryOf) this.#span.addEvent('fedgate.retry', { 'fedgate.retry.reason': retryOf });
    }
    const out: string[] = [];
    this.#tracing.propagator.inject(ctx, out, pairSetter);
    return out;
  }

  /** The try under way failed: `reason` is the retry reason (connect, reset, status, ...). */
  tryFailed(status: number | undefined, reason: string): void {
    this.#endTry(status, reason);
  }

  /** The code of fedgate's own answer (errors.ts), the error.type when it answered itself. */
  answered(code: string): void {
    this.#code = code;
  }

  end(r: RequestEnd): void {
    const s = this.#span;
    // A cancelled request's 499 was never sent (observer.ts): no status on either span.
    const sent = r.outcome !== 'client_cancelled';
    this.#endTry(
      r.target && sent ? r.status : undefined,
      sent && r.status >= 500 ? String(r.status) : undefined,
    );
    if (!s.isRecording()) {
      s.end();
      return;
    }
    const attrs: Attributes = {
      'fedgate.outcome': r.outcome,
      'fedgate.attempts': r.attempts,
    };
    if (r.status > 0 && sent) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = r.status;
    if (r.target) {
      attrs['fedgate.cluster'] = r.target.cluster;
      attrs['fedgate.zone'] = r.target.endpoint.locality.zone ?? '';
      attrs['fedgate.endpoint'] = r.target.address;
    }
    if (r.tier) attrs['fedgate.locality.tier'] = r.tier;
    if (r.grpcStatus !== undefined) attrs['fedgate.grpc.status'] = r.grpcStatus;
    // Server spans: a 4xx is the client's, not an error (semantic conventions).
    const error = this.#code ?? (sent && r.status >= 500 ? String(r.status) : undefined);
    if (error !== undefined) {
      attrs[ATTR_ERROR_TYPE] = error;
      s.setStatus({ code: SpanStatusCode.ERROR });
    }
    s.setAttributes(attrs);
    s.end();
  }

  #endTry(status: number | undefined, error: string | undefined): void {
    const t = this.#try;
    if (!t) return;
    this.#try = undefined;
    if (status !== undefined && status > 0) t.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (error !== undefined) {
      t.setAttribute(ATTR_ERROR_TYPE, error);
      t.setStatus({ code: SpanStatusCode.ERROR });
    }
    t.end();
  }
}

/** `ip:port`, `[v6]:port` or a bare address. */
function splitAddress(address: string): [string, number | undefined] {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address);
  if (!m) return [address, undefined];
  return [m[1] ?? m[2] ?? address, Number(m[3])];
}

/**
 * The request headers a traced try sends: the client's traceparent and tracestate
 * replaced by the try's (`trace`, name/value pairs).
 */
export function withTraceHeaders(headers: readonly string[], traced: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] ?? '';
    if (!TRACE_HEADERS.has(name.toLowerCase())) out.push(name, headers[i + 1] ?? '');
  }
  out.push(...traced);
  return out;
}
