// Session affinity keys for Maglev: what `routing.hashOn` names (a header, a cookie
// or the client address), read from a request and hashed. A request without the
// header or cookie has no key, and the Maglev picker then picks by weight at random,
// as Envoy does when a hash policy finds nothing to hash.
import { hashKey } from './pickers.ts';

export type HashOn =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }
  | { readonly kind: 'client-address' };

/** Parses header:NAME, cookie:NAME or client-address (the config schema has checked the form). */
export function parseHashOn(spec: string): HashOn {
  if (spec === 'client-address') return { kind: 'client-address' };
  const colon = spec.indexOf(':');
  const kind = spec.slice(0, colon);
  const name = spec.slice(colon + 1);
  if ((kind !== 'header' && kind !== 'cookie') || name === '') {
    throw new Error(`expected header:NAME, cookie:NAME or client-address, not "${spec}"`);
  }
  // Header names are case-insensitive; cookie names are not.
  return kind === 'header' ? { kind, name: name.toLowerCase() } : { kind, name };
}

/** What a request offers to key on: headers by lower-case name (Node's shape). */
export interface KeySource {
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly clientAddress: string;
}

function first(v: string | readonly string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : v?.[0];
}

/** A cookie's raw value from Cookie headers ("a=1; b=2"); the first one named wins. */
export function cookieValue(
  header: string | readonly string[] | undefined,
  name: string,
): string | undefined {
  const lines = typeof header === 'string' ? [header] : (header ?? []);
  for (const line of lines) {
    for (const pair of line.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
    }
  }
  return undefined;
}

/** The request's affinity key, or undefined when it carries none. */
export function affinityKey(on: HashOn, req: KeySource): string | undefined {
  switch (on.kind) {
    case 'client-address':
      return req.clientAddress;
    case 'header': {
      const v = first(req.headers[on.name]);
      return v === undefined || v === '' ? undefined : v;
    }
    case 'cookie': {
      const v = cookieValue(req.headers.cookie, on.name);
      return v === undefined || v === '' ? undefined : v;
    }
  }
}

/** The key's hash for PickContext.hash, or undefined. */
export function affinityHash(on: HashOn, req: KeySource): number | undefined {
  const key = affinityKey(on, req);
  return key === undefined ? undefined : hashKey(key);
}
