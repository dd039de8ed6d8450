// The field validation kube-apiserver applies that the simulator reproduces: object
// names, immutable fields, required values and metav1.Conditions, each answered as a
// StatusCause with kube-apiserver's reason, message and field path.
import { isRecord } from './objects.ts';
import type { StatusCause } from './status.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1123_SUBDOMAIN =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export type NameRule = 'label' | 'subdomain' | 'dns1035';

export function nameCauses(name: string, rule: NameRule): StatusCause[] {
  if (!name) {
    return [
      {
        reason: 'FieldValueRequired',
        message: 'Required value: name or generateName is required',
        field: 'metadata.name',
      },
    ];
  }
  const ok =
    rule === 'label'
      ? DNS1123_LABEL.test(name) && name.length <= 63
      : rule === 'dns1035'
        ? DNS1035_LABEL.test(name) && name.length <= 63
        : DNS1123_SUBDOMAIN.test(name) && name.length <= 253;
  if (ok) return [];
  const what =
    rule === 'label'
      ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
      : rule === 'dns1035'
        ? "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"
        : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  return [
    {
      reason: 'FieldValueInvalid',
      message: `Invalid value: "${name}": ${what}`,
      field: 'metadata.name',
    },
  ];
}

export function immutable(field: string, now: unknown, before: unknown): StatusCause[] {
  if (JSON.stringify(now) === JSON.stringify(before)) return [];
  return [
    {
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${JSON.stringify(now)}: field is immutable`,
      field,
    },
  ];
}

/** kube-apiserver checks the primary address through clusterIPs[0], whichever field changed. */
export function clusterIPChange(
  now: Record<string, unknown>,
  before: Record<string, unknown>,
): StatusCause[] {
  const ips = Array.isArray(now.clusterIPs) ? now.clusterIPs : [now.clusterIP];
  if (now.clusterIP === before.clusterIP && ips[0] === (before.clusterIPs as unknown[])?.[0])
    return [];
  return [
    {
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${JSON.stringify(ips)}: may not change once set`,
      field: 'spec.clusterIPs[0]',
    },
  ];
}

export function required(field: string, message = 'Required value'): StatusCause {
  return { reason: 'FieldValueRequired', message, field };
}

export function invalid(field: string, value: unknown, why: string): StatusCause {
  return {
    reason: 'FieldValueInvalid',
    message: `Invalid value: ${JSON.stringify(value)}: ${why}`,
    field,
  };
}

// The CRD's schema makes each status condition a metav1.Condition, all of whose fields
// are required: kube-apiserver 1.37 refuses one without them ("status.conditions[0].reason:
// Required value", seen writing a ServiceExport's status).
const CONDITION_FIELDS = ['lastTransitionTime', 'message', 'reason', 'status', 'type'];

export function conditionCauses(status: unknown): StatusCause[] {
  if (!isRecord(status) || !Array.isArray(status.conditions)) return [];
  return status.conditions.flatMap((c: unknown, i) =>
    CONDITION_FIELDS.filter((f) => !isRecord(c) || c[f] === undefined).map((f) =>
      required(`status.conditions[${i}].${f}`),
    ),
  );
}
