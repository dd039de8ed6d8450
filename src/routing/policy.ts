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

/** The settings a policy is chosen from: routing.picker, routing.hashOn, routing.services. */
export interface PolicySettings {
  readonly picker: PickerKind;
  readonly hashOn?: string | undefined;
  readonly services: Readonly<
    Record<
      string,
      { readonly picker?: PickerKind | undefined; readonly hashOn?: string | undefined }
    >
  >;
}

export interface PolicyChoice {
  readonly policy: LbPolicy;
  /** The policy as configured or annotated, e.g. `maglev:header:x-user`. */
  readonly text: string;
  readonly source: 'config' | 'annotation' | 'default';
  /** Why the service's annotation was ignored, when it was. */
  readonly problem?: string;
}

const written = (picker: PickerKind, hashOn: string | undefined): string =>
  hashOn ? `${picker}:${hashOn}` : picker;

const parsed = (picker: PickerKind, hashOn: string | undefined): LbPolicy => ({
  picker,
  hashOn: hashOn === undefined ? undefined : parseHashOn(hashOn),
});

/**
 * A service's policy: its routing.services entry (over the defaults), else its
 * fedgate.io/lb-policy annotation, else routing.picker and routing.hashOn. An
 * annotation that does not parse is ignored, and `problem` says why.
 */
export function choosePolicy(
  svc: { readonly key: string; readonly lbPolicy?: string | undefined },
  settings: PolicySettings,
): PolicyChoice {
  const configured = settings.services[svc.key];
  if (configured?.picker !== undefined || configured?.hashOn !== undefined) {
    const picker = configured.picker ?? settings.picker;
    const hashOn = configured.hashOn ?? settings.hashOn;
    return { policy: parsed(picker, hashOn), text: written(picker, hashOn), source: 'config' };
  }
  let problem: { problem: string } | undefined;
  if (svc.lbPolicy !== undefined) {
    try {
      return {
        policy: parseLbPolicy(svc.lbPolicy),
        text: svc.lbPolicy.trim(),
        source: 'annotation',
      };
    } catch (e) {
      problem = { problem: `fedgate.io/lb-policy ignored: ${(e as Error).message}` };
    }
  }
  const { picker, hashOn } = settings;
  return {
    policy: parsed(picker, hashOn),
    text: written(picker, hashOn),
    source: 'default',
    ...problem,
  };
}
