// The real control plane's binaries (kube-apiserver, etcd, kubectl, built from tools/kube
// by scripts/ensure-kube-tools.sh): taken from FEDGATE_KUBE_TOOLS when set, else built or
// reused through the script. localfed only spawns them; Go stays under tools/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FedgateError } from '../errors.ts';
import { runEnsureScript } from './ensure-script.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
export const ENSURE_KUBE_TOOLS = join(ROOT, 'scripts/ensure-kube-tools.sh');
// A cold build of kube-apiserver on two cores takes about 6 minutes (tools/kube/README.md).
export const BUILD_TIMEOUT_MS = 40 * 60_000;

export interface KubeTools {
  dir: string;
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
  /** The MCS API's ServiceExport CRD manifest, from sigs.k8s.io/mcs-api. */
  serviceExportCrd: string;
  /** The Gateway API's standard-channel CRD manifests (a directory), from sigs.k8s.io/gateway-api. */
  gatewayApiCrds: string;
  /**
   * Its experimental-channel CRD manifests (a directory). Not required: a cache copied
   * before they were may lack them, and only a member asked for that channel needs them.
   */
  gatewayApiExperimentalCrds: string;
  /** Its ServiceImport CRD, which fedgate's write-back fills. */
  serviceImportCrd: string;
}

export function kubeToolsIn(dir: string): KubeTools {
  return {
    dir,
    kubeApiserver: join(dir, 'kube-apiserver'),
    etcd: join(dir, 'etcd'),
    kubectl: join(dir, 'kubectl'),
    serviceExportCrd: join(dir, 'crds/multicluster.x-k8s.io_serviceexports.yaml'),
    gatewayApiCrds: join(dir, 'crds/gateway-api'),
    gatewayApiExperimentalCrds: join(dir, 'crds/gateway-api-experimental'),
    serviceImportCrd: join(dir, 'crds/multicluster.x-k8s.io_serviceimports.yaml'),
  };
}

/**
 * The directory holding the binaries, building them first when the cache lacks them
 * (synchronously: a cold build takes minutes, and callers want it before anything starts).
 * Throws KUBE_TOOLS_MISSING saying what is missing.
 */
export function requireKubeTools(env: NodeJS.ProcessEnv = process.env): KubeTools {
  const given = env.FEDGATE_KUBE_TOOLS;
  const tools = given ? kubeToolsIn(given) : kubeToolsIn(ensureBuilt(env));
  const absent = [
    tools.kubeApiserver,
    tools.etcd,
    tools.kubectl,
    tools.serviceExportCrd,
    tools.gatewayApiCrds,
    tools.serviceImportCrd,
  ].filter((f) => !existsSync(f));
  if (absent.length > 0) {
    const from = given ? 'FEDGATE_KUBE_TOOLS' : ENSURE_KUBE_TOOLS;
    throw new FedgateError(
      'KUBE_TOOLS_MISSING',
      `${from} names ${tools.dir}, which lacks ${absent.join(', ')}`,
    );
  }
  return tools;
}

function ensureBuilt(env: NodeJS.ProcessEnv): string {
  try {
    return runEnsureScript(ENSURE_KUBE_TOOLS, BUILD_TIMEOUT_MS, false, env);
  } catch (e) {
    throw new FedgateError(
      'KUBE_TOOLS_MISSING',
      `the real kube-apiserver, etcd and kubectl are not built and ${ENSURE_KUBE_TOOLS} could not build them (it needs Go; see tools/kube/README.md): ${(e as Error).message}`,
    );
  }
}
