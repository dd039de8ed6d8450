// How the proxy speaks to a service's endpoints: which service port, which protocol
// on it, and over TLS or not. The port's appProtocol decides, as the Kubernetes API
// defines it and Istio reads it (`kubernetes.io/h2c`, `grpc`: HTTP/2 with prior
// knowledge; `https`: TLS, HTTP/2 when the backend offers it by ALPN; `kubernetes.io/ws`
// and `kubernetes.io/wss`: WebSocket over HTTP/1.1, in clear or over TLS; `http` or
// none: HTTP/1.1). The annotation fedgate.io/backend-protocol overrides it for the
// service, and a backend TLS profile puts any protocol over TLS.
import type { ConnectionOptions } from 'node:tls';
import type { FederatedService, PortRecord } from '../catalog/model.ts';
import type { BackendTlsContext } from './backend-tls.ts';

/** The protocols fedgate tells apart, in the annotation's own spellings. */
export type BackendProtocol = 'http' | 'h2c' | 'grpc' | 'https' | 'ws' | 'wss';

/** appProtocol and annotation values, Kubernetes' and Istio's spellings included. */
const PROTOCOLS: Readonly<Record<string, BackendProtocol>> = {
  http: 'http',
  h2c: 'h2c',
  'kubernetes.io/h2c': 'h2c',
  grpc: 'grpc',
  https: 'https',
  ws: 'ws',
  'kubernetes.io/ws': 'ws',
  wss: 'wss',
  'kubernetes.io/wss': 'wss',
};

/** Service port names that say the port is the one to proxy to. */
const PORT_NAMES = new Set(['grpc', 'https', 'h2c']);

/** A protocol value, or undefined when fedgate does not know it. */
export function parseBackendProtocol(value: string): BackendProtocol | undefined {
  return PROTOCOLS[value.trim().toLowerCase()];
}

/**
 * The port the proxy sends to: the one named http or with appProtocol http (as
 * before), else one named grpc, https or h2c or with an appProtocol fedgate knows,
 * else the first TCP port.
 */
export function proxiedPort(ports: readonly PortRecord[]): PortRecord | undefined {
  const tcp = ports.filter((p) => p.protocol === 'TCP');
  return (
    tcp.find((p) => p.name === 'http' || p.appProtocol === 'http') ??
    tcp.find(
      (p) =>
        PORT_NAMES.has(p.name) ||
        (p.appProtocol !== undefined && parseBackendProtocol(p.appProtocol) !== undefined),
    ) ??
    tcp[0]
  );
}

/** How the transport dials an endpoint. */
export interface Wire {
  /** HTTP/2: with prior knowledge in clear, offered by ALPN over TLS. */
  readonly h2: boolean;
  /** TLS options; undefined: in clear. */
  readonly tls: BackendTlsContext | undefined;
}

/** What the service says, and the problem with its annotation when it says something unknown. */
export interface ProtocolChoice {
  readonly protocol: BackendProtocol;
  /** The annotation's value when fedgate does not know it (the port's appProtocol was used). */
  readonly unknown: string | undefined;
}

/** The annotation, else the port's appProtocol, else HTTP/1.1. */
export function chooseProtocol(
  svc: FederatedService,
  port: PortRecord | undefined,
): ProtocolChoice {
  const fromPort =
    (port?.appProtocol !== undefined ? parseBackendProtocol(port.appProtocol) : undefined) ??
    'http';
  const annotated = svc.backendProtocol;
  if (annotated === undefined || annotated.trim() === '') {
    return { protocol: fromPort, unknown: undefined };
  }
  const parsed = parseBackendProtocol(annotated);
  return parsed
    ? { protocol: parsed, unknown: undefined }
    : { protocol: fromPort, unknown: annotated };
}

/**
 * The wire for a protocol and the service's TLS profile. A profile puts any protocol
 * over TLS (HTTP/2 offered by ALPN when the protocol is HTTP/2 or https); `https` and
 * `wss` without one are verified against the system's CAs, the name being the
 * service's cluster-local one, `<name>.<namespace>.svc`.
 */
export function wireFor(
  protocol: BackendProtocol,
  svc: FederatedService,
  profile: BackendTlsContext | undefined,
): Wire {
  const h2 = protocol === 'h2c' || protocol === 'grpc' || protocol === 'https';
  if (profile) return { h2, tls: profile };
  if (protocol === 'https' || protocol === 'wss') return { h2, tls: systemTls(svc) };
  return { h2, tls: undefined };
}

const systemContexts = new Map<string, BackendTlsContext>();

/** TLS verified against the system's CAs, for `<name>.<namespace>.svc`: one context per name. */
function systemTls(svc: FederatedService): BackendTlsContext {
  const servername = `${svc.name}.${svc.namespace}.svc`;
  let ctx = systemContexts.get(servername);
  if (!ctx) {
    const options: ConnectionOptions = { servername, rejectUnauthorized: true };
    ctx = { key: `system ${servername}`, options };
    systemContexts.set(servername, ctx);
  }
  return ctx;
}
