// The Gateway API's CRDs (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant and
// the rest), as sigs.k8s.io/gateway-api publishes them per release channel in
// config/crd/standard and config/crd/experimental (tools/kube copies them to
// crds/gateway-api and crds/gateway-api-experimental), installed on a real member: every
// CRD of the channel, the experimental one's x-k8s.io kinds too. The directory's
// ValidatingAdmissionPolicy (safe upgrades between channels) is not installed: it guards
// later CRD upgrades, and no member here upgrades them.
import { existsSync } from 'node:fs';
import { FedgateError } from '../errors.ts';
import { installCrds, readCrdDir } from './crds.ts';
import type { GatewayApiChannel } from './gateway-schema.ts';
import type { KubeRest } from './kube-rest.ts';
import { ENSURE_KUBE_TOOLS } from './kube-tools.ts';

export async function installGatewayApiCrds(
  api: KubeRest,
  dir: string,
  member: string,
  channel: GatewayApiChannel = 'standard',
): Promise<void> {
  // A tools cache copied before the experimental set was (FEDGATE_KUBE_TOOLS names it).
  if (!existsSync(dir))
    throw new FedgateError(
      'KUBE_TOOLS_MISSING',
      `the Gateway API ${channel}-channel CRDs are not in ${dir}: run ${ENSURE_KUBE_TOOLS} on that cache`,
    );
  const crds = await readCrdDir(dir);
  if (crds.length === 0) throw new Error(`${dir} holds no CustomResourceDefinition`);
  await installCrds(api, crds, member, `the Gateway API ${channel}-channel CRDs`);
}
