// What route compilation reads besides the Gateway API objects: which federated
// services exist (and their ports), how Gateway listener ports map onto fedgate's
// own listeners, and the addresses fedgate is reached at. Plain shapes, so
// gateway/ knows the catalog and the configuration by nothing more than these.
import type { GatewayObjects } from '../watch/gateway-records.ts';

/** A federated service as backendRefs see it. */
export interface FederatedServicePorts {
  readonly ports: readonly { readonly name?: string; readonly port: number }[];
}

/** The federated service `namespace/name`, or undefined when the federation has none. */
export type FederatedServiceLookup = (
  namespace: string,
  name: string,
) => FederatedServicePorts | undefined;

/**
 * One Gateway listener port mapped onto a fedgate listener (`gatewayAPI.listeners`):
 * a Gateway listener on `port` with `protocol` is served by the fedgate listener at
 * `address` (as written in http.listen or http.tls.listen).
 */
export interface GatewayListenerMapping {
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly address: string;
}

/** An address fedgate is reached at, as a Gateway's status.addresses lists it. */
export interface GatewayAddress {
  readonly type: 'IPAddress' | 'Hostname';
  readonly value: string;
}

export interface CompileInput {
  readonly objects: GatewayObjects;
  readonly services: FederatedServiceLookup;
  readonly listeners: readonly GatewayListenerMapping[];
  readonly addresses: readonly GatewayAddress[];
}
