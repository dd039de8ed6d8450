// A real Kubernetes control plane for tests (etcd + kube-apiserver on loopback, RBAC, an
// admin token in system:masters): the product's own, src/localfed/control-plane.ts, under
// the names the tests use. The binaries come from FEDGATE_KUBE_TOOLS (set by the vitest
// global setup) or scripts/ensure-kube-tools.sh.
export {
  type ControlPlaneOptions,
  DEFAULT_SERVICE_CLUSTER_IP_RANGE,
  KubeControlPlane as ControlPlane,
} from '../../src/localfed/control-plane.ts';
export { type KubeTools, requireKubeTools } from '../../src/localfed/kube-tools.ts';
