// The route tables the proxy serves from: per fedgate listener, per hostname, the
// rules of every accepted route attached to a programmed Gateway listener mapped
// onto it. Several Gateways (and listeners) mapped onto one fedgate listener share
// its table. An exact hostname a route reaches through a less specific listener
// (`*.example.com`, or none) is left out when a more specific listener on the same
// fedgate listener also matches it: the spec sends such a request to the most
// specific listener, and only that listener's routes may answer it.

import type { Attachment } from './attach.ts';
import type {
  AttachedRule,
  HostRules,
  ListenerCertificate,
  ListenerTable,
  RouteTables,
} from './attached.ts';
import { compareText } from './copies.ts';
import { hostnameMatches, hostnameSpecificity } from './hostnames.ts';
import type { JudgedListener } from './listeners.ts';

export interface AcceptedRoute {
  readonly rules: readonly AttachedRule[];
  readonly attachments: readonly Attachment[];
}

function shadowed(host: string, by: JudgedListener, others: readonly JudgedListener[]): boolean {
  if (host === '' || host.startsWith('*.')) return false;
  const mine = hostnameSpecificity(by.listener.hostname);
  return others.some((o) => {
    const h = o.listener.hostname;
    return h !== undefined && h !== '' && hostnameSpecificity(h) > mine && hostnameMatches(h, host);
  });
}

const ruleOrder = (a: AttachedRule, b: AttachedRule): number =>
  a.createdAt - b.createdAt ||
  compareText(a.route.namespace, b.route.namespace) ||
  compareText(a.route.name, b.route.name) ||
  compareText(a.route.kind, b.route.kind) ||
  a.index - b.index;

/** A host's rules, kept from the last build when the same routes' rules make them. */
export interface HostCache {
  host(key: string, from: readonly (readonly AttachedRule[])[], make: () => HostRules): HostRules;
  hostsDone(): void;
}

export function buildTables(
  routes: readonly AcceptedRoute[],
  programmed: readonly JudgedListener[],
  cache?: HostCache,
): RouteTables {
  const byAddress = new Map<string, JudgedListener[]>();
  for (const l of programmed) {
    if (l.mapping === undefined) continue;
    const list = byAddress.get(l.mapping.address) ?? [];
    list.push(l);
    byAddress.set(l.mapping.address, list);
  }
  // address → hostname → rules, each route's rules once per host.
  const hosts = new Map<string, Map<string, Set<readonly AttachedRule[]>>>();
  for (const route of routes) {
    for (const { listener, hostnames } of route.attachments) {
      const address = listener.mapping?.address;
      if (!listener.programmed || address === undefined) continue;
      const peers = byAddress.get(address) ?? [];
      const table = hosts.get(address) ?? new Map<string, Set<readonly AttachedRule[]>>();
      hosts.set(address, table);
      for (const host of hostnames) {
        if (shadowed(host, listener, peers)) continue;
        const set = table.get(host) ?? new Set();
        set.add(route.rules);
        table.set(host, set);
      }
    }
  }
  const listeners: ListenerTable[] = [...byAddress.keys()].sort(compareText).map((address) => {
    const tls = (byAddress.get(address) ?? []).some((l) => l.mapping?.protocol === 'HTTPS');
    const table = hosts.get(address) ?? new Map();
    const hostRules: HostRules[] = [...table.keys()].sort(compareText).map((hostname) => {
      const from = [...(table.get(hostname) ?? [])];
      const make = () => ({ hostname, rules: from.flat().sort(ruleOrder) });
      return cache ? cache.host(`${address} ${hostname}`, from, make) : make();
    });
    const certificates = certificatesOf(byAddress.get(address) ?? []);
    const ports = new Set((byAddress.get(address) ?? []).map((l) => l.listener.port));
    const [gatewayPort] = ports;
    return {
      address,
      tls,
      ...(ports.size === 1 && gatewayPort !== undefined ? { gatewayPort } : {}),
      hosts: hostRules,
      ...(certificates.length > 0 ? { certificates } : {}),
    };
  });
  cache?.hostsDone();
  return { listeners };
}

/**
 * Do two tables read the same (as JSON would)? A host kept from one build to the
 * next is the same object and costs nothing; only the others are compared by content.
 */
export function sameTables(a: RouteTables, b: RouteTables): boolean {
  if (a.listeners.length !== b.listeners.length) return false;
  return a.listeners.every((x, i) => {
    const y = b.listeners[i];
    // Everything but the hosts by content, so a field added to ListenerTable counts too.
    return (
      y !== undefined &&
      JSON.stringify({ ...x, hosts: [] }) === JSON.stringify({ ...y, hosts: [] }) &&
      x.hosts.length === y.hosts.length &&
      x.hosts.every((h, j) => {
        const k = y.hosts[j];
        return h === k || JSON.stringify(h) === JSON.stringify(k);
      })
    );
  });
}

/**
 * The certificates of the HTTPS Gateway listeners on one fedgate listener, most
 * specific hostname first (the order SNI is matched in); equal hostnames keep the
 * Gateways' order, oldest first, so the oldest listener's certificate wins.
 */
function certificatesOf(listeners: readonly JudgedListener[]): ListenerCertificate[] {
  return listeners
    .filter((l) => l.mapping?.protocol === 'HTTPS')
    .map((l, i) => ({ l, i }))
    .sort(
      (a, b) =>
        hostnameSpecificity(b.l.listener.hostname) - hostnameSpecificity(a.l.listener.hostname) ||
        a.l.gateway.createdAt - b.l.gateway.createdAt ||
        a.i - b.i,
    )
    .flatMap(({ l }) =>
      l.certificates.map((c) => ({
        hostname: l.listener.hostname ?? '',
        cert: c.cert,
        key: c.key,
      })),
    );
}
