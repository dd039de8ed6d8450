// Gateway API route tables as they cross to a worker: a host the worker already holds
// goes as its hostname alone. Route compilation keeps an unchanged host as the same
// object from one table to the next; a copy through the IPC channel would make every
// host new, and a worker would clone and index the whole table after each route's
// edit (at 1,000 routes that is most of a second per worker on a loaded 2-core
// machine). The worker puts back its own objects for the hosts kept, so its matchers
// take them over as in one process.
import type { HostRules, ListenerTable, RouteTables } from '../gateway/attached.ts';

/** A host the receiver had in the tables sent before, at the same listener and name. */
interface KeptHost {
  readonly kept: string;
}

export interface RoutesDelta {
  readonly listeners: readonly (Omit<ListenerTable, 'hosts'> & {
    readonly hosts: readonly (HostRules | KeptHost)[];
  })[];
}

const hostsByName = (tables: RouteTables | undefined, address: string) =>
  new Map(
    (tables?.listeners.find((l) => l.address === address)?.hosts ?? []).map((h) => [h.hostname, h]),
  );

/** `next` for a receiver that holds `before` (undefined: nothing, every host goes whole). */
export function routesDelta(before: RouteTables | undefined, next: RouteTables): RoutesDelta {
  return {
    listeners: next.listeners.map((l) => {
      const had = hostsByName(before, l.address);
      return {
        ...l,
        hosts: l.hosts.map((h) => (had.get(h.hostname) === h ? { kept: h.hostname } : h)),
      };
    }),
  };
}

/**
 * The tables a delta stands for, given the ones received before; undefined when it
 * names a host they do not hold (the two sides disagree about what was sent).
 */
export function applyRoutesDelta(
  before: RouteTables | undefined,
  delta: RoutesDelta,
): RouteTables | undefined {
  const listeners: ListenerTable[] = [];
  for (const l of delta.listeners) {
    const had = hostsByName(before, l.address);
    const hosts: HostRules[] = [];
    for (const h of l.hosts) {
      const host = 'kept' in h ? had.get(h.kept) : h;
      if (host === undefined) return undefined;
      hosts.push(host);
    }
    listeners.push({ ...l, hosts });
  }
  return { listeners };
}
