// Discovery documents (/api, /apis, /apis/<group>[/<version>], /version), in the
// shapes kube-apiserver serves and kubectl's RESTMapper reads.
import { RESOURCE_TYPES, type ResourceType, VERBS } from './resources.ts';

/** The version the parity test holds the simulator to (tools/kube builds kube-apiserver v1.37.2). */
export const SERVER_VERSION = {
  major: '1',
  minor: '37',
  emulationMajor: '1',
  emulationMinor: '37',
  minCompatibilityMajor: '1',
  minCompatibilityMinor: '36',
  gitVersion: 'v1.37.2+fedgate-localfed',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.26.8',
  compiler: 'gc',
  platform: 'linux/amd64',
};

/** Which types a server serves: a cluster without a CRD installed does not serve its group. */
export type TypeFilter = (t: ResourceType) => boolean;
const ALL: TypeFilter = () => true;

function groups(served: TypeFilter): Map<string, ResourceType[]> {
  const out = new Map<string, ResourceType[]>();
  for (const t of RESOURCE_TYPES) {
    if (!t.group || !served(t)) continue;
    const list = out.get(t.group) ?? [];
    list.push(t);
    out.set(t.group, list);
  }
  return out;
}

export function apiVersions(serverAddress: string) {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function apiGroup(name: string, types: ResourceType[]) {
  const versions = [...new Set(types.map((t) => t.version))].map((v) => ({
    groupVersion: `${name}/${v}`,
    version: v,
  }));
  return { name, versions, preferredVersion: versions[0]! };
}

export function apiGroupList(served: TypeFilter = ALL) {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...groups(served)].map(([name, types]) => apiGroup(name, types)),
  };
}

export function apiGroupDoc(group: string, served: TypeFilter = ALL) {
  const types = groups(served).get(group);
  if (!types) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group, types) };
}

export function apiResourceList(group: string, version: string, served: TypeFilter = ALL) {
  const types = RESOURCE_TYPES.filter(
    (t) => t.group === group && t.version === version && served(t),
  );
  if (types.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const t of types) {
    const r: Record<string, unknown> = {
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: VERBS,
    };
    if (t.shortNames.length > 0) r.shortNames = t.shortNames;
    if (t.categories) r.categories = t.categories;
    resources.push(r);
    if (t.statusSubresource) {
      resources.push({
        name: `${t.plural}/status`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['get', 'patch', 'update'],
      });
    }
  }
  // kube-apiserver's core list (/api/v1) has no apiVersion; the groups' lists have one.
  const list: Record<string, unknown> = { kind: 'APIResourceList' };
  if (group) list.apiVersion = 'v1';
  list.groupVersion = group ? `${group}/${version}` : version;
  list.resources = resources;
  return list;
}
