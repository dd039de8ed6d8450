// Label and field selectors with kube-apiserver's grammar and error messages.
import type { KubeObject } from './objects.ts';
import { errors } from './status.ts';

type Op = '=' | '!=' | 'in' | 'notin' | 'exists' | '!';

export interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

export type Labels = Readonly<Record<string, string>> | undefined;

const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function fail(selector: string, why: string): never {
  throw errors.badRequest(`unable to parse requirement: ${why} (in selector "${selector}")`);
}

/** Splits on commas that are not inside a parenthesised value set. */
function splitTop(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function checkKey(selector: string, key: string): string {
  if (!KEY.test(key) || key.length > 316) fail(selector, `invalid label key "${key}"`);
  return key;
}

function checkValue(selector: string, value: string): string {
  if (value.length > 63 || !VALUE.test(value)) fail(selector, `invalid label value: "${value}"`);
  return value;
}

export function parseLabelSelector(selector: string | null | undefined): Requirement[] {
  if (!selector) return [];
  const out: Requirement[] = [];
  for (const part of splitTop(selector)) {
    const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
    if (set) {
      const values = set[3]!
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      // As apimachinery's NewRequirement: both set operators need at least one value.
      if (values.length === 0)
        fail(selector, "for 'in', 'notin' operators, values set can't be empty");
      out.push({
        key: checkKey(selector, set[1]!),
        op: set[2] as 'in' | 'notin',
        values: values.map((v) => checkValue(selector, v)),
      });
      continue;
    }
    const cmp = /^([^=!\s]+)\s*(==|!=|=)\s*(\S*)$/.exec(part);
    if (cmp) {
      out.push({
        key: checkKey(selector, cmp[1]!),
        op: cmp[2] === '!=' ? '!=' : '=',
        values: [checkValue(selector, cmp[3]!)],
      });
      continue;
    }
    const not = /^!\s*(\S+)$/.exec(part);
    if (not) {
      out.push({ key: checkKey(selector, not[1]!), op: '!', values: [] });
      continue;
    }
    if (/^\S+$/.test(part)) {
      out.push({ key: checkKey(selector, part), op: 'exists', values: [] });
      continue;
    }
    fail(selector, `found '${part}', expected: key, '!', or key followed by an operator`);
  }
  return out;
}

export function matchesLabels(reqs: readonly Requirement[], labels: Labels): boolean {
  for (const r of reqs) {
    const has = labels !== undefined && Object.hasOwn(labels, r.key);
    const v = has ? labels![r.key] : undefined;
    switch (r.op) {
      case '=':
        if (v !== r.values[0]) return false;
        break;
      case '!=':
        if (has && v === r.values[0]) return false;
        break;
      case 'in':
        if (!has || !r.values.includes(v!)) return false;
        break;
      case 'notin':
        if (has && r.values.includes(v!)) return false;
        break;
      case 'exists':
        if (!has) return false;
        break;
      case '!':
        if (has) return false;
        break;
    }
  }
  return true;
}

export interface FieldRequirement {
  field: string;
  equal: boolean;
  value: string;
}

/** What a type lets a field selector read, beside metadata.name and metadata.namespace. */
export interface FieldLabels {
  fieldLabels?: Record<string, (obj: KubeObject) => string> | undefined;
  /** How kube-apiserver words an unsupported field for this type. */
  unknownFieldSelector?: ((field: string) => string) | undefined;
}

/** Parses a field selector; `fields` says which fields the type supports (default: metadata only). */
export function parseFieldSelector(
  selector: string | null | undefined,
  fields: FieldLabels = {},
): FieldRequirement[] {
  if (!selector) return [];
  const out: FieldRequirement[] = [];
  for (const part of splitTop(selector)) {
    const m = /^([^=!\s]+)\s*(==|!=|=)\s*(\S*)$/.exec(part);
    if (!m?.[1])
      throw errors.badRequest(`invalid selector: '${selector}'; can't understand '${part}'`);
    const field = m[1];
    const known =
      field === 'metadata.name' ||
      field === 'metadata.namespace' ||
      (fields.fieldLabels !== undefined && Object.hasOwn(fields.fieldLabels, field));
    if (!known) {
      throw errors.badRequest(
        fields.unknownFieldSelector?.(field) ?? `field label not supported: ${field}`,
      );
    }
    out.push({ field, equal: m[2] !== '!=', value: m[3] ?? '' });
  }
  return out;
}

export function matchesFields(
  reqs: readonly FieldRequirement[],
  obj: KubeObject,
  fields: FieldLabels = {},
): boolean {
  for (const r of reqs) {
    const actual =
      r.field === 'metadata.name'
        ? obj.metadata.name
        : r.field === 'metadata.namespace'
          ? (obj.metadata.namespace ?? '')
          : (fields.fieldLabels?.[r.field]?.(obj) ?? '');
    if ((actual === r.value) !== r.equal) return false;
  }
  return true;
}
