// The configuration file's schema. One zod schema gives validation, the typed
// frozen config, the effective config printed back (codecs encode durations and
// addresses to the form a user writes) and the JSON Schema editors complete from.
import { isIP } from 'node:net';
import { z } from 'zod';
import { hostPort } from '../host-port.ts';
import * as D from './defaults.ts';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export function parseDuration(text: string): number {
  const m = DURATION.exec(text)!;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A duration written as 500ms, 30s, 2m or 1h; milliseconds inside. */
const duration = z.codec(
  z
    .string()
    .regex(DURATION, { error: 'expected a duration such as 500ms, 30s, 2m or 1h' })
    .meta({ description: 'A duration: a number and a unit (ms, s, m, h), e.g. 30s' }),
  z.number().nonnegative(),
  { decode: parseDuration, encode: formatDuration },
);

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

const LISTEN = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/;

/** Only for text that matched LISTEN. */
function parseListen(s: string): ListenAddress {
  const m = LISTEN.exec(s)!;
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** host:port, or [v6]:port. */
const listen = z.codec(
  z
    .string()
    .refine(
      (s) => {
        if (!LISTEN.test(s)) return false;
        const { host, port } = parseListen(s);
        const v6 = s.startsWith('[');
        return port <= 65535 && (v6 ? isIP(host) === 6 : isIP(host) === 4 || host === 'localhost');
      },
      { error: 'expected an address and port such as 0.0.0.0:53 or [::]:53' },
    )
    .meta({ description: 'host:port or [ipv6]:port' }),
  z.object({ host: z.string(), port: z.number().int() }),
  {
    decode: parseListen,
    encode: hostPort,
  },
);

export const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
  error: 'expected a DNS label: lower-case letters, digits and -, at most 63',
});
/** A DNS name; a trailing dot is accepted and dropped. */
const dnsName = z.codec(
  z
    .string()
    .regex(/^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.?$/, {
      error: 'expected a DNS name such as example.com',
    }),
  z.string(),
  { decode: (s) => s.replace(/\.$/, ''), encode: (s) => s },
);
/** A reverse zone: a DNS name at or under in-addr.arpa or ip6.arpa, whose labels an address can have. */
const reverseZone = dnsName.refine(
  (s) => {
    const labels = s.split('.');
    const tail = labels.splice(-2).join('.');
    if (tail === 'in-addr.arpa')
      return (
        labels.length <= 4 &&
        labels.every((l) => /^(0|[1-9][0-9]{0,2})$/.test(l) && Number(l) <= 255)
      );
    return tail === 'ip6.arpa' && labels.length <= 32 && labels.every((l) => /^[0-9a-f]$/.test(l));
  },
  { error: 'expected a reverse zone such as 10.in-addr.arpa or 8.b.d.0.1.0.0.2.ip6.arpa' },
);
const cidr = z.union([z.cidrv4(), z.cidrv6()], {
  error: 'expected an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or 2001:db8::/32',
});

const clusterSchema = z.strictObject({
  name: dnsLabel.meta({ description: 'The cluster id: unique, used in DNS names and metrics' }),
  kubeconfig: z
    .string()
    .min(1)
    .meta({ description: 'Path to the kubeconfig, relative to this file' }),
  context: z.string().min(1).optional().meta({ description: "Default: the kubeconfig's current" }),
  region: dnsLabel
    .optional()
    .meta({ description: 'Region of endpoints whose nodes carry no region label' }),
  weight: z.number().positive().default(D.DEFAULT_CLUSTER_WEIGHT),
});

const localitySchema = z.strictObject({
  cidr,
  region: dnsLabel,
  zone: dnsLabel.optional(),
  subzone: dnsLabel.optional(),
});

const STATUS_RANGE = /^([1-5]\d\d)(?:-([1-5]\d\d))?$/;
/** An HTTP status range, 200-399, or one status, 200; {min, max} inside. */
const statusRange = z.codec(
  z
    .string()
    .refine(
      (s) => {
        const m = STATUS_RANGE.exec(s);
        return m !== null && Number(m[1]) <= Number(m[2] ?? m[1]);
      },
      { error: 'expected a status or a range of statuses such as 200 or 200-399' },
    )
    .meta({ description: 'An HTTP status or range, e.g. 200-399' }),
  z.object({ min: z.number().int(), max: z.number().int() }),
  {
    decode: (s) => {
      const m = STATUS_RANGE.exec(s)!;
      return { min: Number(m[1]), max: Number(m[2] ?? m[1]) };
    },
    encode: (r) => (r.min === r.max ? `${r.min}` : `${r.min}-${r.max}`),
  },
);

