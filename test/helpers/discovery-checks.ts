// What the discovery suites share: a per-test DiscoveryEnv of one API kind over a
// file's pool of members, waiting on the catalog, deploying a service the way a
// cluster's controllers would leave it, and the catalog's endpoints in a comparable form.
import { afterAll, afterEach, beforeEach } from 'vitest';
import type { Endpoint, Snapshot } from '../../src/catalog/model.ts';
import type { Discovery } from '../../src/discovery.ts';
import { MCS_GROUP } from '../../src/localfed/cluster.ts';
import { KubeRest } from '../../src/localfed/kube-rest.ts';
import type { ApiKind, MemberCluster } from '../../src/localfed/member.ts';
import { installServiceExportCrd } from '../../src/localfed/service-export-crd.ts';
import { SimMember } from '../../src/localfed/sim-member.ts';
import { compareAddresses, DiscoveryEnv, member } from './discovery-env.ts';
import { requireKubeTools } from './kube-control-plane.ts';
import { type EndpointSpec, namespace, service, serviceExport, slice } from './kube-objects.ts';
import { startMember } from './members.ts';
import { MemberPool } from './shared-members.ts';
import { waitFor } from './wait.ts';

export const EXPORT_API = 'multicluster.x-k8s.io/v1alpha1';
export const SLICE_API = 'discovery.k8s.io/v1';
/** Recovery after a fault waits out the watch backoff (0.8 s doubling): be generous. */
export const RECOVERY_MS = 40_000;
export const SHORT_MS = 15_000;

/**
 * The file's pool of members (real ones shared by its tests, stopped after its last
 * test) and, per describe, a fresh DiscoveryEnv of one API kind for each test, handed
 * to `set`: `const useEnv = discoveryEnvs((e) => { env = e; })`, then `useEnv(api)`.
 */
export function discoveryEnvs(set: (env: DiscoveryEnv) => void): (api: ApiKind) => void {
  const pool = new MemberPool(startMember);
  let env: DiscoveryEnv | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });
  afterAll(async () => {
    await pool.stopAll();
  });
  return (api) => {
    beforeEach(() => {
      env = new DiscoveryEnv(api, pool);
      set(env);
    });
  };
}

/**
 * Makes a member that lacked it serve the MCS ServiceExport resource: installs the CRD
 * as a real member's start does (on the simulator, serves the group).
 */
export async function serveServiceExport(c: MemberCluster): Promise<void> {
  if (c instanceof SimMember) {
    c.sim.api.setGroupServed(MCS_GROUP, true);
    return;
  }
  const rest = new KubeRest(c.url, c.token, c.caCert);
  try {
    await installServiceExportCrd(rest, requireKubeTools().serviceExportCrd, c.name);
  } finally {
    rest.close();
  }
}

/** Waits until the current snapshot satisfies `pred`, and returns that snapshot. */
export function waitSnapshot(
  d: Discovery,
  pred: (s: Snapshot) => unknown,
  what: string,
  timeoutMs = SHORT_MS,
): Promise<Snapshot> {
  return waitFor(
    () => {
      const s = d.catalog.current();
      return pred(s) ? s : undefined;
    },
    timeoutMs,
    what,
  );
}

/** An exported service with one slice (and its namespace when missing). */
export async function deploy(
  c: MemberCluster,
  ns: string,
  name: string,
  endpoints: EndpointSpec[],
): Promise<void> {
  if (!(await c.get('v1', 'Namespace', undefined, ns))) await c.apply(namespace(ns));
  await c.apply(service(ns, name));
  await c.apply(serviceExport(ns, name));
  await c.apply(slice(ns, name, `${name}-a`, endpoints));
}

/** Removes what `deploy` made, and every slice of the service. */
export async function undeploy(c: MemberCluster, ns: string, name: string): Promise<void> {
  await c.remove(EXPORT_API, 'ServiceExport', ns, name);
  await c.remove('v1', 'Service', ns, name);
  for (const s of await c.list(SLICE_API, 'EndpointSlice', ns)) {
    if (s.metadata.labels?.['kubernetes.io/service-name'] === name) {
      await c.remove(SLICE_API, 'EndpointSlice', ns, s.metadata.name);
    }
  }
}

export interface EndpointView {
  address: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  zone: string | undefined;
  region: string | undefined;
}

function view(e: Endpoint): EndpointView {
  return {
    address: e.addresses[0] ?? '',
    ...e.conditions,
    zone: e.locality.zone,
    region: e.locality.region,
  };
}

/** A member's endpoints in the catalog, by address. */
export function endpointsOf(s: Snapshot, key: string, cluster: string): EndpointView[] {
  const m = member(s, key, cluster);
  if (!m) return [];
  return m.member.endpoints.map(view).sort((a, b) => compareAddresses(a.address, b.address));
}

export const byAddress = (list: EndpointView[]) => new Map(list.map((e) => [e.address, e]));
