// Status comparison and condition times. A desired status is plain data whose
// conditions carry no lastTransitionTime: each gets the time of the condition of the
// same type at the same place in what the API server holds while its status is the
// same (metav1's SetStatusCondition), else now. Then two statuses compare as
// canonical JSON (keys sorted), so an unchanged status is never written again.

type Json = unknown;

export function canonical(v: Json): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort()
        .map((k) => [k, sortKeys(o[k])]),
    );
  }
  return v;
}

/** RFC 3339 to the second, as metav1.Time serialises. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

interface Condition {
  type: string;
  status: string;
  lastTransitionTime?: string;
  [k: string]: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Which entry of a list an entry is, across two versions of it: a Gateway API route's
 * parent status by its parentRef and controllerName, a listener status by its name,
 * else its place in the list.
 */
function identityOf(v: Json, i: number): string {
  if (isObject(v)) {
    if (v.parentRef !== undefined)
      return `parent ${canonical(v.parentRef)} ${String(v.controllerName)}`;
    if (typeof v.name === 'string') return `name ${v.name}`;
  }
  return `index ${i}`;
}

/**
 * `desired` with every condition's lastTransitionTime filled in from `current` (walked
 * in parallel: objects by key, list entries by identityOf) or `now`.
 */
export function stampConditions(desired: Json, current: Json, now: number): Json {
  if (Array.isArray(desired)) {
    const cur = new Map(
      (Array.isArray(current) ? current : []).map((c, i) => [identityOf(c, i), c]),
    );
    return desired.map((d, i) => stampConditions(d, cur.get(identityOf(d, i)), now));
  }
  if (!isObject(desired)) return desired;
  const cur = isObject(current) ? current : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(desired)) {
    if (k === 'conditions' && Array.isArray(v)) {
      const held = Array.isArray(cur[k]) ? (cur[k] as Condition[]) : [];
      out[k] = (v as Condition[]).map((c) => {
        if (c.lastTransitionTime !== undefined) return c;
        const before = held.find((h) => h?.type === c.type);
        const time =
          before && before.status === c.status && typeof before.lastTransitionTime === 'string'
            ? before.lastTransitionTime
            : rfc3339(now);
        return { ...c, lastTransitionTime: time };
      });
    } else {
      out[k] = stampConditions(v, cur[k], now);
    }
  }
  return out;
}
