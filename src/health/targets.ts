// What the active checker probes, derived from a catalog snapshot. Pure: the same
// snapshot and options give the same targets, so it is tested from literals.
import type { Endpoint, FederatedService, PortRecord, Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import { endpointId } from '../routing/types.ts';

export type ActiveCheckConfig = Config['health']['active'];
export type Addressing = Config['dns']['addressing'];

export interface ProbeTarget {
  /** namespace/name */
  readonly service: string;
  /** endpointId(cluster, address): the key the health store and routing share. */
  readonly id: string;
  readonly cluster: string;
  /** An IPv4 or IPv6 address, or (ingress) a load balancer's hostname. */
  readonly host: string;
  readonly port: number;
}

/** An endpoint or ingress that would be probed but cannot be, and why. */
export interface SkippedTarget {
  readonly service: string;
  readonly id: string;
  readonly cluster: string;
  readonly reason: string;
}

export interface TargetOptions {
  /** A Service port's name or number; default: the service's first TCP port. */
  readonly port?: string | number | undefined;
  readonly addressing: Addressing;
}

export interface TargetSet {
  readonly targets: readonly ProbeTarget[];
  readonly skipped: readonly SkippedTarget[];
}

/** Identifies one probe: a target whose address or port changes is a new probe. */
export function targetKey(t: ProbeTarget): string {
  return `${t.service} ${t.id} ${t.host} ${t.port}`;
}

export function probeTargets(snapshot: Snapshot, opts: TargetOptions): TargetSet {
  const targets: ProbeTarget[] = [];
  const skipped: SkippedTarget[] = [];
  for (const svc of snapshot.services.values()) {
    const one = serviceTargets(svc, opts);
    targets.push(...one.targets);
    skipped.push(...one.skipped);
  }
  return { targets, skipped };
}

/** One service's targets, each once. */
export function serviceTargets(svc: FederatedService, opts: TargetOptions): TargetSet {
  const targets: ProbeTarget[] = [];
  const skipped: SkippedTarget[] = [];
  const seen = new Set<string>();
  const add = (t: ProbeTarget) => {
    const key = targetKey(t);
    if (seen.has(key)) return;
    seen.add(key);
    targets.push(t);
  };
  const port = servicePort(svc, opts.port);
  if (opts.addressing === 'ingress') ingressTargets(svc, port, add, skipped);
  else endpointTargets(svc, port, add, skipped);
  return { targets, skipped };
}

/** Whether a service is checked on a schedule: its annotation, else the config's scope. */
export function isChecked(svc: FederatedService, scope: ActiveCheckConfig['scope']): boolean {
  return svc.healthCheck ?? scope === 'all';
}

/**
 * Every id the catalog knows for a service, endpoints and ingresses alike. The
 * health store is shared with outlier detection, so only ids gone from here may
 * be forgotten, not merely those this checker stopped probing.
 */
export function catalogIds(svc: FederatedService | undefined): Set<string> {
  const ids = new Set<string>();
  for (const m of svc?.clusters ?? []) {
    for (const ep of m.endpoints) {
      const a = ep.addresses[0];
      if (a !== undefined) ids.add(endpointId(m.cluster, a));
    }
    for (const ing of m.ingress) {
      const a = ing.ip ?? ing.hostname;
      if (a !== undefined) ids.add(endpointId(m.cluster, a));
    }
  }
  return ids;
}

type PortChoice = { port: PortRecord } | { reason: string };

/** The Service port to check: by name or number, else the first TCP one (UDP cannot be probed). */
function servicePort(svc: FederatedService, wanted: string | number | undefined): PortChoice {
  if (wanted === undefined) {
    const port = svc.ports.find((p) => p.protocol === 'TCP');
    return port ? { port } : { reason: 'service has no TCP port' };
  }
  const port = svc.ports.find((p) => (typeof wanted === 'number' ? p.port : p.name) === wanted);
  if (!port) return { reason: `service has no port ${JSON.stringify(wanted)}` };
  if (port.protocol !== 'TCP') return { reason: `port ${port.port} is ${port.protocol}` };
  return { port };
}

function endpointTargets(
  svc: FederatedService,
  choice: PortChoice,
  add: (t: ProbeTarget) => void,
  skipped: SkippedTarget[],
): void {
  for (const m of svc.clusters) {
    for (const ep of m.endpoints) {
      // Leaving anyway; probing it would only produce noise.
      if (ep.conditions.terminating) continue;
      const address = ep.addresses[0];
      if (address === undefined) continue;
      const id = endpointId(m.cluster, address);
      const skip = (reason: string) =>
        skipped.push({ service: svc.key, id, cluster: m.cluster, reason });
      if (ep.addressType === 'FQDN') {
        skip('FQDN endpoints are not probed');
        continue;
      }
      if ('reason' in choice) {
        skip(choice.reason);
        continue;
      }
      const port = targetPort(ep, choice.port);
      if (port === undefined) {
        skip(`no EndpointSlice port for service port ${portText(choice.port)}`);
        continue;
      }
      add({ service: svc.key, id, cluster: m.cluster, host: address, port });
    }
  }
}

/** EndpointSlice ports carry the target port under the Service port's name ('' when unnamed). */
function targetPort(ep: Endpoint, servicePort: PortRecord): number | undefined {
  const match = ep.ports.find(
    (p) => p.name === servicePort.name && p.protocol === servicePort.protocol,
  );
  return match?.port;
}

function ingressTargets(
  svc: FederatedService,
  choice: PortChoice,
  add: (t: ProbeTarget) => void,
  skipped: SkippedTarget[],
): void {
  for (const m of svc.clusters) {
    for (const ing of m.ingress) {
      const host = ing.ip ?? ing.hostname;
      if (host === undefined) continue;
      const id = endpointId(m.cluster, host);
      if ('reason' in choice) {
        skipped.push({ service: svc.key, id, cluster: m.cluster, reason: choice.reason });
        continue;
      }
      add({ service: svc.key, id, cluster: m.cluster, host, port: choice.port.port });
    }
  }
}

function portText(p: PortRecord): string {
  return `${p.name || '(unnamed)'} ${p.port}/${p.protocol}`;
}
