// The resources the simulator serves, with what discovery says about them and the
// per-type behaviour kube-apiserver applies: defaulting, validation, immutable fields.
import { isIP } from 'node:net';
import { ageColumn, column, infoColumn, nameColumn, nodeAddress } from './columns.ts';
import { GATEWAY_TYPES } from './gateway-resources.ts';
import { isRecord, type KubeObject } from './objects.ts';
import type { ResourceType } from './resource-type.ts';
import { secretType } from './secret-resources.ts';
import type { StatusCause } from './status.ts';
import {
  clusterIPChange,
  conditionCauses,
  DNS1123_SUBDOMAIN,
  immutable,
  invalid,
  nameCauses,
  required,
} from './validation.ts';
import { WRITEBACK_TYPES } from './writeback-resources.ts';

export type { DefaultingContext, ResourceType } from './resource-type.ts';

export const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

export function apiVersionOf(t: Pick<ResourceType, 'group' | 'version'>): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

/** The apiVersion objects of `t` are stored with (its storage version, when it has several). */
export function storedApiVersionOf(t: ResourceType): string {
  return apiVersionOf({ group: t.group, version: t.storageVersion ?? t.version });
}

/** A stored object as served at `t`'s version (the versions of a kind share one schema). */
export function servedAs(t: ResourceType, obj: KubeObject): KubeObject {
  const v = apiVersionOf(t);
  return obj.apiVersion === v ? obj : { ...obj, apiVersion: v };
}

function spec(obj: KubeObject): Record<string, unknown> {
  if (!isRecord(obj.spec)) obj.spec = {};
  return obj.spec as Record<string, unknown>;
}

// ---- Namespace ----------------------------------------------------------------

const namespaceType: ResourceType = {
  group: '',
  version: 'v1',
  kind: 'Namespace',
  listKind: 'NamespaceList',
  plural: 'namespaces',
  singular: 'namespace',
  namespaced: false,
  shortNames: ['ns'],
  statusSubresource: true,
  emptyFields: { spec: {}, status: {} },
  fieldLabels: { 'status.phase': (o) => String((o.status as { phase?: string })?.phase ?? '') },
  validate: (obj) => nameCauses(obj.metadata.name, 'label'),
  defaults: (obj) => {
    obj.metadata.labels = {
      ...obj.metadata.labels,
      'kubernetes.io/metadata.name': obj.metadata.name,
    };
    obj.spec = { finalizers: ['kubernetes'], ...(isRecord(obj.spec) ? obj.spec : {}) };
    obj.status = { phase: 'Active', ...(isRecord(obj.status) ? obj.status : {}) };
  },
  columns: [
    nameColumn,
    column('Status', 'The status of the namespace', (o) =>
      String((o.status as { phase?: string })?.phase ?? ''),
    ),
    ageColumn,
  ],
};

// ---- Service ------------------------------------------------------------------

interface ServicePort {
  name?: string;
  port?: number;
  targetPort?: number | string;
  protocol?: string;
  nodePort?: number;
  appProtocol?: string;
}

function servicePorts(obj: KubeObject): ServicePort[] {
  const ports = spec(obj).ports;
  return Array.isArray(ports) ? (ports as ServicePort[]) : [];
}

function validatePort(p: unknown, field: string): StatusCause[] {
  if (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535) {
    return [invalid(field, p, 'must be between 1 and 65535, inclusive')];
  }
  return [];
}

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];

