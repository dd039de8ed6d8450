// The controllers a member cluster would run, played by localfed through the
// member's API (simulator or kube-apiserver alike): kubelets posting Node status,
// the Service and ServiceExport a deployment brings, and the EndpointSlice
// controller publishing exactly the backends that are listening.
import { FEDERATE_ANNOTATION } from '../watch/annotations.ts';
import { type ClusterRuntime, type NodeSpec, serviceId, shortHash } from './cluster-runtime.ts';
import type { MemberCluster } from './member.ts';
import type { KubeObject } from './objects.ts';
import type { ScenarioService } from './scenario.ts';

const ENDPOINTS_PER_SLICE = 100;
const KUBELET_VERSION = 'v1.33.0';
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
const ENDPOINTSLICE_CONTROLLER = 'endpointslice-controller.k8s.io';

/**
 * Makes backends, load balancers, nodes, services and EndpointSlices match the
 * desired state. `zoneUp` says whether a zone is running. Run it on the cluster's
 * queue: it reads and writes without holding anything else off.
 */
export async function reconcileCluster(
  rt: ClusterRuntime,
  zoneUp: (zone: string) => boolean,
): Promise<void> {
  const up = (zone: string) => !rt.failed && zoneUp(zone);
  const gone = rt.pods.filter((p) => p.gone);
  rt.pods = rt.pods.filter((p) => !p.gone);
  await Promise.all(gone.map((p) => p.backend.stop()));
  await Promise.all(
    rt.pods.map((p) => (up(p.backend.info.zone) ? p.backend.start() : p.backend.stop())),
  );
  await Promise.all([...rt.lbs.values()].map((lb) => (rt.failed ? lb.stop() : lb.start())));
  if (rt.failed) return; // Unreachable: what its API would say is frozen as last seen.
  const m = rt.member;
  await Promise.all(rt.nodes.map((n) => m.apply(nodeObject(rt, n, up(n.zone)))));
  for (const svc of rt.services.values()) {
    if (!(await m.get('v1', 'Namespace', undefined, svc.namespace))) {
      await m.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: svc.namespace } });
    }
    const service = await m.apply(serviceObject(rt, svc));
    if (svc.exported && rt.spec.serviceExportCRD) {
      await m.apply({
        apiVersion: 'multicluster.x-k8s.io/v1alpha1',
        kind: 'ServiceExport',
        metadata: { name: svc.name, namespace: svc.namespace },
      });
    }
    await syncSlices(rt, svc, service);
  }
}

function nodeObject(rt: ClusterRuntime, node: NodeSpec, ready: boolean): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      labels: {
        'kubernetes.io/hostname': node.name,
        'topology.kubernetes.io/region': rt.spec.region,
        'topology.kubernetes.io/zone': node.zone,
      },
    },
    spec: {},
    status: {
      conditions: [
        {
          type: 'Ready',
          status: ready ? 'True' : 'Unknown',
          reason: ready ? 'KubeletReady' : 'NodeStatusUnknown',
          message: ready
            ? 'kubelet is posting ready status'
            : 'Kubelet stopped posting node status.',
        },
      ],
      addresses: [
        { type: 'InternalIP', address: node.ip },
        { type: 'Hostname', address: node.name },
      ],
      nodeInfo: {
        kubeletVersion: KUBELET_VERSION,
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    },
  };
}

function serviceObject(rt: ClusterRuntime, svc: ScenarioService): KubeObject {
  const lb = rt.lbs.get(serviceId(svc));
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: svc.name,
      namespace: svc.namespace,
      labels: { app: svc.name, ...svc.labels },
      // Without the ServiceExport CRD, exporting is the fedgate.io/federate annotation.
      annotations:
        svc.exported && !rt.spec.serviceExportCRD
          ? { ...svc.annotations, [FEDERATE_ANNOTATION]: 'true' }
          : svc.annotations,
    },
    spec: {
      type: svc.loadBalancer ? 'LoadBalancer' : 'ClusterIP',
      ...(svc.headless ? { clusterIP: 'None' } : {}),
      selector: { app: svc.name },
      ports: svc.ports.map((p) => ({
        name: p.name,
        port: p.port,
        targetPort: p.targetPort ?? p.port,
        protocol: p.protocol,
        ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
      })),
    },
    ...(lb ? { status: { loadBalancer: { ingress: [{ ip: lb.ip, ipMode: 'VIP' }] } } } : {}),
  };
}

/** The service's endpoints as the EndpointSlice controller would publish them. */
async function syncSlices(
  rt: ClusterRuntime,
  svc: ScenarioService,
  service: KubeObject,
): Promise<void> {
  const id = serviceId(svc);
  const endpoints = rt.pods
    .filter((p) => serviceId(p.service) === id)
    .map((p) => {
      const info = p.backend.info;
      const listening = p.backend.listening;
      return {
        addresses: [info.ip],
        conditions: {
          ready: listening && !p.terminating,
          serving: listening,
          terminating: p.terminating,
        },
        ...(info.hostname ? { hostname: info.hostname } : {}),
        nodeName: info.node,
        zone: info.zone,
        targetRef: { kind: 'Pod', namespace: info.namespace, name: info.pod },
      };
    });
  const chunks: (typeof endpoints)[] = [];
  for (let i = 0; i < endpoints.length; i += ENDPOINTS_PER_SLICE)
    chunks.push(endpoints.slice(i, i + ENDPOINTS_PER_SLICE));
  if (chunks.length === 0) chunks.push([]);
  const named = chunks.map((chunk, k) => ({
    name: `${svc.name}-${shortHash(`${rt.spec.name}/${id}/${k}`, 5)}`,
    chunk,
  }));
  for (const { name, chunk } of named) {
    await rt.member.apply({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name,
        namespace: svc.namespace,
        labels: { [SERVICE_NAME_LABEL]: svc.name, [MANAGED_BY_LABEL]: ENDPOINTSLICE_CONTROLLER },
        ownerReferences: [
          {
            apiVersion: 'v1',
            kind: 'Service',
            name: svc.name,
            uid: service.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      addressType: 'IPv4',
      endpoints: chunk,
      ports: svc.ports.map((p) => ({
        name: p.name,
        port: p.targetPort ?? p.port,
        protocol: p.protocol,
      })),
    });
  }
  // Slices beyond what is needed now are deleted, as the EndpointSlice controller does.
  for (const slice of await ownSlices(rt.member, svc)) {
    if (!named.some((n) => n.name === slice.metadata.name)) {
      await rt.member.remove(
        'discovery.k8s.io/v1',
        'EndpointSlice',
        svc.namespace,
        slice.metadata.name,
      );
    }
  }
}

function ownSlices(member: MemberCluster, svc: ScenarioService): Promise<KubeObject[]> {
  return member
    .list('discovery.k8s.io/v1', 'EndpointSlice', svc.namespace)
    .then((all) =>
      all.filter(
        (s) =>
          s.metadata.labels?.[SERVICE_NAME_LABEL] === svc.name &&
          s.metadata.labels[MANAGED_BY_LABEL] === ENDPOINTSLICE_CONTROLLER,
      ),
    );
}
