// How a host and a port are written together: `host:port`, with an IPv6 literal in
// brackets (`[::1]:53`) so its colons are not read as the port's separator. The one
// rule for listener keys, upstream and probe URLs, and what messages print.

export interface HostAndPort {
  readonly host: string;
  readonly port?: number | string | undefined;
}

/** `host:port` or `[v6]:port`; with no port, the host as it goes before one. */
export function hostPort(at: HostAndPort): string {
  const host = at.host.includes(':') ? `[${at.host}]` : at.host;
  return at.port === undefined ? host : `${host}:${at.port}`;
}
