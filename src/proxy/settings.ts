// What the proxy's parts take from the configuration: the upstream pools' options
// and the forwarder's settings (the host table's rules come from hosts.ts). A
// reload derives them again from the new configuration and hands them over at commit.
import type { Config } from '../config/schema.ts';
import type { ClientConnectionSettings } from './client-connections.ts';
import type { ForwardSettings } from './forward.ts';
import { grpcRetryStatuses } from './grpc.ts';
import type { UpstreamOptions } from './upstreams.ts';

export function upstreamOptions(http: Config['http']): UpstreamOptions {
  return {
    maxRequestsPerEndpoint: http.limits.maxRequestsPerEndpoint,
    maxPendingPerService: http.limits.maxPendingPerService,
    connectTimeoutMs: http.retries.perTryTimeout || 10_000,
    idleTimeoutMs: http.timeouts.upstreamIdle,
    bodyTimeoutMs: http.timeouts.upstreamBody,
  };
}

/** Whether the upstream pools must be rebuilt: their options changed. */
export function upstreamOptionsChanged(before: Config['http'], next: Config['http']): boolean {
  return JSON.stringify(upstreamOptions(before)) !== JSON.stringify(upstreamOptions(next));
}

export function forwardSettings(config: Config): ForwardSettings {
  const http = config.http;
  return {
    locality: http.locality,
    retries: { ...http.retries, grpcRetryOn: grpcRetryStatuses(http.retries.grpcRetryOn) },
    maxHeaderCount: http.limits.maxHeaderCount,
    requestBodyIdle: http.timeouts.requestBodyIdle,
    responseSendIdle: http.timeouts.responseSendIdle,
    picker: config.routing.picker,
    hashOn: config.routing.hashOn,
    tunnelIdle: http.timeouts.tunnelIdle,
    clients: {
      share: http.limits.clientShare,
      floor: http.limits.clientShareFloor,
      perEndpoint: http.limits.maxRequestsPerEndpoint,
      ipv4Prefix: http.limits.clientIpv4Prefix,
      ipv6Prefix: http.limits.clientIpv6Prefix,
    },
    services: config.routing.services,
  };
}

export function clientConnectionSettings(http: Config['http']): ClientConnectionSettings {
  return {
    max: http.limits.maxConnectionsPerClient,
    ipv4Prefix: http.limits.clientIpv4Prefix,
    ipv6Prefix: http.limits.clientIpv6Prefix,
  };
}
