// A service's picker and affinity key: from config (routing.services), else the
// Service annotation fedgate.io/lb-policy, else routing.picker and routing.hashOn.
import { type HashOn, parseHashOn } from './affinity.ts';
import { PICKER_KINDS, type PickerKind } from './pickers.ts';

export interface LbPolicy {
  readonly picker: PickerKind;
  readonly hashOn?: HashOn | undefined;
}

/**
 * Parses the annotation's value: `p2c`, `round-robin`, `random`, `maglev`, or
 * `maglev:header:NAME` / `maglev:cookie:NAME` / `maglev:client-address`.
 * Throws with a sentence saying what is wrong.
 */
export function parseLbPolicy(text: string): LbPolicy {
  const value = text.trim();
  const colon = value.indexOf(':');
  const kind = (colon < 0 ? value : value.slice(0, colon)).toLowerCase();
  if (!PICKER_KINDS.includes(kind as PickerKind)) {
    throw new Error(`unknown picker "${kind}" (expected one of ${PICKER_KINDS.join(', ')})`);
  }
  if (colon < 0) return { picker: kind as PickerKind };
  if (kind !== 'maglev') throw new Error(`only maglev takes a key, not ${kind}`);
  return { picker: 'maglev', hashOn: parseHashOn(value.slice(colon + 1)) };
}
