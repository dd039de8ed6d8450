// A route's parent status: per parentRef to one of fedgate's Gateways, Accepted
// (attachment, or no rule left to serve), ResolvedRefs (the first unresolved
// reference's reason, every message), and PartiallyInvalid when rules were dropped.
import {
  GATEWAY_CONTROLLER,
  type GatewayObjectMeta,
  type ParentRef,
} from '../watch/gateway-records.ts';
import type { ParentVerdict } from './attach.ts';
import type { RouteId } from './attached.ts';
import type { CompiledRules } from './rules.ts';
import { type Condition, condition, type RouteParentStatus } from './status.ts';

export interface RouteInput extends GatewayObjectMeta {
  readonly parentRefs: readonly ParentRef[];
  readonly hostnames: readonly string[];
}

export interface RouteOutcome {
  readonly record: RouteInput;
  readonly id: RouteId;
  readonly compiled: CompiledRules;
  readonly parents: readonly ParentVerdict[];
}

export function parentStatus(o: RouteOutcome, v: ParentVerdict): RouteParentStatus {
  const gen = o.record.generation;
  const { rules, dropped, unresolved } = o.compiled;
  const noRules = rules.length === 0 && dropped.length > 0;
  const firstDropped = dropped[0];
  const conditions: Condition[] = [
    v.attached && noRules && firstDropped !== undefined
      ? condition(
          gen,
          'Accepted',
          false,
          firstDropped.reason,
          `no rule can be served: ${firstDropped.message}`,
        )
      : condition(gen, 'Accepted', v.attached, v.reason, v.message),
  ];
  const firstUnresolved = unresolved[0];
  conditions.push(
    firstUnresolved !== undefined
      ? condition(
          gen,
          'ResolvedRefs',
          false,
          firstUnresolved.reason,
          unresolved.map((u) => u.message).join('; '),
        )
      : condition(gen, 'ResolvedRefs', true, 'ResolvedRefs', 'all references resolved'),
  );
  if (v.attached && !noRules && firstDropped !== undefined) {
    const list = dropped.map((d) => `${d.index} (${d.message})`).join(', ');
    conditions.push(
      condition(gen, 'PartiallyInvalid', true, 'UnsupportedValue', `Dropped Rule(s) ${list}`),
    );
  }
  return { parentRef: v.parentRef, controllerName: GATEWAY_CONTROLLER, conditions };
}

/** A route is accepted on a parent when it attached there and has a rule to serve. */
export const acceptedOn = (o: RouteOutcome, v: ParentVerdict): boolean =>
  v.attached && (o.compiled.rules.length > 0 || o.compiled.dropped.length === 0);
