// Every default fedgate applies, named. The README's configuration section lists
// them; a test keeps the two in step.

/** The MCS clusterset zone. */
export const DEFAULT_CLUSTERSET_ZONE = 'clusterset.local';
/** A cluster's weight within a tier when the config gives none. */
export const DEFAULT_CLUSTER_WEIGHT = 1;

/** Listeners. Unprivileged ports, so fedgate runs without CAP_NET_BIND_SERVICE by default. */
export const DEFAULT_DNS_LISTEN = '0.0.0.0:5353';
export const DEFAULT_HTTP_LISTEN = '0.0.0.0:8080';
export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:9464';
/** TTL of positive DNS answers: short, so failover reaches clients quickly. */
export const DEFAULT_DNS_TTL_MS = 5_000;
/** TTL of NXDOMAIN and NODATA answers (the SOA minimum). */
export const DEFAULT_DNS_NEGATIVE_TTL_MS = 5_000;
/** Most addresses in one answer; they rotate between answers. */
export const DEFAULT_DNS_MAX_ANSWERS = 8;
/**
 * Most endpoints (hosts) in a headless service's A/AAAA or SRV answer, the same
 * ones for every type (the MCS DNS specification lets the subset be
 * implementation-defined): a TCP message would hold about 4,000 address records;
 * 100 keeps each answer to a few kilobytes.
 */
export const DNS_MAX_HEADLESS_ANSWERS = 100;
/** Our EDNS UDP payload size: the DNS flag day 2020 figure, which avoids IP fragmentation. */
export const DNS_UDP_PAYLOAD_SIZE = 1232;
/** A TCP connection idle this long is closed; at most this many are open. */
export const DEFAULT_DNS_TCP_IDLE_TIMEOUT_MS = 10_000;
export const DEFAULT_DNS_TCP_MAX_CONNECTIONS = 1_000;
/**
 * A TCP message must arrive whole within this of its first byte, and answers the
 * client does not read are given as long: Knot's tcp-io-timeout default. A query
 * fits one segment, so only a slow or hostile client comes near it.
 */
export const DEFAULT_DNS_TCP_IO_TIMEOUT_MS = 500;
/** Response rate limiting, as Knot's rrl module: responses per second per client prefix, name and answer class. */
export const DEFAULT_DNS_RRL_RATE = 20;
/** Every second limited response goes out truncated, so a real client retries over TCP (BIND's default). */
export const DEFAULT_DNS_RRL_SLIP = 2;
export const DEFAULT_DNS_RRL_IPV4_PREFIX = 24;
export const DEFAULT_DNS_RRL_IPV6_PREFIX = 56;
export const DEFAULT_DNS_RRL_TABLE_SIZE = 100_000;
/** What DNS answers point at: pod endpoints, the Service's load-balancer ingress, or the fedgate edge. */
export const DEFAULT_DNS_ADDRESSING = 'endpoints';

/** HTTP proxy limits and timeouts. Node's own defaults where it has one, Envoy's circuit-breaker figures otherwise. */
/** The whole request head must arrive within this (slowloris). */
export const DEFAULT_HTTP_HEADERS_TIMEOUT_MS = 10_000;
/** The whole request, body included, must arrive within this (Node's default). */
export const DEFAULT_HTTP_REQUEST_TIMEOUT_MS = 300_000;
/**
 * A request body that sends nothing for this long is abandoned: 408, its upstream
 * slot freed at once (nginx's client_body_timeout default).
 */
export const DEFAULT_HTTP_REQUEST_BODY_IDLE_TIMEOUT_MS = 60_000;
/**
 * A client that takes no response bytes for this long while fedgate has more to
 * send is cut off: the response ends short, its upstream slot freed at once
 * (nginx's send_timeout default).
 */
export const DEFAULT_HTTP_RESPONSE_SEND_IDLE_TIMEOUT_MS = 60_000;
/** A client connection idle this long between requests is closed (Node's default). */
export const DEFAULT_HTTP_IDLE_TIMEOUT_MS = 5_000;
/** Request head size and header count caps: beyond them, 431. */
export const DEFAULT_HTTP_MAX_HEADER_SIZE = 16_384;
export const DEFAULT_HTTP_MAX_HEADER_COUNT = 100;
/** Requests in flight to one endpoint (one connection each); more wait as pending. */
export const DEFAULT_HTTP_MAX_REQUESTS_PER_ENDPOINT = 256;
/** Requests of one service waiting for an endpoint slot; beyond this, 503 at once (Envoy: 1024). */
export const DEFAULT_HTTP_MAX_PENDING_PER_SERVICE = 1_024;
/**
 * HTTP/2 streams one client connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
 * RFC 9113 asks for no fewer than 100; Envoy's edge guidance sets 100; nginx's default is 128.
 * Node's own is unlimited: 2^32 - 1.
 */
