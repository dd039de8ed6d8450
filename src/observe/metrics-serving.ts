// The series a serving process counts as it serves, through ProxyObserver and
// TracingObserver (Metrics' methods): each proxied request, retry, mirror, closed
// connection and exported span. Unregistered in the primary of worker processes:
// the workers count. The three counted on every request are tallies (tallies.ts).

import { Counter, type Registry } from 'prom-client';
import { TalliedCounter, TalliedHistogram } from './tallies.ts';
import { LATENCY_BUCKETS } from './traffic.ts';

/** Request duration buckets, seconds: 1 ms to 30 s (the traffic picture's p99 uses the same). */
const DURATION_BUCKETS: readonly number[] = LATENCY_BUCKETS;

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/** The same string each time: a label value the series tables look up by. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? STATUS_CLASSES[Math.floor(status / 100) - 1]! : 'other';
}

export const RULE_REQUESTS = 'fedgate_http_route_rule_requests_total';

/** The serving series, one field each. */
export interface ServingSeries {
  readonly requests: TalliedCounter<'service' | 'cluster' | 'zone' | 'code' | 'outcome' | 'route'>;
  readonly mirrored: Counter<'service' | 'result'>;
  readonly ruleRequests: TalliedCounter<'route' | 'rule'>;
  readonly duration: TalliedHistogram<'service' | 'code'>;
  readonly retries: Counter<'service' | 'reason'>;
  readonly grpc: Counter<'service' | 'grpc_status' | 'outcome'>;
  readonly servedHttp: TalliedCounter<'service' | 'tier'>;
  readonly budgetExhausted: Counter<'service' | 'reason'>;
  readonly upgrades: Counter<'service' | 'code'>;
  readonly streamResets: Counter;
  readonly connectionsClosed: Counter<'reason'>;
  readonly overShare: Counter<'service'>;
  readonly tlsFailures: Counter<'service' | 'cluster' | 'reason'>;
  readonly tunnelsIdle: Counter<'service'>;
  readonly spansExported: Counter;
  readonly spansDropped: Counter<'reason'>;
  readonly exportFailures: Counter;
}

/** Creates the serving series in `registers` (none: counted, never exported). */
export function servingSeries(registers: Registry[]): ServingSeries {
  return {
    requests: new TalliedCounter({
      name: 'fedgate_http_requests_total',
      help: 'HTTP requests by service ("" when none was found), the cluster and zone that answered, status class, how the request ended (relayed, failed, rejected, overflowed, client_cancelled, redirected), and the Gateway API route (namespace/name) that routed it ("" for Host routing)',
      labelNames: ['service', 'cluster', 'zone', 'code', 'outcome', 'route'],
      registers,
    }),
    ruleRequests: new TalliedCounter({
      name: RULE_REQUESTS,
      help: "HTTP requests that matched a Gateway API rule, by route (namespace/name) and the rule's index in it",
      labelNames: ['route', 'rule'],
      registers,
    }),
    // tracing (observe/tracing.ts): each serving process exports its own spans.
    spansExported: new Counter({
      name: 'fedgate_tracing_spans_exported_total',
      help: 'Spans the OTLP collector accepted',
      registers,
    }),
    spansDropped: new Counter({
      name: 'fedgate_tracing_spans_dropped_total',
      help: 'Sampled spans lost, by reason: queue_full (tracing.maxQueueSize spans already waiting) or export_failed (their batch could not be sent)',
      labelNames: ['reason'],
      registers,
    }),
    exportFailures: new Counter({
      name: 'fedgate_tracing_export_failures_total',
      help: 'Span exports to the OTLP collector that failed (refused, timed out, rejected)',
      registers,
    }),
    mirrored: new Counter({
      name: 'fedgate_http_mirrored_requests_total',
      help: 'Copies of requests a Gateway API RequestMirror sent, by the mirror service and result: sent (answered), failed (no endpoint, refused, timed out) or dropped (too many mirrors in flight)',
      labelNames: ['service', 'result'],
      registers,
    }),
    duration: new TalliedHistogram({
      name: 'fedgate_http_request_duration_seconds',
      help: 'Time from request to the end of the response, through the proxy',
      labelNames: ['service', 'code'],
      buckets: DURATION_BUCKETS,
      registers,
    }),
    grpc: new Counter({
      name: 'fedgate_grpc_requests_total',
      help: 'gRPC calls (content-type application/grpc) by service, the grpc-status the client got (the upstream\'s, or fedgate\'s own; "" when none reached it) and how the call ended (as fedgate_http_requests_total, which counts them too)',
      labelNames: ['service', 'grpc_status', 'outcome'],
      registers,
    }),
    retries: new Counter({
      name: 'fedgate_http_retries_total',
      help: 'Retries the proxy made, by why the try before failed',
      labelNames: ['service', 'reason'],
      registers,
    }),
    budgetExhausted: new Counter({
      name: 'fedgate_http_retry_budget_exhausted_total',
      help: 'Retries the service retry budget held back, by why the try failed (status, timeout): that answer went to the client',
      labelNames: ['service', 'reason'],
      registers,
    }),
    tlsFailures: new Counter({
      name: 'fedgate_upstream_tls_failures_total',
      help: "Tries whose TLS handshake with an endpoint failed, by why: untrusted (no trusted CA), expired, name (hostname or subjectAltNames), client_certificate (the backend refused or wanted fedgate's), handshake (any other)",
      labelNames: ['service', 'cluster', 'reason'],
      registers,
    }),
    overShare: new Counter({
      name: 'fedgate_http_client_over_share_total',
      help: "Requests answered 429 CLIENT_OVER_SHARE: their client netblock already held its share of the service's request slots (also in fedgate_http_requests_total, outcome rejected)",
      labelNames: ['service'],
      registers,
    }),
    tunnelsIdle: new Counter({
      name: 'fedgate_http_tunnels_idle_closed_total',
      help: 'Upgraded tunnels (WebSocket) closed after http.timeouts.tunnelIdle with no byte either way',
      labelNames: ['service'],
      registers,
    }),
    upgrades: new Counter({
      name: 'fedgate_http_upgrades_total',
      help: 'Upgrade requests (WebSocket and the like) by service and status class of the answer: 1xx switched protocols',
      labelNames: ['service', 'code'],
      registers,
    }),
    streamResets: new Counter({
      name: 'fedgate_http2_stream_resets_total',
      help: 'HTTP/2 streams the client reset before their answer was whole (also counted as client_cancelled requests)',
      registers,
    }),
    connectionsClosed: new Counter({
      name: 'fedgate_http_connections_closed_total',
      help: 'Client connections fedgate closed for how the client behaved, by reason: premature_resets (HTTP/2 rapid reset), client_connections (past http.limits.maxConnectionsPerClient, closed as accepted)',
      labelNames: ['reason'],
      registers,
    }),
    servedHttp: new TalliedCounter({
      name: 'fedgate_http_served_tier_total',
      help: 'Proxied requests by the scope of the plan tier whose endpoint answered (zone, region, other, …)',
      labelNames: ['service', 'tier'],
      registers,
    }),
  };
}
