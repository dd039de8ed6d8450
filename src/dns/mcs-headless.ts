// A multicluster headless service as the MCS DNS specification (KEP-1645
// specification.md §2.4) names it: its ready endpoints grouped into hosts, one per
// `<hostname>.<clusterid>`, each with its addresses and ports. Built once per
// service object (an unchanged service is the same object in the next snapshot).
import type { Endpoint, FederatedService, PortRecord } from '../catalog/model.ts';
import { DNS_MAX_HEADLESS_ANSWERS } from '../config/defaults.ts';

export interface HeadlessHost {
  readonly cluster: string;
  /** The endpoint's `hostname`, else one derived from its address (`endpointHostname`). */
  readonly hostname: string;
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  /** The EndpointSlice ports of its endpoints: the target ports SRV answers name. */
  readonly ports: readonly PortRecord[];
}

export interface HeadlessView {
  /** Every ready host, clusters in name order, hosts in endpoint order. */
  readonly hosts: readonly HeadlessHost[];
  /**
   * The hosts the service name's A/AAAA and SRV answers carry: the first
   * DNS_MAX_HEADLESS_ANSWERS, the same subset for both families (§2.4.1: "If both
   * A and AAAA records exist, they must program the same subset of IPs").
   */
  readonly served: readonly HeadlessHost[];
  /** By `<hostname>.<cluster>`. */
  readonly byName: ReadonlyMap<string, HeadlessHost>;
}

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * The spec's hostname (§2.1, after the cluster-local DNS specification): the
 * endpoint's `hostname` field, else a unique system-assigned identifier. That
 * identifier is its first address with `.` or `:` as `-`, as CoreDNS's kubernetes
 * plugin (endpointHostname) names such endpoints: `127-0-0-1`, `--1`, and a
 * trailing `-` closed with `0` (`::` is `--0`).
 */
export function endpointHostname(e: Endpoint): string | undefined {
  const given = e.hostname?.toLowerCase();
  if (given !== undefined && LABEL.test(given)) return given;
  const first = e.addresses[0];
  if (first === undefined) return undefined;
  const dashed = first.toLowerCase().replace(/[.:]/g, '-');
  return dashed.endsWith('-') ? `${dashed}0` : dashed;
}

const views = new WeakMap<FederatedService, HeadlessView>();

export function headlessView(svc: FederatedService): HeadlessView {
  let v = views.get(svc);
  if (!v) {
    v = build(svc);
    views.set(svc, v);
  }
  return v;
}

interface Building {
  cluster: string;
  hostname: string;
  ipv4: Set<string>;
  ipv6: Set<string>;
  ports: PortRecord[];
}

function build(svc: FederatedService): HeadlessView {
  const byName = new Map<string, Building>();
  for (const m of svc.clusters) {
    for (const e of m.endpoints) {
      if (!e.conditions.ready || e.addressType === 'FQDN') continue;
      const hostname = endpointHostname(e);
      if (hostname === undefined) continue;
      const key = `${hostname}.${m.cluster}`;
      let h = byName.get(key);
      if (!h) {
        h = { cluster: m.cluster, hostname, ipv4: new Set(), ipv6: new Set(), ports: [] };
        byName.set(key, h);
      }
      // An endpoint's addresses are fungible (EndpointSlice API); each gets a record.
      const family = e.addressType === 'IPv4' ? h.ipv4 : h.ipv6;
      for (const a of e.addresses) family.add(a);
      h.ports.push(...e.ports);
    }
  }
  const hosts = new Map<string, HeadlessHost>();
  for (const [key, h] of byName) {
    hosts.set(key, { ...h, ipv4: [...h.ipv4], ipv6: [...h.ipv6] });
  }
  const all = [...hosts.values()];
  return { hosts: all, served: all.slice(0, DNS_MAX_HEADLESS_ANSWERS), byName: hosts };
}

/** The port a host serves a Service port on: its slice's port of that name and protocol, else the Service's. */
export function servingPort(h: HeadlessHost, port: PortRecord): number {
  return (
    h.ports.find((p) => p.name === port.name && p.protocol === port.protocol)?.port ?? port.port
  );
}

/** `<hostname>.<clusterid>.<svc>.<ns>.svc.<zone>`, given the service's MCS name. */
export function hostName(h: HeadlessHost, serviceName: string): string {
  return `${h.hostname}.${h.cluster}.${serviceName}`;
}
