// Hostnames as the Gateway API reads them: `*.example.com` is a suffix match of one
// or more labels (it matches `a.example.com` and `a.b.example.com`, never
// `example.com`); anything else matches itself, case-insensitively. A route's
// hostnames and its listener's intersect to the names the route serves there.

const lower = (name: string): string => name.toLowerCase();

const isWildcard = (name: string): boolean => name.startsWith('*.');

/** `*.example.com` → `.example.com`: what a name under the wildcard ends with. */
const suffixOf = (wildcard: string): string => wildcard.slice(1);

/** Does the pattern (exact or wildcard) match this concrete host name? */
export function hostnameMatches(pattern: string, host: string): boolean {
  const p = lower(pattern);
  const h = lower(host);
  if (!isWildcard(p)) return p === h;
  const suffix = suffixOf(p);
  return h.length > suffix.length && h.endsWith(suffix);
}

/**
 * The names one route hostname and one listener hostname have in common: the more
 * specific of the two when one contains the other, else none. Wildcards follow
 * the spec: `*.example.com` contains `*.a.example.com` and `a.example.com`.
 */
export function intersectHostname(route: string, listener: string): string | undefined {
  const r = lower(route);
  const l = lower(listener);
  if (r === l) return r;
  if (isWildcard(l) && hostnameMatches(l, isWildcard(r) ? r.slice(2) : r)) return r;
  if (isWildcard(r) && hostnameMatches(r, isWildcard(l) ? l.slice(2) : l)) return l;
  return undefined;
}

/**
 * The hostnames a route serves on a listener: '' stands for any host. Route
 * hostnames that do not meet the listener's are ignored; an empty result means
 * the route does not attach there (NoMatchingListenerHostname).
 */
export function intersectHostnames(
  routeHostnames: readonly string[],
  listenerHostname: string | undefined,
): string[] {
  if (listenerHostname === undefined || listenerHostname === '') {
    return routeHostnames.length === 0 ? [''] : unique(routeHostnames.map(lower));
  }
  if (routeHostnames.length === 0) return [lower(listenerHostname)];
  const out: string[] = [];
  for (const r of routeHostnames) {
    const both = intersectHostname(r, listenerHostname);
    if (both !== undefined) out.push(both);
  }
  return unique(out);
}

function unique(names: readonly string[]): string[] {
  return [...new Set(names)];
}

/**
 * How specific a listener hostname is, for choosing among listeners that match one
 * host: an exact name beats any wildcard, a longer wildcard beats a shorter one,
 * and no hostname (any host) comes last.
 */
export function hostnameSpecificity(hostname: string | undefined): number {
  if (hostname === undefined || hostname === '') return 0;
  // Exact names rank above every wildcard (names are at most 253 characters).
  return isWildcard(hostname) ? hostname.length : 1000 + hostname.length;
}
