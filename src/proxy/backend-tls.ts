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
  /**
   * secureContext (the CA certificates to trust and the client certificate),
   * servername, checkServerIdentity (hostname or subjectAltNames).
   */
  readonly options: ConnectionOptions;
  /**
   * Set when the service names a profile that does not exist: nothing may be dialled
   * (fail closed; the proxy answers 502 UPSTREAM_TLS with this sentence). The
   * options then trust no CA, so a dial that happened anyway would fail too.
   */
  readonly problem?: string | undefined;
}

/** Where the proxy and the checks read a service's backend TLS from; a reload swaps it. */
export interface BackendTlsSource {
  /**
   * The service's profile, or undefined: it names none. One it names that does not
   * exist gives a context with `problem` set (logged once).
   */
  forService(svc: FederatedService): BackendTlsContext | undefined;
}