export const DEFAULT_HTTP_MAX_CONCURRENT_STREAMS = 100;
/**
 * An HTTP/2 connection whose client reset at least half of its streams prematurely
 * (before the answer, within a second of opening) is closed once it has this many
 * streams, or at half this many premature resets before that (Envoy's
 * premature_reset_total_stream_count).
 */
export const DEFAULT_HTTP_PREMATURE_RESET_STREAMS = 500;
/**
 * Most of a service's request slots (endpoints × maxRequestsPerEndpoint) one client
 * netblock may hold, in flight and waiting: a quarter, so filling a service takes at
 * least four netblocks, while one busy NAT still gets a generous share.
 */
export const DEFAULT_HTTP_CLIENT_SHARE = 0.25;
/** …but never fewer than this many, so one user's browser (6 connections per origin, a WebSocket or two) is never refused on a small service. */
export const DEFAULT_HTTP_CLIENT_SHARE_FLOOR = 8;
/** One client is its IPv4 /24 or IPv6 /56 (as DNS RRL groups them): one host's or one site's addresses. */
export const DEFAULT_HTTP_CLIENT_IPV4_PREFIX = 24;
export const DEFAULT_HTTP_CLIENT_IPV6_PREFIX = 56;
/**
 * Open connections one client (netblock, as for clientShare) may hold to one fedgate
 * process, like nginx's limit_conn: room for a large NAT's browsers (HTTP/1.1 opens 6
 * per origin), while one host can no longer take every descriptor.
 */
export const DEFAULT_HTTP_MAX_CONNECTIONS_PER_CLIENT = 1024;
/** An upgraded tunnel (WebSocket) with no byte either way for this long is closed (nginx's proxy_read_timeout is 60 s; WebSocket apps that ping less often than hourly are rare). */
export const DEFAULT_HTTP_TUNNEL_IDLE_TIMEOUT_MS = 3_600_000;
/** Retries after the first try, each to another endpoint, preferring another cluster. */
export const DEFAULT_HTTP_RETRIES = 2;
/** Retries in flight may be at most this fraction of active requests (Envoy's retry budget: 20 %)… */
export const DEFAULT_HTTP_RETRY_BUDGET = 0.2;
/** …but this many are always allowed (Envoy's min_retry_concurrency). */
export const DEFAULT_HTTP_RETRY_MIN_CONCURRENCY = 3;
/** One try waits this long for the upstream's response head before it counts as a timeout. */
export const DEFAULT_HTTP_PER_TRY_TIMEOUT_MS = 15_000;
/** Only UNAVAILABLE: the one status the gRPC spec calls safe to retry for a call the server did not process. */
export const DEFAULT_HTTP_GRPC_RETRY_ON = ['unavailable'] as const;
/** A unary answer's message and trailers come within moments of each other; a stream's first messages wait no longer than this. */
export const DEFAULT_HTTP_GRPC_ANSWER_HOLD_MS = 50;
/** Gaps between upstream body chunks longer than this abort the response. */
export const DEFAULT_HTTP_UPSTREAM_BODY_TIMEOUT_MS = 300_000;
/** An upstream connection idle this long is closed (below Node's 5 s server default, so we close first). */
export const DEFAULT_HTTP_UPSTREAM_IDLE_TIMEOUT_MS = 4_000;
/** On SIGTERM, in-flight requests get this long to finish. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 25_000;
/** Whose locality picks the plan: the proxy's own (`self`) or the client's, by address. */
export const DEFAULT_HTTP_LOCALITY = 'self';
/** No per-request log lines unless asked: metrics count requests. */
export const DEFAULT_HTTP_ACCESS_LOG = false;

/** Envoy's locality overprovisioning factor: a tier keeps min(1, healthy × 1.4) of its traffic. */
export const DEFAULT_OVERPROVISIONING = 1.4;
/** Below this healthy fraction across the service, balance over all endpoints (Envoy: 50 %). */
export const DEFAULT_PANIC_THRESHOLD = 0.5;
/** The proxy's picker: power of two choices, least outstanding requests. */
export const DEFAULT_PICKER = 'p2c';

/** Active checks: a TCP connect to the service port unless the config asks for HTTP (a path every app serves does not exist). */
export const DEFAULT_HEALTH_CHECK_TYPE = 'tcp';
export const DEFAULT_HEALTH_GRPC_SERVICE = '';
export const DEFAULT_HEALTH_PATH = '/healthz';
/** HTTP checks pass on these statuses (Envoy's default: 200 only; we accept any 2xx/3xx as Kubernetes probes do). */
export const DEFAULT_HEALTH_EXPECTED_STATUSES = '200-399';
/** Each probe interval is spread by up to ± this fraction, so probes from replicas do not march in step. */
export const DEFAULT_HEALTH_JITTER = 0.1;
export const DEFAULT_HEALTH_INTERVAL_MS = 5_000;
/** After the proxy fails to reach an endpoint, its check runs this often until it has a verdict. */
export const DEFAULT_HEALTH_FAST_INTERVAL_MS = 200;
export const DEFAULT_HEALTH_TIMEOUT_MS = 1_000;
/**
 * Which services are checked on a schedule: only those annotated
 * fedgate.io/health-check: "true". Every endpoint is already behind its pod's
 * readiness probe; at 200,000 endpoints, checking all of them from 10 replicas is
 * 500 probes/s on each member for an interval of minutes (src/health/README.md).
 */
