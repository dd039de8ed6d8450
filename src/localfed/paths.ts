// kube-apiserver's reading of a request path, before it knows whether the resource
// exists: /api/<version>/... and /apis/<group>/<version>/... name a group, version,
// optional namespace, resource, name and subresource. Authorization is decided on this,
// so a caller not allowed a resource gets 403 whether or not the resource exists.

export interface RequestPath {
  /** '' for the core group. */
  group: string;
  version: string;
  namespace: string | undefined;
  plural: string;
  name: string | undefined;
  subresource: string | undefined;
  /** Parts past the subresource (no resource has them: 404). */
  extra: number;
}

/** The resource a path names, or undefined for discovery and non-resource paths. */
export function parseRequestPath(path: string): RequestPath | undefined {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    rest = parts.slice(1);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1] ?? '';
    rest = parts.slice(2);
  } else return undefined;
  const [version = '', ...after] = rest;
  let namespace: string | undefined;
  let tail = after;
  // /namespaces/<ns>/<resource>... is namespaced; /namespaces/<ns>[/status] is the namespace itself.
  if (after[0] === 'namespaces' && after.length >= 3 && after[2] !== 'status') {
    namespace = after[1];
    tail = after.slice(2);
  }
  const [plural = '', name, subresource, ...extra] = tail;
  return { group, version, namespace, plural, name, subresource, extra: extra.length };
}
