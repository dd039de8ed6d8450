// The Gateway API kinds the simulator serves as CRDs (sigs.k8s.io/gateway-api,
// GATEWAY_API_MODULE): GatewayClass, Gateway, HTTPRoute and GRPCRoute at v1,
// ReferenceGrant at v1beta1. Each is defaulted from its CRD's schema (the channel the
// member serves: standard or experimental), validated by the schema, its list types and
// the CEL rules users hit, and printed with the CRD's additionalPrinterColumns.
import { ageColumn, nameColumn, type TableColumn } from './columns.ts';
import { type CelRule, celCauses } from './gateway-cel.ts';
import { GATEWAY_CLASS_RULES, GATEWAY_RULES } from './gateway-listener-rules.ts';
import { schemaCauses } from './gateway-openapi.ts';
import { GRPC_ROUTE_RULES, HTTP_ROUTE_RULES } from './gateway-route-rules.ts';
import { applyDefaults, listCauses, schemaOf } from './gateway-schema.ts';
import { isRecord, type KubeObject } from './objects.ts';
import type { ResourceType } from './resource-type.ts';
import type { StatusCause } from './status.ts';
import { nameCauses } from './validation.ts';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

// kube-apiserver adds this when the schema refused something in a way that stops its CEL
// rules (apiextensions' hasBlockingErr: a wrong type, a value not in an enum, a required
// field missing, too long, too many) and the kind has rules (every kind here but
// ReferenceGrant); a value merely out of range or off its pattern lets them run.
const BLOCKING = new Set([
  'FieldValueTypeInvalid',
  'FieldValueNotSupported',
  'FieldValueRequired',
  'FieldValueTooLong',
  'FieldValueTooMany',
]);
const RULES_SKIPPED: StatusCause = {
  reason: 'FieldValueInvalid',
  message:
    'Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
  field: '<nil>',
};

// A custom resource's name is a DNS subdomain, worded as apimachinery's NameIsDNSSubdomain.
const NAME_EXAMPLE =
  " (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

function crNameCauses(name: string): StatusCause[] {
  return nameCauses(name, 'subdomain').map((c) =>
    c.reason === 'FieldValueInvalid' ? { ...c, message: `${c.message}${NAME_EXAMPLE}` } : c,
  );
}

function validator(kind: string, rules: readonly CelRule[]): ResourceType['validate'] {
  return (obj, old, ctx) => {
    const causes = crNameCauses(obj.metadata.name);
    const schema = schemaCauses(kind, obj);
    if (schema.some((c) => BLOCKING.has(c.reason ?? '')))
      return [...causes, ...schema, ...(rules.length > 0 ? [RULES_SKIPPED] : [])];
    causes.push(...schema);
    const node = schemaOf(kind, ctx?.gatewayApiChannel);
    if (node) causes.push(...listCauses(node, obj));
    return [...causes, ...celCauses(rules, obj, old)];
  };
}

function defaulter(kind: string): ResourceType['defaults'] {
  return (obj, ctx) => {
    const node = schemaOf(kind, ctx.gatewayApiChannel);
    if (node) applyDefaults(node, obj);
  };
}

/** A column as a CRD's additionalPrinterColumns gives it: a missing value is a null cell. */
function crdColumn(name: string, read: (o: KubeObject) => unknown, priority = 0): TableColumn {
  return {
    name,
    type: 'string',
    format: '',
    description: '',
    priority,
    // An array or object prints as JSON, as kube-apiserver's JSONPath printer does.
    cell: (o) => {
      const v = read(o);
      if (v === undefined || v === null) return null;
      return typeof v === 'string' ? v : JSON.stringify(v);
    },
  };
}

const field = (o: unknown, ...keys: string[]): unknown => {
  let v = o;
  for (const k of keys) v = isRecord(v) ? v[k] : undefined;
  return v;
};
/** `.status.conditions[?(@.type=="X")].status` */
const conditionStatus = (o: KubeObject, type: string) => {
  const conds = field(o, 'status', 'conditions');
  return Array.isArray(conds) ? conds.find((c) => field(c, 'type') === type)?.status : undefined;
};
const crdAge: TableColumn = { ...ageColumn, type: 'date' };

/** A kind at each version its CRD serves (`versions`, the storage version first), all with one schema. */
function gatewayType(
  kind: string,
  plural: string,
  rest: Pick<ResourceType, 'namespaced' | 'shortNames' | 'statusSubresource' | 'columns'> & {
    versions: [string, ...string[]];
    rules: readonly CelRule[];
  },
): ResourceType[] {
  const validate = validator(kind, rest.rules);
  const defaults = defaulter(kind);
  return rest.versions.map((version) => ({
    group: GATEWAY_GROUP,
    version,
    storageVersion: rest.versions[0],
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced: rest.namespaced,
    shortNames: rest.shortNames,
    categories: ['gateway-api'],
    statusSubresource: rest.statusSubresource,
    custom: true,
    deleteAnswersStatus: true,
    generation: true,
    validate,
    defaults,
    columns: rest.columns,
  }));
}

const hostnames = crdColumn('Hostnames', (o) => field(o, 'spec', 'hostnames'));

// The versions each CRD serves, its storage version first (v1.6.3: ReferenceGrant is
// stored at v1beta1; GRPCRoute is served at v1 only).
export const GATEWAY_TYPES: readonly ResourceType[] = [
  ...gatewayType('GatewayClass', 'gatewayclasses', {
    versions: ['v1', 'v1beta1'],
    namespaced: false,
    shortNames: ['gc'],
    statusSubresource: true,
    rules: GATEWAY_CLASS_RULES,
    columns: [
      nameColumn,
      crdColumn('Controller', (o) => field(o, 'spec', 'controllerName')),
      crdColumn('Accepted', (o) => conditionStatus(o, 'Accepted')),
      crdAge,
      crdColumn('Description', (o) => field(o, 'spec', 'description'), 1),
    ],
  }),
  ...gatewayType('Gateway', 'gateways', {
    versions: ['v1', 'v1beta1'],
    namespaced: true,
    shortNames: ['gtw'],
    statusSubresource: true,
    rules: GATEWAY_RULES,
    columns: [
      nameColumn,
      crdColumn('Class', (o) => field(o, 'spec', 'gatewayClassName')),
      // `.status.addresses[*].value`: kube-apiserver prints the first result only.
      crdColumn('Address', (o) => {
        const a = field(o, 'status', 'addresses');
        return Array.isArray(a) ? field(a[0], 'value') : undefined;
      }),
      crdColumn('Programmed', (o) => conditionStatus(o, 'Programmed')),
      crdAge,
    ],
  }),
  ...gatewayType('HTTPRoute', 'httproutes', {
    versions: ['v1', 'v1beta1'],
    namespaced: true,
    shortNames: [],
    statusSubresource: true,
    rules: HTTP_ROUTE_RULES,
    columns: [nameColumn, hostnames, crdAge],
  }),
  ...gatewayType('GRPCRoute', 'grpcroutes', {
    versions: ['v1'],
    namespaced: true,
    shortNames: [],
    statusSubresource: true,
    rules: GRPC_ROUTE_RULES,
    columns: [nameColumn, hostnames, crdAge],
  }),
  // The CRD declares no status subresource for ReferenceGrant.
  ...gatewayType('ReferenceGrant', 'referencegrants', {
    versions: ['v1beta1', 'v1'],
    namespaced: true,
    shortNames: ['refgrant'],
    statusSubresource: false,
    rules: [],
    columns: [nameColumn, crdAge],
  }),
];