export const DEFAULT_HEALTH_SCOPE = 'annotated';
/** Probes in flight at once, each one socket: a few hundred, as Envoy and HAProxy users run. */
export const DEFAULT_HEALTH_MAX_IN_FLIGHT = 256;
/** Probe starts per second per replica: 1,000 checked endpoints at the 5 s interval. */
export const DEFAULT_HEALTH_MAX_PROBES_PER_SECOND = 200;
export const DEFAULT_HEALTHY_THRESHOLD = 2;
export const DEFAULT_UNHEALTHY_THRESHOLD = 3;
/** Outlier detection, as Envoy's defaults: 5 consecutive 5xx eject for 30 s, at most 10 % ejected. */
export const DEFAULT_OUTLIER_CONSECUTIVE_5XX = 5;
export const DEFAULT_OUTLIER_BASE_EJECTION_MS = 30_000;
export const DEFAULT_OUTLIER_MAX_EJECTION_PERCENT = 10;
/** Failures the proxy saw itself (connect failure, reset, timeout) in a row that eject an endpoint. */
export const DEFAULT_OUTLIER_CONSECUTIVE_GATEWAY_FAILURE = 5;
/** How often ejected endpoints are considered for return (Envoy: 10 s). */
export const DEFAULT_OUTLIER_INTERVAL_MS = 10_000;
/** An ejection never lasts longer than this, however often the endpoint was ejected (Envoy: 300 s). */
export const DEFAULT_OUTLIER_MAX_EJECTION_MS = 300_000;
/** Maglev lookup table size: a prime, as the Maglev paper and Envoy use. */
export const MAGLEV_TABLE_SIZE = 65_537;

/** Ready without every cluster once this has passed; the missing ones are reported. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 30_000;
/**
 * A watch silent this long (no event, no bookmark) is restarted. kube-apiserver
 * sends a bookmark about once a minute, so this must stay above that.
 */
export const DEFAULT_WATCH_SILENCE_LIMIT_MS = 90_000;
/** A list (one page) that takes longer than this is abandoned and retried with backoff. */
export const DEFAULT_LIST_TIMEOUT_MS = 30_000;
/** Objects per list page. */
export const DEFAULT_LIST_PAGE_SIZE = 500;

/** Watch restart backoff, as client-go's reflector: from 0.8 s, doubling, capped at 30 s. */
export const BACKOFF_INITIAL_MS = 800;
export const BACKOFF_FACTOR = 2;
export const BACKOFF_MAX_MS = 30_000;
/** The backoff starts over after this long without an error. */
export const BACKOFF_RESET_AFTER_MS = 120_000;
/** Each wait is shortened by up to this fraction at random, so replicas do not retry in step. */
export const BACKOFF_JITTER = 0.2;

/** The Lease one replica holds to write status back (client-go's leader election). */
export const DEFAULT_WRITEBACK_LEASE_NAMESPACE = 'fedgate-reader';
export const DEFAULT_WRITEBACK_LEASE_NAME = 'fedgate-writer';
/** A lease not renewed for this long may be taken by another replica (client-go's LeaseDuration). */
export const DEFAULT_WRITEBACK_LEASE_DURATION_MS = 15_000;
/** The leader gives up when it has not renewed for this long (client-go's RenewDeadline). */
export const DEFAULT_WRITEBACK_RENEW_DEADLINE_MS = 10_000;
/** How often to try to acquire or renew (client-go's RetryPeriod). */
export const DEFAULT_WRITEBACK_RETRY_PERIOD_MS = 2_000;

/**
 * Tracing (OpenTelemetry). Off by default: a collector must be named. 1 % of new traces
 * sampled (a sampled parent's are always); spans wait in a queue of 2048 (the
 * OpenTelemetry SDK's default) for batches to an OTLP/HTTP collector, each export given
 * 10s (the SDK's default).
 */
export const DEFAULT_TRACING_ENDPOINT = 'http://127.0.0.1:4318/v1/traces';
export const DEFAULT_TRACING_SAMPLING_RATIO = 0.01;
export const DEFAULT_TRACING_SERVICE_NAME = 'fedgate';
export const DEFAULT_TRACING_MAX_QUEUE_SIZE = 2048;
export const DEFAULT_TRACING_MAX_BATCH_SIZE = 512;
export const DEFAULT_TRACING_BATCH_DELAY_MS = 5_000;
export const DEFAULT_TRACING_EXPORT_TIMEOUT_MS = 10_000;
