// What the simulator knows of each type it serves: discovery's names, the per-type
// behaviour kube-apiserver applies (defaulting, validation, generation, status
// subresource) and the Table columns. The types themselves are in resources.ts.
import type { TableColumn } from './columns.ts';
import type { GatewayApiChannel } from './gateway-schema.ts';
import type { KubeObject } from './objects.ts';
import type { StatusCause } from './status.ts';

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories?: string[];
  /** Has a /status subresource: the main resource ignores status, /status ignores the rest. */
  statusSubresource: boolean;
  /**
   * A kind served at several versions (one ResourceType each, with the same schema) is
   * stored at one, its CRD's storage version, and served at the version asked for.
   */
  storageVersion?: string;
  /** Served from a CRD on real clusters (list items keep kind and apiVersion, Table dates). */
  custom?: boolean;
  /** DELETE answers a Status naming what went, not the deleted object (Nodes, CRDs). */
  deleteAnswersStatus?: boolean;
  /** What kube-apiserver's encoding of an empty object of this kind holds beside metadata (watch bookmarks are such objects). */
  emptyFields?: Record<string, unknown>;
  /** Keeps metadata.generation (not every built-in type does: Services, Namespaces, Nodes do not). */
  generation?: boolean;
  /** Field selectors besides metadata.name and metadata.namespace, with the value each reads. */
  fieldLabels?: Record<string, (obj: KubeObject) => string>;
  /** How kube-apiserver words a field selector this type does not support (default: "field label not supported"). */
  unknownFieldSelector?: (field: string) => string;
  /** Validates a create (old undefined) or an update; returns field errors. */
  validate: (
    obj: KubeObject,
    old: KubeObject | undefined,
    ctx?: ValidationContext,
  ) => StatusCause[];
  /** Fills server-side defaults, as the API server's defaulting does. */
  defaults: (obj: KubeObject, ctx: DefaultingContext) => void;
  columns: TableColumn[];
}

export interface DefaultingContext {
  allocateClusterIP: () => string;
  /** The stored object, when defaulting an update. */
  old?: KubeObject | undefined;
  /** The Gateway API channel the member's CRDs come from (default standard). */
  gatewayApiChannel?: GatewayApiChannel | undefined;
}

export interface ValidationContext {
  /** The Gateway API channel the member's CRDs come from (default standard). */
  gatewayApiChannel?: GatewayApiChannel | undefined;
}