const addressing = z.enum(['endpoints', 'ingress', 'proxy']);
const picker = z.enum(['p2c', 'round-robin', 'random', 'maglev']);

const hashOn = z.string().regex(/^(header:[A-Za-z0-9-]+|cookie:[A-Za-z0-9_.-]+|client-address)$/, {
  error: 'expected header:NAME, cookie:NAME or client-address',
});

const tunnelIdle = duration.meta({
  description:
    'An upgraded tunnel (WebSocket) with no byte either way for this long is closed, both sides; 0: never',
});

/** A subjectAltName the backend's certificate must carry, as BackendTLSPolicy writes it. */
const subjectAltName = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('Hostname'), hostname: z.string().min(1) }),
  z.strictObject({ type: z.literal('URI'), uri: z.url() }),
]);

/** One backend TLS profile: BackendTLSPolicy's `validation`, with files for its references. */
const backendTlsProfile = z
  .strictObject({
    caFiles: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .meta({ description: 'PEM files of the CA certificates to trust (one or more)' }),
    wellKnownCACertificates: z
      .literal('System')
      .optional()
      .meta({ description: "Trust Node's bundled and the system's CA certificates instead" }),
    hostname: z.string().min(1).meta({
      description: 'SNI, and the name the certificate must carry when subjectAltNames is not given',
    }),
    subjectAltNames: z.array(subjectAltName).min(1).optional().meta({
      description:
        'The certificate must carry one of these (Hostname: RFC 6125 wildcards; URI: exact); hostname is then only SNI',
    }),
    clientCertificate: z
      .strictObject({
        certFile: z.string().min(1).meta({ description: 'PEM certificate chain file' }),
        keyFile: z.string().min(1).meta({ description: 'PEM private key file' }),
      })
      .optional()
      .meta({ description: 'Presented to backends that ask for one (mutual TLS)' }),
  })
  .refine((p) => (p.caFiles === undefined) !== (p.wellKnownCACertificates === undefined), {
    error: 'give exactly one of caFiles and wellKnownCACertificates',
  });

