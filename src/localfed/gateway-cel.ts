// The CEL rules (x-kubernetes-validations) of the Gateway API CRDs that users hit, ported
// rule for rule: each names the schema place it sits on and the message the CRD gives, and
// its check reads like the CEL it ports. kube-apiserver runs them only on an object the
// schema accepts, and words a failure `<field>: Invalid value: <message>`; a rule that
// reads a missing field fails with `Invalid value: "object": no such key: <f> evaluating
// rule: <message>`. The rules are in gateway-route-rules.ts and gateway-listener-rules.ts;
// README.md lists what is ported.
import { isRecord } from './objects.ts';
import type { StatusCause } from './status.ts';

export type Obj = Record<string, unknown>;
/** true: holds; false: fails with the message; a string: a runtime error (the missing key). */
type Check = (self: Obj | unknown[], old: unknown) => boolean | string;

export interface CelRule {
  /** Where the rule sits: `spec.rules[].matches[].path` (`[]`: every item). */
  at: string;
  message: string;
  check: Check;
  /** A transition rule (oldSelf): checked on updates only. */
  transition?: true;
}

export const has = (o: unknown, k: string): boolean => isRecord(o) && o[k] !== undefined;
export const get = (o: unknown, k: string): unknown => (isRecord(o) ? o[k] : undefined);
export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const size = (v: unknown): number =>
  Array.isArray(v)
    ? v.length
    : typeof v === 'string'
      ? v.length
      : isRecord(v)
        ? Object.keys(v).length
        : 0;

export function rule(at: string, message: string, check: (self: Obj) => boolean | string): CelRule {
  return { at, message, check: (s) => check(s as Obj) };
}
export function listRule(
  at: string,
  message: string,
  check: (self: unknown[]) => boolean,
): CelRule {
  return { at, message, check: (s) => check(list(s)) };
}

function visit(
  obj: unknown,
  old: unknown,
  at: string,
): { self: unknown; old: unknown; field: string }[] {
  let here = [{ self: obj, old, field: '' }];
  for (const seg of at.split('.')) {
    const items = seg.endsWith('[]');
    const key = items ? seg.slice(0, -2) : seg;
    const next: typeof here = [];
    for (const h of here) {
      if (!has(h.self, key)) continue;
      const v = get(h.self, key);
      const field = h.field ? `${h.field}.${key}` : key;
      if (!items) next.push({ self: v, old: get(h.old, key), field });
      else
        list(v).forEach((item, i) => {
          next.push({ self: item, old: undefined, field: `${field}[${i}]` });
        });
    }
    here = next;
  }
  return here;
}

/** The causes of the rules that fail on `obj` (updates: `old` is the stored object). */
export function celCauses(rules: readonly CelRule[], obj: unknown, old: unknown): StatusCause[] {
  const out: StatusCause[] = [];
  for (const r of rules) {
    for (const v of visit(obj, old, r.at)) {
      if (r.transition && v.old === undefined) continue;
      const ok = r.check(v.self as Obj, v.old);
      if (ok === true) continue;
      // kube-apiserver shows the value a rule failed on when it is a scalar.
      const shown = isRecord(v.self) || Array.isArray(v.self) ? '' : `${JSON.stringify(v.self)}: `;
      const message =
        ok === false
          ? `Invalid value: ${shown}${r.message}`
          : `Invalid value: "object": no such key: ${ok} evaluating rule: ${r.message}`;
      out.push({ reason: 'FieldValueInvalid', message, field: v.field });
    }
  }
  return out;
}
