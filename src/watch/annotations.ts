// Annotations and labels fedgate reads on member-cluster objects: names users meet.

/** On a Service: "true" opts it into the federation where ServiceExport is not installed (and works everywhere). */
export const FEDERATE_ANNOTATION = 'fedgate.io/federate';
/** On a Service: extra HTTP host names, comma-separated, that route to it. */
export const HOSTS_ANNOTATION = 'fedgate.io/hosts';
/** On a Service: what DNS answers point at for it: endpoints, ingress or proxy (default: dns.addressing). */
export const DNS_MODE_ANNOTATION = 'fedgate.io/dns-mode';
/**
 * On a Service: the proxy's picker for it, `p2c`, `round-robin`, `random` or `maglev`,
 * with Maglev's key as `maglev:header:NAME`, `maglev:cookie:NAME` or `maglev:client-address`.
 */
export const LB_POLICY_ANNOTATION = 'fedgate.io/lb-policy';
/**
 * On a Service: "true" or "false", whether fedgate actively health-checks its
 * endpoints; absent, the config's health.active.scope decides.
 */
export const HEALTH_CHECK_ANNOTATION = 'fedgate.io/health-check';
/**
 * On a Service: the protocol the proxy speaks to its endpoints, overriding the
 * service port's appProtocol: `http` (HTTP/1.1), `h2c` (HTTP/2 in clear, prior
 * knowledge), `grpc` (the same), `https` (TLS, HTTP/2 when the backend offers it by
 * ALPN), `ws` or `wss`. Also takes the appProtocol spellings (`kubernetes.io/h2c`).
 */
export const BACKEND_PROTOCOL_ANNOTATION = 'fedgate.io/backend-protocol';
/** On a Service: the name of the backend TLS profile (config routing.backendTLS) its endpoints are dialled with. */
export const BACKEND_TLS_ANNOTATION = 'fedgate.io/backend-tls';
/** The label an EndpointSlice carries naming its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const REGION_LABEL = 'topology.kubernetes.io/region';
/** Istio's subzone label on a Node: a finer locality inside a zone (a rack, a cell). */
export const SUBZONE_LABEL = 'topology.istio.io/subzone';
