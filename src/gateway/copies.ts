// One object, several config clusters: the same namespace/name may be read from each
// of gatewayAPI.clusters. Fedgate serves one copy, the oldest (creationTimestamp,
// then cluster name), so the choice is the same on every replica whatever order the
// clusters answered in; the others are reported as conflicted.
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
  /** Each copy that lost, with the copy that won. */
  readonly losers: readonly { readonly copy: T; readonly winner: T }[];
}

export function pickOldest<T extends GatewayObjectMeta>(objects: readonly T[]): Copies<T> {
  const winners = new Map<string, T>();
  for (const o of [...objects].sort(compareAge)) {
    if (!winners.has(keyOf(o))) winners.set(keyOf(o), o);
  }
  const losers: { copy: T; winner: T }[] = [];
  for (const o of objects) {
    const winner = winners.get(keyOf(o));
    if (winner !== undefined && winner !== o) losers.push({ copy: o, winner });
  }
  return { winners, losers };
}
