// gatewayAPI: which member clusters' Gateway API objects are read, and which fedgate
// listener serves each Gateway listener port. The checks the schema cannot make (names
// that are members, addresses that are fedgate's listeners) and the effective mapping.
import { hostPort } from '../host-port.ts';
import type { Config, ListenAddress } from './schema.ts';

/** One Gateway listener port and protocol served on one fedgate listener (`host:port`). */
export interface GatewayListenerMapping {
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly address: string;
}

/**
 * gatewayAPI.listeners as given, or by default every fedgate listener serving the
 * Gateway listeners of its own port: HTTP on http.listen, HTTPS on http.tls.listen.
 * A port with no entry is served nowhere (its Gateway listeners are not programmed).
 */
export function gatewayListenerMappings(config: Config): GatewayListenerMapping[] {
  const given = config.gatewayAPI.listeners;
  if (given !== undefined) {
    return given.map((l) => ({ port: l.port, protocol: l.protocol, address: hostPort(l.address) }));
  }
  const own = (protocol: 'HTTP' | 'HTTPS', a: ListenAddress): GatewayListenerMapping => ({
    port: a.port,
    protocol,
    address: hostPort(a),
  });
  return [
    ...config.http.listen.map((a) => own('HTTP', a)),
    ...(config.http.tls?.listen ?? []).map((a) => own('HTTPS', a)),
  ];
}

/** Problems with gatewayAPI, each naming its field. */
export function gatewayApiProblems(config: Config): string[] {
  const problems: string[] = [];
  const members = config.clusters.map((c) => c.name);
  const seen = new Set<string>();
  for (const [i, name] of config.gatewayAPI.clusters.entries()) {
    if (!members.includes(name)) {
      problems.push(
        `gatewayAPI.clusters[${i}]: "${name}" is not a member cluster (clusters[].name: ${members.join(', ')})`,
      );
    }
    if (seen.has(name)) problems.push(`gatewayAPI.clusters[${i}]: "${name}" is named twice`);
    seen.add(name);
  }
  const plain = config.http.listen.map(hostPort);
  const tls = (config.http.tls?.listen ?? []).map(hostPort);
  for (const [i, l] of (config.gatewayAPI.listeners ?? []).entries()) {
    const address = hostPort(l.address);
    const [field, allowed] =
      l.protocol === 'HTTP' ? ['http.listen', plain] : ['http.tls.listen', tls];
    if (!allowed.includes(address)) {
      problems.push(
        `gatewayAPI.listeners[${i}].address: ${address} is not in ${field} (${allowed.join(', ') || 'none'}), where ${l.protocol} is served`,
      );
    }
  }
  return problems;
}