export const configSchema = z.strictObject({
  federation: z.strictObject({
    name: dnsLabel,
    domain: dnsName,
    clustersetZone: dnsName.default(D.DEFAULT_CLUSTERSET_ZONE),
  }),
  self: z
    .strictObject({
      region: dnsLabel.optional(),
      zone: dnsLabel.optional(),
      subzone: dnsLabel.optional(),
      node: z.string().min(1).max(253).optional().meta({
        description:
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the reference as a user writes it
          "The Node this replica runs on, usually ${NODE_NAME} (the pod's spec.nodeName through the downward API): its topology labels give region, zone and subzone, ahead of the keys above",
      }),
      cluster: dnsLabel.optional().meta({
        description:
          'The member cluster (clusters[].name) whose API has self.node; default: the only member',
      }),
    })
    .prefault({})
    .meta({
      description:
        'Where this fedgate replica runs; FEDGATE_REGION, FEDGATE_ZONE and FEDGATE_SUBZONE in the environment win over self.node and these keys',
    }),
  clusters: z.array(clusterSchema).min(1, { error: 'at least one member cluster is needed' }),
  localities: z.array(localitySchema).default([]),
  dns: z
    .strictObject({
      listen: z
        .array(listen)
        .min(1)
        .default([parseListen(D.DEFAULT_DNS_LISTEN)])
        .meta({ description: 'UDP and TCP on each' }),
      ttl: duration.default(D.DEFAULT_DNS_TTL_MS),
      negativeTtl: duration.default(D.DEFAULT_DNS_NEGATIVE_TTL_MS),
      maxAnswers: z.number().int().min(1).max(64).default(D.DEFAULT_DNS_MAX_ANSWERS),
      addressing: addressing.default(D.DEFAULT_DNS_ADDRESSING),
      proxyAddresses: z
        .array(
          z.strictObject({
            region: dnsLabel,
            zone: dnsLabel.optional(),
            addresses: z.array(z.union([z.ipv4(), z.ipv6()])).min(1),
          }),
        )
        .default([])
        .meta({ description: "fedgate's edge addresses by locality, for `proxy` addressing" }),
      nameServers: z
        .array(
          z.strictObject({
            name: dnsName,
            addresses: z.array(z.union([z.ipv4(), z.ipv6()])).default([]),
          }),
        )
        .default([])
        .meta({ description: 'NS records of our zones; default ns.<zone>' }),
      reverseZones: z.array(reverseZone).default([]).meta({
        description:
          "Reverse zones (under in-addr.arpa or ip6.arpa) fedgate answers authoritatively: PTR from each ready headless endpoint's address to its <hostname>.<cluster>.<svc>.<ns>.svc.<clustersetZone> name, NXDOMAIN for other addresses. Off ([]) by default: member clusters' DNS usually answers for pod addresses",
      }),
      tcp: z
        .strictObject({
          idleTimeout: duration.default(D.DEFAULT_DNS_TCP_IDLE_TIMEOUT_MS).meta({
            description: 'A connection without traffic this long is closed',
          }),
          ioTimeout: duration.default(D.DEFAULT_DNS_TCP_IO_TIMEOUT_MS).meta({
            description:
              "Most time from a message's first byte to its last, and for the client to read answers; 0ms: none",
          }),
          maxConnections: z.number().int().min(1).default(D.DEFAULT_DNS_TCP_MAX_CONNECTIONS).meta({
            description:
              'Open connections per listener at most; a new one closes the one idle longest',
          }),
        })
        .prefault({}),
      rrl: z
        .strictObject({
          enabled: z.boolean().default(true),
          responsesPerSecond: z.number().int().min(1).default(D.DEFAULT_DNS_RRL_RATE),
          slip: z.number().int().min(0).max(10).default(D.DEFAULT_DNS_RRL_SLIP),
          ipv4Prefix: z.number().int().min(8).max(32).default(D.DEFAULT_DNS_RRL_IPV4_PREFIX),
          ipv6Prefix: z.number().int().min(16).max(128).default(D.DEFAULT_DNS_RRL_IPV6_PREFIX),
          dryRun: z.boolean().default(false),
          tableSize: z.number().int().min(100).default(D.DEFAULT_DNS_RRL_TABLE_SIZE),
        })
        .prefault({}),
    })
    .prefault({}),
  http: z
    .strictObject({
      listen: z
        .array(listen)
        .default([parseListen(D.DEFAULT_HTTP_LISTEN)])
        .meta({ description: 'Plain HTTP/1.1 listeners; [] for none' }),
      tls: z
        .strictObject({
          listen: z.array(listen).min(1),
          certificates: z
            .array(
              z.strictObject({
                cert: z.string().min(1).meta({ description: 'PEM certificate chain file' }),
                key: z.string().min(1).meta({ description: 'PEM private key file' }),
              }),
            )
            .min(1)
            .meta({
              description:
                "Chosen by SNI against each certificate's names; the first is the default",
            }),
        })
        .optional()
        .meta({ description: 'TLS listeners offering HTTP/2 and HTTP/1.1 (ALPN)' }),
      aliases: z
        .record(z.string().min(1), z.string().regex(/^[a-z0-9-]+\/[a-z0-9-]+$/))
        .default({})
        .meta({ description: 'Extra host name → namespace/service' }),
      locality: z.enum(['self', 'client']).default(D.DEFAULT_HTTP_LOCALITY).meta({
        description: "Route from fedgate's own locality (self) or the client's (by address)",
      }),
      accessLog: z.boolean().default(D.DEFAULT_HTTP_ACCESS_LOG).meta({
        description: 'Log one line per proxied request (info level)',
      }),
      retries: z
        .strictObject({
          attempts: z.number().int().min(0).max(5).default(D.DEFAULT_HTTP_RETRIES),
          budget: z.number().min(0).max(1).default(D.DEFAULT_HTTP_RETRY_BUDGET),
          minConcurrency: z.number().int().min(0).default(D.DEFAULT_HTTP_RETRY_MIN_CONCURRENCY),
          perTryTimeout: duration.default(D.DEFAULT_HTTP_PER_TRY_TIMEOUT_MS),
          grpcRetryOn: z
            .array(
              z.enum([
                'cancelled',
                'deadline-exceeded',
                'internal',
                'resource-exhausted',
                'unavailable',
              ]),
            )
            .default([...D.DEFAULT_HTTP_GRPC_RETRY_ON])
            .meta({
              description:
                "gRPC statuses of a trailers-only answer that retry a call elsewhere (Envoy's retry_on names); the call must not have started its request body, and the retry fits the retry budget",
            }),
          grpcAnswerHold: duration.default(D.DEFAULT_HTTP_GRPC_ANSWER_HOLD_MS).meta({
            description:
              "How long a gRPC answer is held back whole (at most 64 KiB) once its request has ended, before it streams to the client: a backend that dies before the answer's trailers has the call sent elsewhere. 0: never held",
          }),
        })
        .prefault({}),
      timeouts: z
        .strictObject({
          headers: duration.default(D.DEFAULT_HTTP_HEADERS_TIMEOUT_MS),
          request: duration.default(D.DEFAULT_HTTP_REQUEST_TIMEOUT_MS),
          idle: duration.default(D.DEFAULT_HTTP_IDLE_TIMEOUT_MS),
          requestBodyIdle: duration.default(D.DEFAULT_HTTP_REQUEST_BODY_IDLE_TIMEOUT_MS).meta({
            description:
              'Longest silence while a request body is being read; then 408, the upstream request aborted and the connection closed',
          }),
          responseSendIdle: duration.default(D.DEFAULT_HTTP_RESPONSE_SEND_IDLE_TIMEOUT_MS).meta({
            description:
              'Longest time a client may take no response bytes while more wait to be sent; then the response is cut, the upstream request aborted and the connection closed',
          }),
          upstreamBody: duration.default(D.DEFAULT_HTTP_UPSTREAM_BODY_TIMEOUT_MS),
          upstreamIdle: duration.default(D.DEFAULT_HTTP_UPSTREAM_IDLE_TIMEOUT_MS),
          tunnelIdle: tunnelIdle.default(D.DEFAULT_HTTP_TUNNEL_IDLE_TIMEOUT_MS),
        })
        .prefault({}),
      limits: z
        .strictObject({
          maxHeaderSize: z.number().int().min(1024).default(D.DEFAULT_HTTP_MAX_HEADER_SIZE),
          maxHeaderCount: z.number().int().min(8).default(D.DEFAULT_HTTP_MAX_HEADER_COUNT),
          maxRequestsPerEndpoint: z
            .number()
            .int()
            .min(1)
            .default(D.DEFAULT_HTTP_MAX_REQUESTS_PER_ENDPOINT),
          maxPendingPerService: z
            .number()
            .int()
            .min(0)
            .default(D.DEFAULT_HTTP_MAX_PENDING_PER_SERVICE),
          maxConcurrentStreams: z
            .number()
            .int()
            .min(1)
            .default(D.DEFAULT_HTTP_MAX_CONCURRENT_STREAMS)
            .meta({
              description:
                'HTTP/2: streams one client connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)',
            }),
          prematureResetStreams: z
            .number()
            .int()
            .min(0)
            .default(D.DEFAULT_HTTP_PREMATURE_RESET_STREAMS)
            .meta({
              description:
                'HTTP/2: a connection that reset half of its streams within 1 s and before their answer is closed (GOAWAY) once it has this many streams, or this many / 2 such resets; 0: never',
            }),
          clientShare: z.number().min(0).max(1).default(D.DEFAULT_HTTP_CLIENT_SHARE).meta({
            description:
              "Most of a service's request slots (endpoints × maxRequestsPerEndpoint) one client netblock may hold, in flight and waiting; beyond it 429 at once. 0: no per-client cap",
          }),
          clientShareFloor: z
            .number()
            .int()
            .min(1)
            .default(D.DEFAULT_HTTP_CLIENT_SHARE_FLOOR)
            .meta({
              description: 'A client may always hold this many, whatever clientShare gives',
            }),
          clientIpv4Prefix: z
            .number()
            .int()
            .min(8)
            .max(32)
            .default(D.DEFAULT_HTTP_CLIENT_IPV4_PREFIX)
            .meta({ description: 'IPv4 clients are grouped by this prefix for clientShare' }),
          clientIpv6Prefix: z
            .number()
            .int()
            .min(16)
            .max(128)
            .default(D.DEFAULT_HTTP_CLIENT_IPV6_PREFIX)
            .meta({ description: 'IPv6 clients are grouped by this prefix for clientShare' }),
          maxConnectionsPerClient: z
            .number()
            .int()
            .min(0)
            .default(D.DEFAULT_HTTP_MAX_CONNECTIONS_PER_CLIENT)
            .meta({
              description:
                'Open connections one client (netblock, by clientIpv4Prefix and clientIpv6Prefix) may hold to one fedgate process; one more is closed as it is accepted. 0: no cap',
            }),
        })
        .prefault({}),
      drainTimeout: duration
        .default(D.DEFAULT_DRAIN_TIMEOUT_MS)
        .meta({ description: 'On SIGTERM, how long in-flight requests may take to finish' }),
    })
    .prefault({}),
  admin: z
    .strictObject({ listen: listen.default(parseListen(D.DEFAULT_ADMIN_LISTEN)) })
    .prefault({}),
  tracing: z
    .strictObject({
      enabled: z
        .boolean()
        .default(false)
        .meta({ description: 'Export a span per proxied request (and per try) with OTLP' }),
      endpoint: z
        .url({ protocol: /^https?$/ })
        .default(D.DEFAULT_TRACING_ENDPOINT)
        .meta({ description: "The collector's OTLP/HTTP traces URL (protobuf)" }),
      samplingRatio: z.number().min(0).max(1).default(D.DEFAULT_TRACING_SAMPLING_RATIO).meta({
        description:
          'Share of new traces sampled; a request whose traceparent is sampled (or not) follows its parent',
      }),
      serviceName: z
        .string()
        .min(1)
        .default(D.DEFAULT_TRACING_SERVICE_NAME)
        .meta({ description: 'The service.name resource attribute of the spans' }),
      maxQueueSize: z.int().min(1).default(D.DEFAULT_TRACING_MAX_QUEUE_SIZE).meta({
        description:
          'Ended spans waiting for export, at most; more are dropped and counted (fedgate_tracing_spans_dropped_total)',
      }),
      maxBatchSize: z
        .int()
        .min(1)
        .default(D.DEFAULT_TRACING_MAX_BATCH_SIZE)
        .meta({ description: 'Spans in one export request, at most' }),
      batchDelay: duration
        .default(D.DEFAULT_TRACING_BATCH_DELAY_MS)
        .meta({ description: 'How long spans wait to fill a batch before it is sent' }),
      exportTimeout: duration.default(D.DEFAULT_TRACING_EXPORT_TIMEOUT_MS).meta({
        description:
          'One export request may take this long; then it fails and its spans are dropped',
      }),
    })
    .refine((t) => t.maxBatchSize <= t.maxQueueSize, {
      error: 'maxBatchSize must not exceed maxQueueSize',
    })
    .prefault({}),
  routing: z
    .strictObject({
      overprovisioning: z.number().min(1).default(D.DEFAULT_OVERPROVISIONING),
      panicThreshold: z.number().min(0).max(1).default(D.DEFAULT_PANIC_THRESHOLD),
      failoverOrder: z
        .record(dnsLabel, z.array(dnsLabel))
        .default({})
        .meta({ description: 'Per client region, the other regions in the order to fail over' }),
      picker: picker.default(D.DEFAULT_PICKER),
      hashOn: hashOn.optional(),
      services: z
        .record(
          z.string().regex(/^[a-z0-9-]+\/[a-z0-9-]+$/, { error: 'expected namespace/service' }),
          z.strictObject({
            picker: picker.optional(),
            hashOn: hashOn.optional(),
            tunnelIdle: tunnelIdle.optional(),
            tls: z.string().min(1).optional().meta({
              description:
                'The routing.backendTLS profile its endpoints are dialled with; wins over the fedgate.io/backend-tls annotation',
            }),
          }),
        )
        .default({})
        .meta({
          description:
            'Per namespace/service picker, affinity, tunnel idle timeout and backend TLS profile; wins over the fedgate.io/lb-policy and fedgate.io/backend-tls annotations and http.timeouts.tunnelIdle',
        }),
      backendTLS: z
        .record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/), backendTlsProfile)
        .default({})
        .meta({
          description:
            'TLS profiles toward backends by name (after Gateway API BackendTLSPolicy validation), named by routing.services[].tls or the fedgate.io/backend-tls annotation',
        }),
    })
    .prefault({}),
  health: z
    .strictObject({
      active: z
        .strictObject({
          enabled: z.boolean().default(true),
          scope: z.enum(['all', 'annotated']).default(D.DEFAULT_HEALTH_SCOPE).meta({
            description:
              'Services checked on a schedule: all (unless annotated fedgate.io/health-check: "false") or annotated (only those annotated "true"); any endpoint the proxy fails to reach is checked either way',
          }),
          maxInFlight: z.number().int().min(1).default(D.DEFAULT_HEALTH_MAX_IN_FLIGHT).meta({
            description: 'Probes in flight at once (one socket each), across all targets',
          }),
          maxProbesPerSecond: z
            .number()
            .positive()
            .default(D.DEFAULT_HEALTH_MAX_PROBES_PER_SECOND)
            .meta({
              description:
                "Probe starts per second; with more targets than interval allows, every target's interval stretches evenly",
            }),
          type: z.enum(['tcp', 'http', 'grpc']).default(D.DEFAULT_HEALTH_CHECK_TYPE).meta({
            description:
              'tcp: a connect; http: GET path, status in expectedStatuses; grpc: grpc.health.v1.Health/Check of grpcService, SERVING passes',
          }),
          grpcService: z.string().default(D.DEFAULT_HEALTH_GRPC_SERVICE).meta({
            description:
              "type grpc: the service name the Health/Check asks about; '' asks about the server as a whole",
          }),
          path: z.string().startsWith('/').default(D.DEFAULT_HEALTH_PATH),
          expectedStatuses: statusRange.default(
            statusRange.parse(D.DEFAULT_HEALTH_EXPECTED_STATUSES),
          ),
          port: z
            .union([z.number().int().min(1).max(65535), z.string().min(1)])
            .optional()
            .meta({ description: "A Service port's name or number; default: the first port" }),
          jitter: z.number().min(0).max(0.5).default(D.DEFAULT_HEALTH_JITTER),
          interval: duration.default(D.DEFAULT_HEALTH_INTERVAL_MS),
          fastInterval: duration
            .default(D.DEFAULT_HEALTH_FAST_INTERVAL_MS)
            .meta({ description: 'After the proxy fails to reach an endpoint: probe this often' }),
          timeout: duration.default(D.DEFAULT_HEALTH_TIMEOUT_MS),
          healthyThreshold: z.number().int().min(1).default(D.DEFAULT_HEALTHY_THRESHOLD),
          unhealthyThreshold: z.number().int().min(1).default(D.DEFAULT_UNHEALTHY_THRESHOLD),
          services: z
            .record(
              z.string().regex(/^[a-z0-9-]+\/[a-z0-9-]+$/, { error: 'expected namespace/service' }),
              z.strictObject({
                type: z.enum(['tcp', 'http', 'grpc']).optional(),
                grpcService: z.string().optional(),
                path: z.string().startsWith('/').optional(),
                expectedStatuses: statusRange.optional(),
                port: z.union([z.number().int().min(1).max(65535), z.string().min(1)]).optional(),
              }),
            )
            .default({})
            .meta({
              description:
                'Per namespace/service check: type, grpcService, path, expectedStatuses and port in place of the ones above (a gRPC service among HTTP ones is checked with type grpc)',
            }),
        })
        .prefault({}),
      outlier: z
        .strictObject({
          consecutive5xx: z.number().int().min(1).default(D.DEFAULT_OUTLIER_CONSECUTIVE_5XX),
          consecutiveGatewayFailure: z
            .number()
            .int()
            .min(1)
            .default(D.DEFAULT_OUTLIER_CONSECUTIVE_GATEWAY_FAILURE),
          interval: duration.default(D.DEFAULT_OUTLIER_INTERVAL_MS),
          maxEjectionTime: duration.default(D.DEFAULT_OUTLIER_MAX_EJECTION_MS),
          baseEjectionTime: duration.default(D.DEFAULT_OUTLIER_BASE_EJECTION_MS),
          maxEjectionPercent: z
            .number()
            .min(0)
            .max(100)
            .default(D.DEFAULT_OUTLIER_MAX_EJECTION_PERCENT),
        })
        .prefault({}),
    })
    .prefault({}),
  gatewayAPI: z
    .strictObject({
      clusters: z.array(dnsLabel).default([]).meta({
        description:
          'Member clusters (names from clusters[]) whose Gateway API objects fedgate reads: GatewayClasses, Gateways, HTTPRoutes, GRPCRoutes, ReferenceGrants, and the Namespaces and TLS Secrets they name; [] turns the Gateway API off',
      }),
      listeners: z
        .array(
          z.strictObject({
            port: z
              .number()
              .int()
              .min(1)
              .max(65535)
              .meta({ description: "A Gateway listener's port" }),
            protocol: z.enum(['HTTP', 'HTTPS']).meta({
              description: 'HTTP maps onto a plain listener (http.listen), HTTPS onto a TLS one',
            }),
            address: listen.meta({
              description:
                'The fedgate listener it is served on: one of http.listen (HTTP) or http.tls.listen (HTTPS)',
            }),
          }),
        )
        .optional()
        .meta({
          description:
            'Which fedgate listener serves each Gateway listener port and protocol; default: every fedgate listener serves the Gateway listeners of its own port (HTTP on http.listen, HTTPS on http.tls.listen)',
        }),
    })
    .prefault({}),
  writeBack: z
    .strictObject({
      enabled: z.boolean().default(false).meta({
        description:
          'One replica, elected on a Lease, writes ServiceExport conditions and ServiceImports to the members; every replica keeps serving',
      }),
      identity: z.string().min(1).max(128).optional().meta({
        description:
          "This replica's holderIdentity on the Lease; default: the host name, process id and a random suffix",
      }),
      lease: z
        .strictObject({
          namespace: dnsLabel.default(D.DEFAULT_WRITEBACK_LEASE_NAMESPACE).meta({
            description:
              "The Lease's namespace, in the first of gatewayAPI.clusters, else of clusters",
          }),
          name: dnsLabel.default(D.DEFAULT_WRITEBACK_LEASE_NAME),
          duration: duration.default(D.DEFAULT_WRITEBACK_LEASE_DURATION_MS).meta({
            description: 'A lease not renewed for this long may be taken by another replica',
          }),
          renewDeadline: duration.default(D.DEFAULT_WRITEBACK_RENEW_DEADLINE_MS).meta({
            description: 'The leader stops writing when it has not renewed for this long',
          }),
          retryPeriod: duration
            .default(D.DEFAULT_WRITEBACK_RETRY_PERIOD_MS)
            .meta({ description: 'How often to try to acquire or renew the lease' }),
        })
        .prefault({})
        // client-go's checks: a leader must stop before another may take over, and
        // must get more than one try (jittered by 1.2) inside its deadline.
        .refine((l) => l.duration > l.renewDeadline, {
          error: 'duration must be greater than renewDeadline',
        })
        .refine((l) => l.renewDeadline > 1.2 * l.retryPeriod, {
          error: 'renewDeadline must be greater than 1.2 × retryPeriod',
        }),
      skipServiceImports: z.array(dnsLabel).default([]).meta({
        description:
          'Member clusters that get no ServiceImports from fedgate (they run another MCS implementation)',
      }),
    })
    .prefault({}),
  watch: z
    .strictObject({
      startupTimeout: duration.default(D.DEFAULT_STARTUP_TIMEOUT_MS),
      silenceLimit: duration.default(D.DEFAULT_WATCH_SILENCE_LIMIT_MS),
      listTimeout: duration.default(D.DEFAULT_LIST_TIMEOUT_MS),
      pageSize: z.number().int().min(1).max(10_000).default(D.DEFAULT_LIST_PAGE_SIZE),
    })
    .prefault({}),
});

/** The validated configuration: frozen all the way down. */
export type Config = z.output<typeof configSchema>;
export type ClusterConfig = Config['clusters'][number];
export type BackendTlsProfile = Config['routing']['backendTLS'][string];
export type GatewayListenerConfig = NonNullable<Config['gatewayAPI']['listeners']>[number];
export type ConfigInput = z.input<typeof configSchema>;

export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'fedgate configuration',
  };
}
