// One object, several config clusters: the same namespace/name may be read from each
// of gatewayAPI.clusters. Fedgate serves one copy, the oldest (creationTimestamp,
// then cluster name), so the choice is the same on every replica whatever order the
// clusters answered in. A copy that says the same is the same object: it shows the
// served copy's status. One that says otherwise is reported as conflicted.
import type { GatewayObjectMeta } from '../watch/gateway-records.ts';

/** Code-unit order: deterministic, unlike localeCompare. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Oldest first; the cluster name breaks a tie. */
export function compareAge(a: GatewayObjectMeta, b: GatewayObjectMeta): number {
  return a.createdAt - b.createdAt || compareText(a.cluster, b.cluster);
}

export const keyOf = (o: { readonly namespace: string; readonly name: string }): string =>
  `${o.namespace}/${o.name}`;

export interface Copies<T extends GatewayObjectMeta> {
  /** The copy served, per `namespace/name`. */
  readonly winners: ReadonlyMap<string, T>;
  /** Each copy that disagrees with the one served, with that copy. */
  readonly losers: readonly { readonly copy: T; readonly winner: T }[];
  /** Each copy that says what the one served says: the same object, in another cluster. */
  readonly agreeing: readonly { readonly copy: T; readonly winner: T }[];
}

export function pickOldest<T extends GatewayObjectMeta>(objects: readonly T[]): Copies<T> {
  const winners = new Map<string, T>();
  for (const o of [...objects].sort(compareAge)) {
    if (!winners.has(keyOf(o))) winners.set(keyOf(o), o);
  }
  const losers: { copy: T; winner: T }[] = [];
  const agreeing: { copy: T; winner: T }[] = [];
  for (const o of objects) {
    const winner = winners.get(keyOf(o));
    if (winner === undefined || winner === o) continue;
    (sameContent(o, winner) ? agreeing : losers).push({ copy: o, winner });
  }
  return { winners, losers, agreeing };
}

/** Where a copy was read, and its own bookkeeping: not what it says. */
const BOOKKEEPING = new Set(['cluster', 'generation', 'createdAt', 'uid']);

/** Two copies say the same thing: equal but for where and when each was made. */
export function sameContent(a: GatewayObjectMeta, b: GatewayObjectMeta): boolean {
  return canonical(a, true) === canonical(b, true);
}

/** JSON with keys sorted, so field order (which trimming may vary) does not count. */
function canonical(value: unknown, top = false): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonical(v)).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([k, v]) => v !== undefined && !(top && BOOKKEEPING.has(k)))
    .sort(([x], [y]) => compareText(x, y));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}