const serviceType: ResourceType = {
  group: '',
  version: 'v1',
  kind: 'Service',
  listKind: 'ServiceList',
  plural: 'services',
  singular: 'service',
  namespaced: true,
  shortNames: ['svc'],
  categories: ['all'],
  emptyFields: { spec: {}, status: { loadBalancer: {} } },
  fieldLabels: {
    'spec.clusterIP': (o) => String(spec(o).clusterIP ?? ''),
    'spec.type': (o) => String(spec(o).type ?? ''),
  },
  statusSubresource: true,
  validate: (obj, old) => {
    const causes = nameCauses(obj.metadata.name, 'dns1035');
    const s = spec(obj);
    const type = s.type ?? 'ClusterIP';
    if (!['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'].includes(String(type))) {
      causes.push({
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: ${JSON.stringify(type)}: supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"`,
        field: 'spec.type',
      });
    }
    const ports = servicePorts(obj);
    if (ports.length === 0 && s.clusterIP !== 'None' && type !== 'ExternalName') {
      causes.push(required('spec.ports'));
    }
    const names = new Set<string>();
    ports.forEach((p, i) => {
      const f = `spec.ports[${i}]`;
      if (!isRecord(p as unknown)) {
        causes.push(invalid(f, p, 'must be an object'));
        return;
      }
      causes.push(...validatePort(p.port, `${f}.port`));
      if (ports.length > 1 && !p.name) causes.push(required(`${f}.name`));
      if (p.name) {
        if (names.has(p.name))
          causes.push({
            reason: 'FieldValueDuplicate',
            message: `Duplicate value: "${p.name}"`,
            field: `${f}.name`,
          });
        names.add(p.name);
      }
      if (p.protocol !== undefined && !PROTOCOLS.includes(p.protocol)) {
        causes.push({
          reason: 'FieldValueNotSupported',
          message: `Unsupported value: "${p.protocol}": supported values: "SCTP", "TCP", "UDP"`,
          field: `${f}.protocol`,
        });
      }
      if (typeof p.targetPort === 'number')
        causes.push(...validatePort(p.targetPort, `${f}.targetPort`));
    });
    if (
      s.clusterIP !== undefined &&
      s.clusterIP !== 'None' &&
      s.clusterIP !== '' &&
      isIP(String(s.clusterIP)) === 0
    ) {
      causes.push(invalid('spec.clusterIP', s.clusterIP, 'must be a valid IP address'));
    }
    if (old) causes.push(...clusterIPChange(s, spec(old)));
    return causes;
  },
  defaults: (obj, ctx) => {
    const s = spec(obj);
    s.type ??= 'ClusterIP';
    s.sessionAffinity ??= 'None';
    s.internalTrafficPolicy ??= 'Cluster';
    // An update that leaves the cluster IPs out keeps the allocated ones, as
    // kube-apiserver's patchAllocatedValues does (a replace from a manifest has none).
    const was = ctx.old && isRecord(ctx.old.spec) ? ctx.old.spec : undefined;
    if (was && (s.clusterIP === undefined || s.clusterIP === '')) {
      s.clusterIP = was.clusterIP;
      if (!Array.isArray(s.clusterIPs) || s.clusterIPs.length === 0) s.clusterIPs = was.clusterIPs;
    }
    if (s.clusterIP === undefined || s.clusterIP === '') s.clusterIP = ctx.allocateClusterIP();
    s.clusterIPs ??= [s.clusterIP];
    if (s.clusterIP !== 'None' || s.ipFamilies === undefined) s.ipFamilies ??= ['IPv4'];
    s.ipFamilyPolicy ??= 'SingleStack';
    for (const p of servicePorts(obj)) {
      p.protocol ??= 'TCP';
      if (p.port !== undefined) p.targetPort ??= p.port;
    }
    if (!isRecord(obj.status)) obj.status = { loadBalancer: {} };
  },
  columns: [
    nameColumn,
    column('Type', 'type determines how the Service is exposed.', (o) =>
      String(spec(o).type ?? ''),
    ),
    column('Cluster-IP', 'clusterIP is the IP address of the service.', (o) =>
      String(spec(o).clusterIP ?? ''),
    ),
    column('External-IP', 'externalIPs and load-balancer ingress of the service.', (o) => {
      const ingress = (
        (o.status as { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } })
          ?.loadBalancer?.ingress ?? []
      ).map((i) => i.ip ?? i.hostname ?? '');
      if (ingress.length > 0) return ingress.join(',');
      return spec(o).type === 'LoadBalancer' ? '<pending>' : '<none>';
    }),
    column('Port(s)', 'ports of the service.', (o) => {
      const ports = servicePorts(o);
      if (ports.length === 0) return '<none>';
      return ports
        .map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`)
        .join(',');
    }),
    ageColumn,
    column(
      'Selector',
      'Route service traffic to pods with label keys and values matching this selector.',
      (o) => {
        const sel = spec(o).selector;
        if (!isRecord(sel) || Object.keys(sel).length === 0) return '<none>';
        return Object.entries(sel)
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
      },
      1,
    ),
  ],
};

// ---- Node ---------------------------------------------------------------------

const nodeType: ResourceType = {
  group: '',
  version: 'v1',
  kind: 'Node',
  listKind: 'NodeList',
  plural: 'nodes',
  singular: 'node',
  namespaced: false,
  shortNames: ['no'],
  statusSubresource: true,
  fieldLabels: { 'spec.unschedulable': (o) => String(spec(o).unschedulable === true) },
  deleteAnswersStatus: true,
  emptyFields: {
    spec: {},
    status: {
      daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
      nodeInfo: Object.fromEntries(
        [
          'machineID',
          'systemUUID',
          'bootID',
          'kernelVersion',
          'osImage',
          'containerRuntimeVersion',
          'kubeletVersion',
          'kubeProxyVersion',
          'operatingSystem',
          'architecture',
        ].map((k) => [k, '']),
      ),
    },
  },
  validate: (obj) => nameCauses(obj.metadata.name, 'subdomain'),
  defaults: (obj) => {
    obj.metadata.labels = {
      'kubernetes.io/hostname': obj.metadata.name,
      'kubernetes.io/os': 'linux',
      ...obj.metadata.labels,
    };
    spec(obj);
    if (!isRecord(obj.status)) obj.status = {};
  },
  columns: [
    nameColumn,
    column('Status', 'The status of the node', (o) => {
      const conds =
        (o.status as { conditions?: { type: string; status: string }[] })?.conditions ?? [];
      const ready = conds.find((c) => c.type === 'Ready');
      const state = ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown';
      return spec(o).unschedulable ? `${state},SchedulingDisabled` : state;
    }),
    column('Roles', 'The roles of the node', (o) => {
      const roles = Object.keys(o.metadata.labels ?? {})
        .filter((k) => k.startsWith('node-role.kubernetes.io/'))
        .map((k) => k.slice('node-role.kubernetes.io/'.length));
      return roles.length ? roles.join(',') : '<none>';
    }),
    ageColumn,
    column('Version', 'Kubelet Version reported by the node.', (o) =>
      String(
        (o.status as { nodeInfo?: { kubeletVersion?: string } })?.nodeInfo?.kubeletVersion ?? '',
      ),
    ),
    column(
      'Internal-IP',
      'List of addresses reachable to the node.',
      (o) => nodeAddress(o, 'InternalIP'),
      1,
    ),
    column(
      'External-IP',
      'List of addresses reachable to the node.',
      (o) => nodeAddress(o, 'ExternalIP'),
      1,
    ),
    infoColumn('OS-Image', 'OS Image reported by the node.', 'osImage'),
    infoColumn('Kernel-Version', 'Kernel Version reported by the node.', 'kernelVersion'),
    infoColumn(
      'Container-Runtime',
      'Container Runtime Version reported by the node.',
      'containerRuntimeVersion',
    ),
  ],
};

// ---- EndpointSlice ------------------------------------------------------------

interface Endpoint {
  addresses?: unknown;
  conditions?: Record<string, unknown>;
  hostname?: string;
  nodeName?: string;
  zone?: string;
}

function endpointsOf(obj: KubeObject): Endpoint[] {
  return Array.isArray(obj.endpoints) ? (obj.endpoints as Endpoint[]) : [];
}

const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'];

const endpointSliceType: ResourceType = {
  group: 'discovery.k8s.io',
  version: 'v1',
  kind: 'EndpointSlice',
  listKind: 'EndpointSliceList',
  plural: 'endpointslices',
  singular: 'endpointslice',
  namespaced: true,
  shortNames: [],
  statusSubresource: false,
  generation: true,
  deleteAnswersStatus: true,
  emptyFields: { addressType: '', endpoints: null, ports: null },
  unknownFieldSelector: (field) =>
    `"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`,
  validate: (obj, old) => {
    const causes = nameCauses(obj.metadata.name, 'subdomain');
    const type = obj.addressType;
    if (type === undefined) causes.push(required('addressType'));
    else if (!ADDRESS_TYPES.includes(String(type))) {
      causes.push({
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: ${JSON.stringify(type)}: supported values: "FQDN", "IPv4", "IPv6"`,
        field: 'addressType',
      });
    }
    const endpoints = endpointsOf(obj);
    if (endpoints.length > 1000)
      causes.push({
        reason: 'FieldValueTooMany',
        message: 'Too many: must have at most 1000 items',
        field: 'endpoints',
      });
    endpoints.forEach((e, i) => {
      const f = `endpoints[${i}]`;
      const addrs = Array.isArray(e?.addresses) ? (e.addresses as unknown[]) : [];
      if (addrs.length === 0)
        causes.push(required(`${f}.addresses`, 'Required value: must contain at least 1 address'));
      if (addrs.length > 100)
        causes.push({
          reason: 'FieldValueTooMany',
          message: 'Too many: must have at most 100 items',
          field: `${f}.addresses`,
        });
      addrs.forEach((a, j) => {
        const family = isIP(String(a));
        const ok =
          type === 'IPv4'
            ? family === 4
            : type === 'IPv6'
              ? family === 6
              : DNS1123_SUBDOMAIN.test(String(a));
        if (!ok)
          causes.push(
            invalid(`${f}.addresses[${j}]`, a, `must be a valid ${String(type)} address`),
          );
      });
    });
    const ports = Array.isArray(obj.ports) ? (obj.ports as ServicePort[]) : [];
    ports.forEach((p, i) => {
      if (p.port !== undefined) causes.push(...validatePort(p.port, `ports[${i}].port`));
    });
    if (old) causes.push(...immutable('addressType', obj.addressType, old.addressType));
    return causes;
  },
  defaults: (obj) => {
    // kube-apiserver stores a slice without endpoints as null, not [].
    const endpoints = endpointsOf(obj);
    obj.endpoints = endpoints.length > 0 ? endpoints : null;
    for (const e of endpoints) e.conditions ??= {};
    if (Array.isArray(obj.ports)) for (const p of obj.ports as ServicePort[]) p.protocol ??= 'TCP';
  },
  columns: [
    nameColumn,
    column('AddressType', 'The IP protocol for this slice', (o) => String(o.addressType ?? '')),
    column('Ports', 'The ports for this slice', (o) => {
      const ports = Array.isArray(o.ports) ? (o.ports as ServicePort[]) : [];
      return ports.length ? ports.map((p) => String(p.port ?? '')).join(',') : '<unset>';
    }),
    column('Endpoints', 'First N endpoints for this slice', (o) => {
      const addrs = endpointsOf(o).flatMap((e) => (Array.isArray(e.addresses) ? e.addresses : []));
      if (addrs.length === 0) return '<unset>';
      return addrs.length > 3
        ? `${addrs.slice(0, 3).join(',')} + ${addrs.length - 3} more...`
        : addrs.join(',');
    }),
    ageColumn,
  ],
};

// ---- ServiceExport (a CRD on real clusters) -----------------------------------

const serviceExportType: ResourceType = {
  group: 'multicluster.x-k8s.io',
  version: 'v1alpha1',
  kind: 'ServiceExport',
  listKind: 'ServiceExportList',
  plural: 'serviceexports',
  singular: 'serviceexport',
  namespaced: true,
  shortNames: ['svcex', 'svcexport'],
  statusSubresource: true,
  custom: true,
  deleteAnswersStatus: true,
  generation: true,
  validate: (obj) => [...nameCauses(obj.metadata.name, 'dns1035'), ...conditionCauses(obj.status)],
  defaults: () => {},
  // A CRD's Age column is a date; kube-apiserver still renders the cell as an age.
  columns: [nameColumn, { ...ageColumn, type: 'date' }],
};

export const RESOURCE_TYPES: readonly ResourceType[] = [
  namespaceType,
  serviceType,
  nodeType,
  endpointSliceType,
  serviceExportType,
  secretType,
  ...GATEWAY_TYPES,
  ...WRITEBACK_TYPES,
];

/** True when some served type belongs to `group`. */
export function groupExists(group: string): boolean {
  return RESOURCE_TYPES.some((t) => t.group === group);
}

export function findType(group: string, version: string, plural: string): ResourceType | undefined {
  return RESOURCE_TYPES.find(
    (t) => t.group === group && t.version === version && t.plural === plural,
  );
}

export function typeOfKind(apiVersion: string, kind: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
}
