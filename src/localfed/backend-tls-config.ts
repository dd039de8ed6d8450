// The backend TLS profiles fedgate needs for the scenario's TLS services, in its
// configuration's shape (routing.backendTLS, after Gateway API's BackendTLSPolicy
// validation): the CAs of the clusters the service runs in, the name its pods'
// certificates carry, and fedgate's client certificate where the pods require one.
import { stringify } from 'yaml';
import { type PkiFiles, serviceNames } from './backend-pki.ts';
import { portServing, type Scenario, type ScenarioService } from './scenario.ts';

/** The annotation naming a service's backend TLS profile (catalog's backendTls). */
const BACKEND_TLS_ANNOTATION = 'fedgate.io/backend-tls';

export interface BackendTlsProfile {
  caFiles: string[];
  hostname: string;
  clientCertificate?: { certFile: string; keyFile: string };
}

export interface BackendTlsConfig {
  backendTLS: Record<string, BackendTlsProfile>;
  /** namespace/name → the profile it uses. */
  services: Record<string, { tls: string }>;
}

/** The profile name a TLS service uses: its annotation's, else namespace-name. */
export function profileName(svc: ScenarioService): string {
  return svc.annotations[BACKEND_TLS_ANNOTATION] ?? `${svc.namespace}-${svc.name}`;
}

/** Profiles for every service with a TLS port; `files` as written (paths as the config should name them). */
export function backendTlsConfig(scenario: Scenario, files: PkiFiles): BackendTlsConfig {
  const out: BackendTlsConfig = { backendTLS: {}, services: {} };
  for (const svc of scenario.services) {
    const tls = svc.ports.map((p) => portServing(p).tls);
    if (tls.every((t) => t === 'none')) continue;
    const name = profileName(svc);
    const caFiles = svc.clusters.flatMap((c) => files.clusterCas[c] ?? []);
    // The first of the pods' names: the one fedgate dials without a profile too.
    const hostname = serviceNames(svc.name, svc.namespace)[1] ?? svc.name;
    out.backendTLS[name] = tls.includes('mutual')
      ? {
          caFiles,
          hostname,
          clientCertificate: { certFile: files.clientCert, keyFile: files.clientKey },
        }
      : { caFiles, hostname };
    out.services[`${svc.namespace}/${svc.name}`] = { tls: name };
  }
  return out;
}

/**
 * The profiles as YAML comments for fedgate.yaml: fedgate's configuration schema does
 * not take routing.backendTLS yet, and an unknown key would stop it loading. The
 * Services already name their profile (fedgate.io/backend-tls in the scenario).
 */
export function backendTlsComment(tls: BackendTlsConfig): string {
  if (Object.keys(tls.backendTLS).length === 0) return '';
  const yaml = stringify({ routing: tls }).trimEnd();
  const lines = yaml.split('\n').map((l) => `# ${l}`);
  return `# The backend TLS profiles of the local federation's TLS services, for fedgate\n# with routing.backendTLS (uncomment, merged with any routing: above):\n${lines.join('\n')}\n`;
}
