// Who a request comes from and whether it may do what it asks, as kube-apiserver with
// token authentication and RBAC decides it. The cluster's token is an admin allowed
// everything (system:masters). Further tokens name a user allowed only what its rules
// say (RBAC PolicyRules, resource part). A request without a token is
// system:anonymous, as kube-apiserver's default --anonymous-auth=true makes it: the
// default bindings let it read only health and version, and let every authenticated
// user read discovery and OpenAPI too.
import { timingSafeEqual } from 'node:crypto';
import type { RequestPath } from './paths.ts';
import { ApiError, errors } from './status.ts';

/** One RBAC PolicyRule: '*' in a list matches anything. */
export interface AccessRule {
  verbs: string[];
  apiGroups: string[];
  /** Plural names, `plural/subresource` for a subresource. */
  resources: string[];
}

export interface SimUser {
  name: string;
  token: string;
  rules: AccessRule[];
}

export interface Identity {
  name: string;
  /** undefined: allowed everything. */
  rules: AccessRule[] | undefined;
}

const ANONYMOUS: Identity = { name: 'system:anonymous', rules: [] };
const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version']);
const DISCOVERY_PATHS = new Set(['/api', '/apis', '/openapi']);
const DISCOVERY_PREFIXES = ['/api/', '/apis/', '/openapi/'];

export class Access {
  readonly #admin: Buffer;
  readonly #users: { token: Buffer; identity: Identity }[];

  constructor(adminToken: string, users: readonly SimUser[] = []) {
    this.#admin = Buffer.from(adminToken);
    this.#users = users.map((u) => ({
      token: Buffer.from(u.token),
      identity: { name: u.name, rules: u.rules },
    }));
  }

  /** The caller, or a 401 for a token no one has. */
  identify(authorization: string | undefined): Identity {
    if (authorization === undefined || authorization === '') return ANONYMOUS;
    const m = /^Bearer\s+(.+)$/i.exec(authorization);
    if (!m?.[1]) throw errors.unauthorized();
    const given = Buffer.from(m[1].trim());
    if (same(given, this.#admin)) return { name: 'admin', rules: undefined };
    const user = this.#users.find((u) => same(given, u.token));
    if (!user) throw errors.unauthorized();
    return user.identity;
  }
}

function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Throws 403 unless `who` may GET a path that names no resource. */
export function authorizePath(who: Identity, path: string): void {
  if (who.rules === undefined || PUBLIC_PATHS.has(path)) return;
  if (who !== ANONYMOUS) {
    if (DISCOVERY_PATHS.has(path) || DISCOVERY_PREFIXES.some((p) => path.startsWith(p))) return;
  }
  throw new ApiError(
    403,
    'Forbidden',
    `forbidden: User "${who.name}" cannot get path "${path}"`,
    {},
  );
}

/** Throws 403 unless `who` may do `verb` on the resource the path names. */
export function authorizeResource(who: Identity, verb: string, p: RequestPath): void {
  if (who.rules === undefined) return;
  const resource = p.subresource ? `${p.plural}/${p.subresource}` : p.plural;
  const allowed = who.rules.some(
    (r) =>
      matches(r.verbs, verb) && matches(r.apiGroups, p.group) && matches(r.resources, resource),
  );
  if (allowed) return;
  const what = p.group ? `${p.plural}.${p.group}` : p.plural;
  const where = p.namespace ? `in the namespace "${p.namespace}"` : 'at the cluster scope';
  const details: { name?: string; group?: string; kind: string } = { kind: p.plural };
  if (p.name) details.name = p.name;
  if (p.group) details.group = p.group;
  throw new ApiError(
    403,
    'Forbidden',
    `${what}${p.name ? ` "${p.name}"` : ''} is forbidden: User "${who.name}" cannot ${verb} resource "${resource}" in API group "${p.group}" ${where}`,
    details,
  );
}

function matches(allowed: readonly string[], value: string): boolean {
  return allowed.includes('*') || allowed.includes(value);
}
