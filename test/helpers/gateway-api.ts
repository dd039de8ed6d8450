// The Gateway API's own files for tests: the CRDs of either channel (Go module
// sigs.k8s.io/gateway-api) and the conformance manifests (its conformance module), at the
// version the simulator's schemas were taken from, found with `go mod download -json`
// (the module cache, else the Go proxy), and the CRDs installed on a real control plane.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { GATEWAY_API_MODULE, type GatewayApiChannel } from '../../src/localfed/gateway-schema.ts';
import type { KubeObject } from '../../src/localfed/objects.ts';
import type { ControlPlane } from './kube-control-plane.ts';
import { rawCall } from './raw-api.ts';
import { waitFor } from './wait.ts';

const VERSION = GATEWAY_API_MODULE.split('@')[1] ?? '';

function moduleDir(path: string): string {
  const out = execFileSync('go', ['mod', 'download', '-json', `${path}@${VERSION}`], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  return (JSON.parse(out) as { Dir: string }).Dir;
}

/** The CRDs the simulator serves, as manifest paths, of the channel asked for. */
export function gatewayCrdFiles(channel: GatewayApiChannel = 'standard'): string[] {
  const dir = join(moduleDir('sigs.k8s.io/gateway-api'), 'config/crd', channel);
  return ['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants'].map((p) =>
    join(dir, `gateway.networking.k8s.io_${p}.yaml`),
  );
}

/** The objects of a conformance manifest (conformance/tests/<name>.yaml). */
export function conformanceObjects(name: string): KubeObject[] {
  const file = join(moduleDir('sigs.k8s.io/gateway-api/conformance'), 'tests', `${name}.yaml`);
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

/**
 * Creates the CRDs on a real control plane (create, not apply: the HTTPRoute CRD is past
 * client-side apply's 256 KiB annotation) and waits until every kind is served.
 */
export async function installGatewayCrds(
  cp: ControlPlane,
  channel: GatewayApiChannel = 'standard',
): Promise<void> {
  for (const file of gatewayCrdFiles(channel)) await cp.kubectl(['create', '-f', file]);
  await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  const target = { url: cp.url, ca: cp.ca, token: cp.token };
  for (const path of [
    '/apis/gateway.networking.k8s.io/v1/gatewayclasses',
    '/apis/gateway.networking.k8s.io/v1/gateways',
    '/apis/gateway.networking.k8s.io/v1/httproutes',
    '/apis/gateway.networking.k8s.io/v1/grpcroutes',
    '/apis/gateway.networking.k8s.io/v1beta1/referencegrants',
  ])
    await waitFor(
      async () => (await rawCall(target, { path })).status === 200,
      30_000,
      `${path} served`,
      200,
    );
}
