// One federated service from its members, by the Multi-Cluster Services rules:
// a cluster takes part when it exports the service; the oldest export wins type
// and session affinity; ports are the union, and each disagreement is listed.
// Pure: the same inputs give the same output.
import type { ClusterStatus } from '../watch/cluster-watcher.ts';
import type {
  ExportRecord,
  NodeRecord,
  PortRecord,
  ServiceRecord,
  SliceRecord,
} from '../watch/records.ts';
import type { ClusterMember, Conflict, Endpoint, FederatedService } from './model.ts';

export interface MemberInput {
  readonly cluster: string;
  readonly weight: number;
  /** The configured region: for endpoints whose node carries no region label. */
  readonly region: string | undefined;
  readonly service: ServiceRecord | undefined;
  readonly export: ExportRecord | undefined;
  readonly slices: Iterable<SliceRecord>;
  readonly nodes: ReadonlyMap<string, NodeRecord>;
  readonly sync: ClusterStatus;
  /**
   * The caller's cache of this member's endpoints for the service: reused while the
   * slices, the nodes they name and the region are the same objects, so a change in
   * one cluster does not rebuild (or compare) the endpoints of every other.
   */
  readonly memo?: EndpointMemo | undefined;
}

/** A slot the caller keeps per member and service; merge fills it. */
export interface EndpointMemo {
  value?: {
    readonly slices: readonly SliceRecord[];
    readonly nodes: ReadonlyMap<string, NodeRecord | undefined>;
    readonly region: string | undefined;
    readonly endpoints: readonly Endpoint[];
  };
}

interface Exported {
  input: MemberInput;
  service: ServiceRecord;
  exportedAt: number;
}

/** When the cluster exports the service, and whether it does at all. */
function exportedAt(m: MemberInput): number | undefined {
  const svc = m.service;
  if (!svc || svc.externalName) return undefined;
  if (m.export) return m.export.createdAt;
  if (svc.federate) return svc.createdAt;
  return undefined;
}

const portKey = (p: PortRecord) => (p.name !== '' ? `name:${p.name}` : `${p.protocol}/${p.port}`);
const portText = (p: PortRecord) => `${p.name || '(unnamed)'} ${p.port}/${p.protocol}`;
const isoTime = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : 'unknown time');

export function mergeService(
  namespace: string,
  name: string,
  members: readonly MemberInput[],
): FederatedService | undefined {
  const exported: Exported[] = [];
  for (const input of members) {
    const at = exportedAt(input);
    if (at !== undefined) exported.push({ input, service: input.service!, exportedAt: at });
  }
  if (exported.length === 0) return undefined;
  // Oldest export first; ties by cluster name so every replica picks the same winner.
  const byAge = [...exported].sort(
    (a, b) => a.exportedAt - b.exportedAt || a.input.cluster.localeCompare(b.input.cluster),
  );
  const oldest = byAge[0]!;
  const conflicts: Conflict[] = [];

  const typeOf = (s: ServiceRecord) => (s.headless ? 'Headless' : 'ClusterSetIP');
  const type = typeOf(oldest.service);
  const typeDiffers = byAge.filter((e) => typeOf(e.service) !== type).map((e) => e.input.cluster);
  if (typeDiffers.length > 0) {
    conflicts.push({
      field: 'type',
      clusters: typeDiffers,
      reason: `${typeDiffers.join(', ')} export${typeDiffers.length > 1 ? '' : 's'} a ${type === 'Headless' ? 'ClusterSetIP' : 'Headless'} service; the oldest export (${oldest.input.cluster}, ${isoTime(oldest.exportedAt)}) is ${type}`,
    });
  }
  const affinity = oldest.service.sessionAffinity;
  const affinityDiffers = byAge
    .filter((e) => e.service.sessionAffinity !== affinity)
    .map((e) => e.input.cluster);
  if (affinityDiffers.length > 0) {
    conflicts.push({
      field: 'sessionAffinity',
      clusters: affinityDiffers,
      reason: `sessionAffinity differs in ${affinityDiffers.join(', ')}; the oldest export (${oldest.input.cluster}) says ${affinity}`,
    });
  }

  const ports = new Map<string, { port: PortRecord; cluster: string }>();
  const portConflicts = new Map<string, { clusters: Set<string>; reasons: string[] }>();
  for (const e of byAge) {
    for (const p of e.service.ports) {
      const key = portKey(p);
      const have = ports.get(key);
      if (!have) {
        ports.set(key, { port: p, cluster: e.input.cluster });
      } else if (have.port.port !== p.port || have.port.protocol !== p.protocol) {
        const c = portConflicts.get(key) ?? { clusters: new Set(), reasons: [] };
        c.clusters.add(e.input.cluster);
        c.reasons.push(
          `${e.input.cluster} has port ${portText(p)}, the older export (${have.cluster}) has ${portText(have.port)}`,
        );
        portConflicts.set(key, c);
      }
    }
  }
  for (const c of portConflicts.values()) {
    conflicts.push({ field: 'ports', clusters: [...c.clusters], reason: c.reasons.join('; ') });
  }

  for (const field of ['backendProtocol', 'backendTls'] as const) {
    const c = annotationConflict(byAge, field);
    if (c) conflicts.push(c);
  }

  const hosts = new Set<string>();
  for (const e of byAge) for (const h of e.service.hosts) hosts.add(h);

  const clusters: ClusterMember[] = exported
    .map((e) => ({
      cluster: e.input.cluster,
      weight: e.input.weight,
      exportedAt: e.exportedAt,
      endpoints: memoizedEndpoints(e.input),
      ingress: e.service.ingress,
      sync: e.input.sync,
    }))
    .sort((a, b) => a.cluster.localeCompare(b.cluster));

  return {
    key: `${namespace}/${name}`,
    namespace,
    name,
    type,
    sessionAffinity: affinity,
    ports: [...ports.values()].map((p) => p.port),
    hosts: [...hosts].sort(),
    // As for the other service-wide fields, the oldest export that says something wins.
    dnsMode: byAge.find((e) => e.service.dnsMode !== undefined)?.service.dnsMode,
    lbPolicy: byAge.find((e) => e.service.lbPolicy !== undefined)?.service.lbPolicy,
    healthCheck: byAge.find((e) => e.service.healthCheck !== undefined)?.service.healthCheck,
    backendProtocol: byAge.find((e) => e.service.backendProtocol !== undefined)?.service
      .backendProtocol,
    backendTls: byAge.find((e) => e.service.backendTls !== undefined)?.service.backendTls,
    clusters,
    conflicts,
  };
}

