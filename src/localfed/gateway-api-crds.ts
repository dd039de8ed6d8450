// The Gateway API's standard-channel CRDs (GatewayClass, Gateway, HTTPRoute, GRPCRoute,
// ReferenceGrant and the rest), as sigs.k8s.io/gateway-api publishes them in
// config/crd/standard (tools/kube copies them to crds/gateway-api), installed on a real
// member. The directory's ValidatingAdmissionPolicy (safe upgrades between channels) is
// not installed: it guards later CRD upgrades, and no member here upgrades them.
import { installCrds, readCrdDir } from './crds.ts';
import type { KubeRest } from './kube-rest.ts';

export async function installGatewayApiCrds(
  api: KubeRest,
  dir: string,
  member: string,
): Promise<void> {
  const crds = await readCrdDir(dir);
  if (crds.length === 0) throw new Error(`${dir} holds no CustomResourceDefinition`);
  await installCrds(api, crds, member, 'the Gateway API CRDs');
}
