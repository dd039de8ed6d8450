// Compares two JSON documents by shape: the same keys with the same JSON types,
// recursively, and the same values except where a value is the server's own choice
// (uids, timestamps, resourceVersions, messages, allocated addresses). What differs is
// returned as one line per place, so a test can assert the exact set of differences.

/** Keys whose values are the server's own (compared by JSON type only). */
export const VOLATILE_KEYS: ReadonlySet<string> = new Set([
  'uid',
  'creationTimestamp',
  'deletionTimestamp',
  'resourceVersion',
  'continue',
  'message',
  'clusterIP',
  'clusterIPs',
  'time',
  // Documentation text (Table column descriptions) and the address a client reached.
  'description',
  'serverAddress',
]);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * The differences between `sim` and `real` under `path`: `path: only sim`, `path: only
 * real`, `path: sim <type> real <type>`, `path: sim <value> real <value>`, `path: sim N
 * items real M`. `skip` names paths (with [] for any index) left out of the comparison.
 */
export function shapeDiff(
  sim: unknown,
  real: unknown,
  path = '',
  skip: ReadonlySet<string> = new Set(),
): string[] {
  const out: string[] = [];
  walk(sim, real, path, skip, out);
  return out;
}

function walk(
  a: unknown,
  b: unknown,
  path: string,
  skip: ReadonlySet<string>,
  out: string[],
): void {
  if (skip.has(path.replace(/\[\d+\]/g, '[]'))) return;
  const ta = typeOf(a);
  const tb = typeOf(b);
  if (ta !== tb) {
    out.push(`${path}: sim ${ta} real ${tb}`);
    return;
  }
  if (ta === 'array') {
    const xa = a as unknown[];
    const xb = b as unknown[];
    if (xa.length !== xb.length) out.push(`${path}: sim ${xa.length} items real ${xb.length}`);
    for (let i = 0; i < Math.min(xa.length, xb.length); i++)
      walk(xa[i], xb[i], `${path}[${i}]`, skip, out);
    return;
  }
  if (ta === 'object') {
    const oa = a as Record<string, unknown>;
    const ob = b as Record<string, unknown>;
    for (const k of new Set([...Object.keys(oa), ...Object.keys(ob)])) {
      const p = path ? `${path}.${k}` : k;
      if (skip.has(p.replace(/\[\d+\]/g, '[]'))) continue;
      if (!(k in ob)) out.push(`${p}: only sim`);
      else if (!(k in oa)) out.push(`${p}: only real`);
      else if (VOLATILE_KEYS.has(k)) {
        if (typeOf(oa[k]) !== typeOf(ob[k]))
          out.push(`${p}: sim ${typeOf(oa[k])} real ${typeOf(ob[k])}`);
      } else walk(oa[k], ob[k], p, skip, out);
    }
    return;
  }
  if (a !== b) out.push(`${path}: sim ${JSON.stringify(a)} real ${JSON.stringify(b)}`);
}
