// The backend TLS profiles fedgate needs for the scenario's TLS services, in its
// configuration's shape (routing.backendTLS, after Gateway API's BackendTLSPolicy
// validation): the CAs of the clusters the service runs in, the name its pods'
// certificates carry, and fedgate's client certificate where the pods require one.
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

type Routing = { backendTLS?: object; services?: Record<string, object> } & Record<string, unknown>;

/**
 * `config` (fedgate.yaml's top level) with the profiles added under `routing`. What
 * `config` already says wins: a profile of the same name, a service's own keys.
 */
export function withBackendTls(
  config: Record<string, unknown>,
  tls: BackendTlsConfig,
): Record<string, unknown> {
  if (Object.keys(tls.backendTLS).length === 0) return config;
  const routing = (config.routing ?? {}) as Routing;
  const services: Record<string, object> = { ...routing.services };
  for (const [id, svc] of Object.entries(tls.services)) services[id] = { ...svc, ...services[id] };
  return {
    ...config,
    routing: { ...routing, backendTLS: { ...tls.backendTLS, ...routing.backendTLS }, services },
  };
}
