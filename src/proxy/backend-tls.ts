// What the proxy and the active checks need to dial a service's endpoints over TLS:
// the node:tls options of its backend TLS profile (CA certificates to trust, the
// name used for SNI and verification, the subjectAltNames accepted, the client
// certificate for mutual TLS), shaped after Gateway API's BackendTLSPolicy. The
// profiles come from the configuration (routing.backendTLS), chosen per service by
// routing.services["ns/name"].tls, else by the fedgate.io/backend-tls annotation.
import type { ConnectionOptions } from 'node:tls';
import type { FederatedService } from '../catalog/model.ts';

/** One service's TLS settings toward its endpoints. */
export interface BackendTlsContext {
  /**
   * The profile's name and its files' content hash: upstream connections made under
   * another key (before a reload or a certificate rotation) are not reused.
   */
  readonly key: string;
  /** ca, cert, key, servername, checkServerIdentity (hostname and subjectAltNames). */
  readonly options: ConnectionOptions;
}

/** Where the proxy and the checks read a service's backend TLS from; a reload swaps it. */
export interface BackendTlsSource {
  /** The service's profile, or undefined: it names none (or one that does not exist, logged once). */
  forService(svc: FederatedService): BackendTlsContext | undefined;
}
