// A member cluster's API as localfed drives it, whichever server answers: the simulator
// (`sim`, in this process) or a real kube-apiserver and etcd (`real`, child processes).
// localfed's controllers, `localfed ctl` and the tests speak only this interface, so the
// same scenario, faults and suites run on both.
import type { KubeObject } from './objects.ts';

/** Which API server a member cluster runs. `sim` needs only Node; `real` needs the Go-built binaries. */
export type ApiKind = 'sim' | 'real';

export const API_KINDS: readonly ApiKind[] = ['sim', 'real'];

/**
 * refuse: nothing listens, open connections are cut.
 * hang: connections are accepted, requests never answered, open watches go silent.
 * drop: every open watch is cut, and every new one as it starts; lists and gets work.
 * up: serves again; what `hang` held is cut so clients reconnect.
 */
export type FaultMode = 'up' | 'refuse' | 'hang' | 'drop';

export interface MemberCluster {
  readonly name: string;
  readonly api: ApiKind;
  /** What kubeconfigs point at: `https://<loopback address>:<port>`. */
  readonly url: string;
  /** The admin's bearer token (allowed everything). */
  readonly token: string;
  /** PEM of the CA that signed the API server's certificate. */
  readonly caCert: string;
  /** The fault currently applied (`up` when none). */
  readonly fault: FaultMode;

  start(): Promise<void>;
  stop(): Promise<void>;

  /** The object, or undefined when it does not exist. */
  get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<KubeObject | undefined>;
  /** Every object of a kind (in one namespace, or all). */
  list(apiVersion: string, kind: string, namespace?: string): Promise<KubeObject[]>;
  /**
   * Create or update, unconditionally (no resourceVersion precondition), with `.status`
   * written through the status subresource where the type has one. An update that
   * changes nothing writes nothing.
   */
  apply(obj: KubeObject): Promise<KubeObject>;
  /** Deletes; false when it did not exist. */
  remove(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<boolean>;

  /** The store's current revision (what a list's resourceVersion would say now). */
  revision(): Promise<string>;
  setFault(mode: FaultMode): Promise<void>;
  /**
   * Drops the watch history, so a watch from a resourceVersion seen before gets 410
   * Expired. Returns one line saying what was done (and, on a real server, how close
   * it gets to that).
   */
  compact(): Promise<string>;

  /** A kubeconfig (one cluster, one user with the bearer token, one context). */
  kubeconfig(): string;
  /** Writes `<dir>/<name>.kubeconfig` (mode 0600) and returns its path. */
  writeKubeconfig(dir: string): Promise<string>;
}
