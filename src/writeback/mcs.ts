// What the MCS API objects should say, from the catalog's merge: each ServiceExport's
// conditions (Valid, Ready, Conflict, with the reasons sigs.k8s.io/mcs-api v1alpha1
// names) and each member's ServiceImports. Pure: the writer compares and writes.
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import type { ServiceRecord } from '../watch/records.ts';
import type { KubeObject } from './kube-api.ts';
import type { DesiredObject } from './writer.ts';

export const MCS_GROUP = 'multicluster.x-k8s.io';
export const SERVICE_EXPORT_GVR = {
  group: MCS_GROUP,
  version: 'v1alpha1',
  resource: 'serviceexports',
};
export const SERVICE_IMPORT_GVR = {
  group: MCS_GROUP,
  version: 'v1alpha1',
  resource: 'serviceimports',
};

/** The label on every ServiceImport fedgate made: only those are updated or deleted. */
export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_FEDGATE = 'fedgate';
/** Which federation made it (one member may be in several). */
export const FEDERATION_ANNOTATION = 'fedgate.io/federation';

/** The condition types fedgate owns on a ServiceExport; others' conditions are kept. */
export const EXPORT_CONDITIONS = ['Valid', 'Ready', 'Conflict'] as const;

export interface McsView {
  readonly snapshot: Snapshot;
  memberService(cluster: string, key: string): ServiceRecord | undefined;
  /** dns.addressing: the mode of a service with no fedgate.io/dns-mode. */
  readonly addressing: 'endpoints' | 'ingress' | 'proxy';
  /** dns.proxyAddresses: fedgate's edge addresses by locality. */
  readonly edges: readonly {
    region: string;
    zone?: string | undefined;
    addresses: readonly string[];
  }[];
  /** Each member's configured region. */
  readonly regions: ReadonlyMap<string, string | undefined>;
  readonly federation: string;
}

interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** mcs-api's Conflict reasons for the fields the merge compares. */
const CONFLICT_REASONS: Record<FederatedService['conflicts'][number]['field'], string> = {
  type: 'TypeConflict',
  sessionAffinity: 'SessionAffinityConflict',
  ports: 'PortConflict',
  backendProtocol: 'AnnotationsConflict',
  backendTls: 'AnnotationsConflict',
};

/** The conditions fedgate says on `cluster`'s ServiceExport `key`. */
export function exportConditions(cluster: string, key: string, view: McsView): Condition[] {
  const svc = view.memberService(cluster, key);
  const merged = view.snapshot.services.get(key);
  const member = merged?.clusters.some((c) => c.cluster === cluster) ?? false;
  const valid: Condition = !svc
    ? {
        type: 'Valid',
        status: 'False',
        reason: 'NoService',
        message: `Service ${key} does not exist in cluster ${cluster}`,
      }
    : svc.externalName
      ? {
          type: 'Valid',
          status: 'False',
          reason: 'InvalidServiceType',
          message: `Service ${key} is of type ExternalName, which cannot be exported`,
        }
      : { type: 'Valid', status: 'True', reason: 'Valid', message: `Service ${key} is exportable` };
  const ready: Condition =
    valid.status === 'False'
      ? { type: 'Ready', status: 'False', reason: 'Failed', message: valid.message }
      : member && merged
        ? {
            type: 'Ready',
            status: 'True',
            reason: 'Exported',
            message: `exported to the clusterset by fedgate (federation ${view.federation}) with ${merged.clusters.length} cluster${merged.clusters.length === 1 ? '' : 's'}: ${merged.clusters.map((c) => c.cluster).join(', ')}`,
          }
        : {
            type: 'Ready',
            status: 'Unknown',
            reason: 'Pending',
            message: `waiting for fedgate to merge ${key} from ${cluster}`,
          };
  const conflicts = member && merged ? merged.conflicts : [];
  const conflict: Condition =
    conflicts.length === 0
      ? { type: 'Conflict', status: 'False', reason: 'NoConflicts', message: '' }
      : {
          type: 'Conflict',
          status: 'True',
          reason: [...new Set(conflicts.map((c) => CONFLICT_REASONS[c.field]))].join(','),
          message: conflicts.map((c) => c.reason).join('; '),
        };
  return [valid, ready, conflict];
}

/** The ServiceExport's whole status: fedgate's conditions, with this generation, and others' as they are. */
export function exportStatus(
  cluster: string,
  current: KubeObject,
  view: McsView,
): Record<string, unknown> {
  const key = `${current.metadata?.namespace ?? ''}/${current.metadata?.name ?? ''}`;
  const generation = current.metadata?.generation;
  const ours = exportConditions(cluster, key, view).map((c) =>
    typeof generation === 'number' ? { ...c, observedGeneration: generation } : c,
  );
  const status = (current.status ?? {}) as Record<string, unknown>;
  const held = Array.isArray(status.conditions) ? (status.conditions as { type?: unknown }[]) : [];
  const others = held.filter(
    (c) => !EXPORT_CONDITIONS.includes(c.type as (typeof EXPORT_CONDITIONS)[number]),
  );
  return { ...status, conditions: [...others, ...ours] };
}

/** fedgate's edge addresses for a member: those of its region (all when none is), one per family (the CRD allows two). */
function edgeIps(cluster: string, view: McsView): string[] {
  const region = view.regions.get(cluster);
  const local = view.edges.filter((e) => e.region === region);
  const addresses = (local.length > 0 ? local : view.edges).flatMap((e) => e.addresses);
  const v4 = addresses.find((a) => !a.includes(':'));
  const v6 = addresses.find((a) => a.includes(':'));
  return [v4, v6].filter((a): a is string => a !== undefined);
}

/** Every ServiceImport `cluster` should have, by namespace/name. */
export function serviceImports(cluster: string, view: McsView): Map<string, DesiredObject> {
  const out = new Map<string, DesiredObject>();
  for (const svc of view.snapshot.services.values()) {
    const proxied = (svc.dnsMode ?? view.addressing) === 'proxy';
    const ips = svc.type === 'ClusterSetIP' && proxied ? edgeIps(cluster, view) : [];
    out.set(svc.key, {
      metadata: {
        labels: { [MANAGED_BY]: MANAGED_BY_FEDGATE },
        annotations: { [FEDERATION_ANNOTATION]: view.federation },
      },
      spec: {
        type: svc.type,
        ports: svc.ports.map((p) => ({
          ...(p.name ? { name: p.name } : {}),
          protocol: p.protocol,
          port: p.port,
          ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
        })),
        sessionAffinity: svc.sessionAffinity,
        ...(ips.length > 0 ? { ips } : {}),
      },
      status: { clusters: svc.clusters.map((c) => ({ cluster: c.cluster })) },
    });
  }
  return out;
}
