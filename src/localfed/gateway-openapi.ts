// OpenAPI schema validation of Gateway API objects, with the JSON-schema validators
// @kubernetes-models/gateway-api generates from the same Go types as the CRDs, and each
// error worded as kube-apiserver words a CRD schema error (observed on kube-apiserver
// 1.37.2 with the v1.6.3 CRDs; see the parity test).

import { isIP } from 'node:net';
import { validate as referenceGrant } from '@kubernetes-models/gateway-api/_schemas/IoK8sSigsGatewayApiApisV1beta1ReferenceGrant';
import { validate as gateway } from '@kubernetes-models/gateway-api/_schemas/IoK8sSigsGatewayApiApisV1Gateway';
import { validate as gatewayClass } from '@kubernetes-models/gateway-api/_schemas/IoK8sSigsGatewayApiApisV1GatewayClass';
import { validate as grpcRoute } from '@kubernetes-models/gateway-api/_schemas/IoK8sSigsGatewayApiApisV1GRPCRoute';
import { validate as httpRoute } from '@kubernetes-models/gateway-api/_schemas/IoK8sSigsGatewayApiApisV1HTTPRoute';
import { isRecord, type KubeObject } from './objects.ts';
import type { StatusCause } from './status.ts';

/** What the generated (ajv) validators report. */
interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
}
type Validator = ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

const VALIDATORS: Record<string, Validator> = {
  GatewayClass: gatewayClass,
  Gateway: gateway,
  HTTPRoute: httpRoute,
  GRPCRoute: grpcRoute,
  ReferenceGrant: referenceGrant,
};

/** The schema errors of `obj` (its metadata is ObjectMeta's, checked elsewhere), in kube-apiserver's words. */
export function schemaCauses(kind: string, obj: KubeObject): StatusCause[] {
  const validate = VALIDATORS[kind];
  const extra =
    kind === 'Gateway' ? addressCauses(obj) : kind === 'HTTPRoute' ? retryCauses(obj) : [];
  if (!validate || validate(obj)) return extra;
  const errors = (validate.errors ?? []).filter(
    (e) => !/^\/(metadata|apiVersion|kind)(\/|$)/.test(e.instancePath),
  );
  // A value of the wrong type is reported once, as kube-apiserver stops there.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const out: StatusCause[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'type' && [...wrongType].some((p) => within(e.instancePath, p))) continue;
    const cause = causeOf(e, obj);
    if (!cause) continue;
    const key = `${cause.field} ${cause.message}`;
    if (!seen.has(key)) out.push(cause);
    seen.add(key);
  }
  return [...out, ...extra];
}

/**
 * The CRD's oneOf on a Gateway address, which the generated validators lack: an
 * IPAddress (the default type) has an IPv4 or IPv6 value.
 */
function addressCauses(obj: KubeObject): StatusCause[] {
  const out: StatusCause[] = [];
  for (const part of ['spec', 'status']) {
    const addresses = isRecord(obj[part])
      ? (obj[part] as Record<string, unknown>).addresses
      : undefined;
    if (!Array.isArray(addresses)) continue;
    addresses.forEach((a, i) => {
      const at = `${part}.addresses[${i}]`;
      if (!isRecord(a) || (a.type ?? 'IPAddress') !== 'IPAddress' || typeof a.value !== 'string')
        return;
      if (isIP(a.value) !== 0) return;
      const unknown = (message: string) => ({
        reason: 'FieldValueInvalid',
        message,
        field: '<nil>',
      });
      out.push(
        unknown(
          `Invalid value: "": "${at}" must validate one and only one schema (oneOf). Found none valid`,
        ),
        unknown(`Invalid value: "": "${at}.value" must validate at least one schema (anyOf)`),
        {
          reason: 'FieldValueTypeInvalid',
          message: `Invalid value: ${JSON.stringify(a.value)}: ${at}.value in body must be of type ipv4: ${JSON.stringify(a.value)}`,
          field: `${at}.value`,
        },
      );
    });
  }
  return out;
}

/**
 * The experimental CRD's `minimum: 1` on a rule's retry.attempts, which the generated
 * validators lack (a standard-channel member has pruned `retry` before this runs).
 */
function retryCauses(obj: KubeObject): StatusCause[] {
  const rules = isRecord(obj.spec) ? obj.spec.rules : undefined;
  if (!Array.isArray(rules)) return [];
  const out: StatusCause[] = [];
  rules.forEach((r, i) => {
    const attempts = isRecord(r) && isRecord(r.retry) ? r.retry.attempts : undefined;
    if (typeof attempts !== 'number' || attempts >= 1) return;
    const field = `spec.rules[${i}].retry.attempts`;
    out.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${attempts}: ${field} in body should be greater than or equal to 1`,
      field,
    });
  });
  return out;
}

function within(path: string, parent: string): boolean {
  return path === parent || path.startsWith(`${parent}/`);
}

/** `/spec/rules/0/name` → `spec.rules[0].name`. */
export function fieldPath(instancePath: string): string {
  let out = '';
  for (const seg of instancePath.split('/').slice(1)) {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(s) ? `[${s}]` : out ? `.${s}` : s;
  }
  return out;
}

function valueAt(obj: unknown, instancePath: string): unknown {
  let v = obj;
  for (const seg of instancePath.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}

/** The type name kube-apiserver gives a JSON value. */
function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function causeOf(e: SchemaError, obj: KubeObject): StatusCause | undefined {
  const field = fieldPath(e.instancePath);
  const value = valueAt(obj, e.instancePath);
  const shown = JSON.stringify(value);
  const invalid = (why: string): StatusCause => ({
    reason: 'FieldValueInvalid',
    message: `Invalid value: ${shown}: ${field} in body ${why}`,
    field,
  });
  const p = e.params;
  switch (e.keyword) {
    case 'required': {
      const at = field ? `${field}.${String(p.missingProperty)}` : String(p.missingProperty);
      return { reason: 'FieldValueRequired', message: 'Required value', field: at };
    }
    case 'type': {
      const got = jsonType(value);
      return {
        reason: 'FieldValueTypeInvalid',
        message: `Invalid value: "${got}": ${field} in body must be of type ${String(p.type)}: "${got}"`,
        field,
      };
    }
    case 'enum':
      return {
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: ${shown}: supported values: ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
        field,
      };
    case 'pattern':
      return invalid(`should match '${String(p.pattern)}'`);
    case 'minimum':
      return invalid(`should be greater than or equal to ${String(p.limit)}`);
    case 'maximum':
      return invalid(`should be less than or equal to ${String(p.limit)}`);
    case 'minLength':
      return invalid(`should be at least ${String(p.limit)} chars long`);
    case 'maxLength':
      return {
        reason: 'FieldValueTooLong',
        message: `Too long: may not be more than ${String(p.limit)} bytes`,
        field,
      };
    case 'minItems':
      return {
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${Array.isArray(value) ? value.length : shown}: ${field} in body should have at least ${String(p.limit)} items`,
        field,
      };
    case 'maxItems':
    case 'maxProperties': {
      const n = Array.isArray(value) ? value.length : Object.keys(value ?? {}).length;
      return {
        reason: 'FieldValueTooMany',
        message: `Too many: ${n}: must have at most ${String(p.limit)} items`,
        field,
      };
    }
    default:
      // format (int32 only in these schemas): kube-apiserver words it otherwise; rare enough to leave.
      return undefined;
  }
}
