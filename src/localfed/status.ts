// Kubernetes `Status` objects, shaped exactly as kube-apiserver shapes them, so that
// clients (client-node, kubectl) decode our errors the way they decode real ones.

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: { continue?: string; resourceVersion?: string };
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  details?: StatusDetails;
  code: number;
}

/** An error that the API server answers with a `Status` body and the given HTTP code. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;
  readonly continueToken: string | undefined;

  constructor(
    code: number,
    reason: string,
    message: string,
    details?: StatusDetails,
    continueToken?: string,
  ) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
    this.continueToken = continueToken;
  }

  toStatus(): KubeStatus {
    const status: KubeStatus = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: this.continueToken ? { continue: this.continueToken } : {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) status.details = this.details;
    return status;
  }
}

/** `group` is '' for the core group; `plural` is the resource name ("services"). */
export interface ResourceRef {
  group: string;
  plural: string;
}

function qualified(ref: ResourceRef): string {
  return ref.group ? `${ref.plural}.${ref.group}` : ref.plural;
}

function details(ref: ResourceRef, name: string): StatusDetails {
  const d: StatusDetails = { name, kind: ref.plural };
  if (ref.group) d.group = ref.group;
  return d;
}

export const errors = {
  unauthorized: () => new ApiError(401, 'Unauthorized', 'Unauthorized'),
  notFound: (ref: ResourceRef, name: string) =>
    new ApiError(404, 'NotFound', `${qualified(ref)} "${name}" not found`, details(ref, name)),
  alreadyExists: (ref: ResourceRef, name: string) =>
    new ApiError(
      409,
      'AlreadyExists',
      `${qualified(ref)} "${name}" already exists`,
      details(ref, name),
    ),
  conflict: (ref: ResourceRef, name: string, why?: string) =>
    new ApiError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualified(ref)} "${name}": ${
        why ??
        'the object has been modified; please apply your changes to the latest version and try again'
      }`,
      details(ref, name),
    ),
  invalid: (kind: string, group: string, name: string, causes: StatusCause[]) => {
    const list = causes
      .map((c) => (c.field ? `${c.field}: ${c.message ?? ''}` : (c.message ?? '')))
      .join(', ');
    const d: StatusDetails = { name, kind, causes };
    if (group) d.group = group;
    return new ApiError(
      422,
      'Invalid',
      `${kind}${group ? `.${group}` : ''} "${name}" is invalid: ${causes.length > 1 ? `[${list}]` : list}`,
      d,
    );
  },
  /** A path under a served API group that names nothing kube-apiserver serves. */
  resourceNotFound: () =>
    new ApiError(404, 'NotFound', 'the server could not find the requested resource', {}),
  /** A delete precondition that does not hold: kube-apiserver names the kind here, not the resource. */
  preconditionFailed: (kind: string, name: string, why: string) =>
    new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${kind} "${name}": ${why}`, {
      name,
      kind,
    }),
  badRequest: (message: string) => new ApiError(400, 'BadRequest', message),
  /** A ListOptions parameter kube-apiserver's validation refuses (422, group meta.k8s.io). */
  invalidListOptions: (field: string, reason: string, message: string) =>
    new ApiError(422, 'Invalid', `ListOptions.meta.k8s.io "" is invalid: ${field}: ${message}`, {
      group: 'meta.k8s.io',
      kind: 'ListOptions',
      causes: [{ reason, message, field }],
    }),
  methodNotAllowed: () =>
    new ApiError(
      405,
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
      {},
    ),
  unsupportedMediaType: (supported: string[]) =>
    new ApiError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${supported.join(', ')}`,
    ),
  expired: (message: string, continueToken?: string) =>
    new ApiError(410, 'Expired', message, undefined, continueToken),
  tooLargeResourceVersion: (requested: number, current: number) =>
    new ApiError(
      504,
      'Timeout',
      `Timeout: Too large resource version: ${requested}, current: ${current}`,
      {
        causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
        retryAfterSeconds: 1,
      },
    ),
  internal: (message: string) =>
    new ApiError(500, 'InternalError', `Internal error occurred: ${message}`),
};