/**
 * A service-wide annotation the exports disagree on: the oldest export that sets it
 * wins (as for the other service-wide fields), and those that set another value are
 * listed. An export that leaves it unset does not disagree.
 */
function annotationConflict(
  byAge: readonly Exported[],
  field: 'backendProtocol' | 'backendTls',
): Conflict | undefined {
  const winner = byAge.find((e) => e.service[field] !== undefined);
  if (!winner) return undefined;
  const value = winner.service[field];
  const differs = byAge.filter((e) => e.service[field] !== undefined && e.service[field] !== value);
  if (differs.length === 0) return undefined;
  const names = differs.map((e) => e.input.cluster);
  const said = differs.map((e) => `${e.input.cluster} says ${e.service[field]}`).join(', ');
  return {
    field,
    clusters: names,
    reason: `${field === 'backendProtocol' ? 'fedgate.io/backend-protocol' : 'fedgate.io/backend-tls'} differs: ${said}; the oldest export that sets it (${winner.input.cluster}) says ${value}`,
  };
}

/** endpointsOf, from the memo while what it was built from is unchanged. */
function memoizedEndpoints(m: MemberInput): readonly Endpoint[] {
  const slices = [...m.slices];
  const had = m.memo?.value;
  if (
    had &&
    had.region === m.region &&
    had.slices.length === slices.length &&
    had.slices.every((s, i) => s === slices[i]) &&
    [...had.nodes].every(([name, node]) => m.nodes.get(name) === node)
  ) {
    return had.endpoints;
  }
  const endpoints = endpointsOf(m, slices);
  if (m.memo) {
    const nodes = new Map<string, NodeRecord | undefined>();
    for (const s of slices) {
      for (const ep of s.endpoints) {
        if (ep.nodeName !== undefined) nodes.set(ep.nodeName, m.nodes.get(ep.nodeName));
      }
    }
    m.memo.value = { slices, nodes, region: m.region, endpoints };
  }
  return endpoints;
}

/**
 * Whether two merges of a service are equal. Members whose endpoints come from the
 * same memo are the same array, so only the clusters that changed are compared.
 */
export function sameService(a: FederatedService, b: FederatedService): boolean {
  if (a === b) return true;
  const { clusters: ac, ...aRest } = a;
  const { clusters: bc, ...bRest } = b;
  if (ac.length !== bc.length || !sameJson(aRest, bRest)) return false;
  return ac.every((m, i) => {
    const n = bc[i]!;
    if (m.cluster !== n.cluster || m.weight !== n.weight || m.exportedAt !== n.exportedAt) {
      return false;
    }
    if (!sameJson(m.sync, n.sync) || !sameJson(m.ingress, n.ingress)) return false;
    return m.endpoints === n.endpoints || sameJson(m.endpoints, n.endpoints);
  });
}

function sameJson(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The cluster's endpoints across its slices. During a slice rewrite an address
 * can sit in two slices: it is listed once, its ready copy preferred.
 */
function endpointsOf(m: MemberInput, unsorted: readonly SliceRecord[]): Endpoint[] {
  const slices = [...unsorted].sort((a, b) => a.name.localeCompare(b.name));
  const byAddress = new Map<string, Endpoint>();
  for (const slice of slices) {
    for (const ep of slice.endpoints) {
      const node = ep.nodeName !== undefined ? m.nodes.get(ep.nodeName) : undefined;
      const endpoint: Endpoint = {
        addresses: ep.addresses,
        addressType: slice.addressType,
        ports: slice.ports,
        conditions: ep.conditions,
        locality: {
          region: node?.region ?? m.region,
          zone: ep.zone ?? node?.zone,
          subzone: node?.subzone,
        },
        hostname: ep.hostname,
        nodeName: ep.nodeName,
      };
      const key = `${slice.addressType}/${ep.addresses[0]}`;
      const have = byAddress.get(key);
      if (!have || (!have.conditions.ready && ep.conditions.ready)) byAddress.set(key, endpoint);
    }
  }
  return [...byAddress.values()];
}
