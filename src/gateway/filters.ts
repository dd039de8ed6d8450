// What a matched rule does to a request, as pure functions: header modifiers
// (names case-insensitive), the path a rewrite or redirect gives (ReplaceFullPath,
// ReplacePrefixMatch), a redirect's Location by the spec's port rules, the
// weighted choice of a backend and whether a mirror takes this request, both from
// an injected random source.
import type { HeaderModifier, PathModifier } from '../watch/gateway-records.ts';
import type { ResolvedBackend } from './attached.ts';

/** A modifier as written may leave out a list (the CRD has no default): none. */
function complete(m: Partial<HeaderModifier>): HeaderModifier {
  return { set: m.set ?? [], add: m.add ?? [], remove: m.remove ?? [] };
}

/**
 * A header modifier over flat `[name, value, …]` fields: remove, then set (every
 * field of the name replaced by one), then add (appended to an existing value with
 * a comma, as the spec's example `my-header: foo,bar`; else a new field).
 */
export function modifyFields(fields: readonly string[], given: HeaderModifier): string[] {
  const mod = complete(given);
  const drop = new Set([...mod.remove, ...mod.set.map((s) => s.name)].map((n) => n.toLowerCase()));
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] ?? '';
    if (!drop.has(name.toLowerCase())) out.push(name, fields[i + 1] ?? '');
  }
  for (const s of mod.set) out.push(s.name, s.value);
  for (const a of mod.add) {
    const lower = a.name.toLowerCase();
    let at = -1;
    for (let i = 0; i < out.length; i += 2) if (out[i]?.toLowerCase() === lower) at = i + 1;
    if (at >= 0) out[at] = `${out[at]},${a.value}`;
    else out.push(a.name, a.value);
  }
  return out;
}

/** The same modifier over a header record (a response's head, names lower case). */
export function modifyRecord(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  given: HeaderModifier,
): Record<string, string | string[]> {
  const mod = complete(given);
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = v;
  for (const name of mod.remove) delete out[name.toLowerCase()];
  for (const s of mod.set) out[s.name.toLowerCase()] = s.value;
  for (const a of mod.add) {
    const k = a.name.toLowerCase();
    const had = out[k];
    out[k] = had === undefined ? a.value : `${Array.isArray(had) ? had.join(',') : had},${a.value}`;
  }
  return out;
}

/**
 * The path a rewrite or redirect gives. ReplacePrefixMatch replaces the PathPrefix
 * the request matched (`prefix`, without trailing slash), keeping what follows it:
 * `/foo/bar` under `/foo` replaced by `/xyz` is `/xyz/bar`, by `/` is `/bar`.
 */
export function modifiedPath(path: string, mod: PathModifier, prefix: string | undefined): string {
  if (mod.type === 'ReplaceFullPath') return mod.replaceFullPath ?? path;
  const with_ = mod.replacePrefixMatch ?? '/';
  if (prefix === undefined) return path;
  const rest = prefix === '/' ? path : path.slice(prefix.length);
  const joined = with_.endsWith('/') && rest.startsWith('/') ? with_ + rest.slice(1) : with_ + rest;
  return joined === '' ? '/' : joined;
}

export interface RedirectFrom {
  /** The request's scheme: http or https. */
  readonly scheme: string;
  /** Its host, without port. */
  readonly host: string;
  /** The Gateway listener's port (fedgate's own listener port when several share it). */
  readonly listenerPort: number;
  readonly path: string;
  /** With its `?`, or ''. */
  readonly search: string;
}

export interface Redirect {
  readonly scheme?: string | undefined;
  readonly hostname?: string | undefined;
  readonly path?: PathModifier | undefined;
  readonly port?: number | undefined;
}

const WELL_KNOWN: Readonly<Record<string, number>> = { http: 80, https: 443 };

/**
 * A RequestRedirect's Location. The port: the one given; else, with a scheme, the
 * scheme's well-known port (80, 443; another scheme: the listener's); without, the
 * listener's. The port is left out when it is the scheme's well-known one.
 */
export function redirectLocation(from: RedirectFrom, r: Redirect, prefix?: string): string {
  const scheme = r.scheme ?? from.scheme;
  const port =
    r.port ??
    (r.scheme !== undefined ? (WELL_KNOWN[scheme] ?? from.listenerPort) : from.listenerPort);
  const host = r.hostname ?? from.host;
  // An IPv6 literal is bracketed in a URL.
  const named = host.includes(':') ? `[${host}]` : host;
  const authority = WELL_KNOWN[scheme] === port ? named : `${named}:${port}`;
  const path = r.path ? modifiedPath(from.path, r.path, prefix) : from.path;
  return `${scheme}://${authority}${path}${from.search}`;
}

/**
 * A backend by weight (`random` in [0, 1)); weight 0 is never chosen. undefined when
 * the rule has no backend or every weight is 0: the spec's 500.
 */
export function chooseBackend(
  backends: readonly ResolvedBackend[],
  random: () => number,
): ResolvedBackend | undefined {
  let total = 0;
  for (const b of backends) total += Math.max(0, b.weight);
  if (total <= 0) return undefined;
  let x = random() * total;
  for (const b of backends) {
    const w = Math.max(0, b.weight);
    if (w === 0) continue;
    if (x < w) return b;
    x -= w;
  }
  // Rounding at the top end: the last backend with weight.
  return backends.findLast((b) => b.weight > 0);
}

/** Whether a mirror takes this request: percent, or fraction, of requests; neither: all. */
export function mirrors(
  m: {
    readonly percent?: number | undefined;
    readonly fraction?: { readonly numerator: number; readonly denominator: number } | undefined;
  },
  random: () => number,
): boolean {
  if (m.fraction) {
    const d = m.fraction.denominator || 100;
    return random() * d < m.fraction.numerator;
  }
  if (m.percent !== undefined) return random() * 100 < m.percent;
  return true;
}
