// Strategic merge patch, as kube-apiserver applies it to built-in types (what
// `kubectl apply` sends for them): maps merge, lists with a merge key merge item by
// item, other lists are replaced; with the directives kubectl emits ($patch,
// $setElementOrder, $retainKeys, $deleteFromPrimitiveList). Custom resources do not
// take it (415), and kubectl sends them a JSON merge patch instead.
import { isRecord } from './objects.ts';
import { errors } from './status.ts';

/** Per kind: list fields that merge (path → merge key; '' for a set of primitives). */
const MERGE_KEYS: Record<string, Record<string, string>> = {
  '*': { 'metadata.ownerReferences': 'uid', 'metadata.finalizers': '' },
  Service: { 'spec.ports': 'port', 'status.conditions': 'type' },
  Node: { 'status.conditions': 'type', 'status.addresses': 'type', 'spec.taints': 'key' },
  Namespace: { 'status.conditions': 'type' },
  EndpointSlice: {},
  Secret: {},
};

export function supportsStrategicMerge(kind: string): boolean {
  return Object.hasOwn(MERGE_KEYS, kind) && kind !== '*';
}

export function applyStrategicMergePatch(kind: string, target: unknown, patch: unknown): unknown {
  if (!supportsStrategicMerge(kind)) {
    throw errors.unsupportedMediaType([
      'application/json-patch+json',
      'application/merge-patch+json',
      'application/apply-patch+yaml',
    ]);
  }
  const keys = { ...MERGE_KEYS['*'], ...MERGE_KEYS[kind] };
  return mergeMap(target, patch, '', keys);
}

function bad(message: string): never {
  throw errors.badRequest(`strategic merge patch: ${message}`);
}

function mergeMap(
  target: unknown,
  patch: unknown,
  path: string,
  keys: Record<string, string>,
): unknown {
  if (!isRecord(patch)) return patch;
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  const { $patch: _p, $retainKeys: retain, ...rest } = patch;
  if (directive === 'replace') return stripDirectives(rest);
  if (directive !== undefined && directive !== 'merge')
    bad(`unknown $patch directive "${String(directive)}" at ${path || '.'}`);
  let out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  if (retain !== undefined) {
    if (!Array.isArray(retain)) bad(`$retainKeys at ${path || '.'} must be a list`);
    out = Object.fromEntries(Object.entries(out).filter(([k]) => retain.includes(k)));
  }
  const orders: Record<string, unknown[]> = {};
  for (const [k, v] of Object.entries(rest)) {
    if (k.startsWith('$setElementOrder/')) {
      if (!Array.isArray(v)) bad(`${k} must be a list`);
      orders[k.slice('$setElementOrder/'.length)] = v;
      continue;
    }
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (!Array.isArray(v)) bad(`${k} must be a list`);
      const current = out[field];
      if (Array.isArray(current)) out[field] = current.filter((x) => !v.includes(x));
      continue;
    }
    const here = path ? `${path}.${k}` : k;
    if (v === null) {
      delete out[k];
    } else if (Array.isArray(v)) {
      const mergeKey = keys[here];
      const before = out[k];
      out[k] =
        mergeKey === undefined ? stripDirectives(v) : mergeList(before, v, here, mergeKey, keys);
      if (mergeKey && !Object.hasOwn(rest, `$setElementOrder/${k}`))
        out[k] = patchOrder(out[k] as unknown[], v, before, mergeKey);
    } else {
      const merged = mergeMap(out[k], v, here, keys);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
  }
  for (const [field, order] of Object.entries(orders)) {
    const mergeKey = keys[path ? `${path}.${field}` : field];
    if (mergeKey !== undefined && Array.isArray(out[field]))
      out[field] = reorder(out[field] as unknown[], order, mergeKey);
  }
  return out;
}

function mergeList(
  target: unknown,
  patch: unknown[],
  path: string,
  mergeKey: string,
  keys: Record<string, string>,
): unknown[] {
  const current = Array.isArray(target) ? [...target] : [];
  if (mergeKey === '') {
    // A set of primitives: union, in order.
    for (const v of patch) if (!current.includes(v)) current.push(v);
    return current;
  }
  if (patch.some((item) => isRecord(item) && item.$patch === 'replace')) {
    return stripDirectives(
      patch.filter((item) => !(isRecord(item) && item.$patch === 'replace')),
    ) as unknown[];
  }
  for (const item of patch) {
    if (!isRecord(item) || !Object.hasOwn(item, mergeKey))
      bad(`every item of ${path} needs its merge key "${mergeKey}"`);
    const i = current.findIndex((c) => isRecord(c) && c[mergeKey] === item[mergeKey]);
    if (item.$patch === 'delete') {
      if (i >= 0) current.splice(i, 1);
      continue;
    }
    if (i >= 0) current[i] = mergeMap(current[i], item, path, keys);
    else current.push(stripDirectives(item));
  }
  return current;
}

/**
 * apimachinery's normalizeElementOrder without $setElementOrder: the items the patch
 * names, in the patch's order, merged with the rest in the server's order; where an item
 * is new to the server (it has no place there) the patch's item goes first. So a
 * patch adding a port puts it before the existing ones, as kube-apiserver does.
 */
function patchOrder(
  items: unknown[],
  patch: unknown[],
  server: unknown,
  mergeKey: string,
): unknown[] {
  const keyOf = (x: unknown) => (isRecord(x) ? x[mergeKey] : undefined);
  const serverKeys = Array.isArray(server) ? server.map(keyOf) : [];
  const patchKeys = patch.map(keyOf);
  const named = patchKeys.flatMap((k) => items.filter((x) => keyOf(x) === k));
  const rest = items.filter((x) => !patchKeys.includes(keyOf(x)));
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < named.length || j < rest.length) {
    if (i >= named.length) out.push(rest[j++]);
    else if (j >= rest.length) out.push(named[i++]);
    else {
      const li = serverKeys.indexOf(keyOf(named[i]));
      const ri = serverKeys.indexOf(keyOf(rest[j]));
      if (li >= 0 && ri >= 0 && ri < li) out.push(rest[j++]);
      else out.push(named[i++]);
    }
  }
  return out;
}

/** Orders items as $setElementOrder lists them; items it does not list keep their place at the end. */
function reorder(items: unknown[], order: unknown[], mergeKey: string): unknown[] {
  const keyOf = (x: unknown) => (mergeKey === '' ? x : isRecord(x) ? x[mergeKey] : undefined);
  const wanted = order.map((o) => (mergeKey === '' ? o : isRecord(o) ? o[mergeKey] : o));
  const ranked = items.map((item, i) => {
    const rank = wanted.indexOf(keyOf(item));
    return { item, rank: rank < 0 ? wanted.length + i : rank };
  });
  return ranked.sort((a, b) => a.rank - b.rank).map((r) => r.item);
}

function stripDirectives(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripDirectives);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!k.startsWith('$')) out[k] = stripDirectives(v);
  return out;
}
