// Which Gateway listeners a route attaches to, per parentRef: the listeners its
// sectionName and port select (none: NoMatchingParent), of those the ones whose
// allowedRoutes admit the route's kind and namespace (none: NotAllowedByListeners),
// of those the ones its hostnames intersect (none: NoMatchingListenerHostname).
import type { LabelSelector, ParentRef } from '../watch/gateway-records.ts';
import type { RouteId } from './attached.ts';
import { keyOf } from './copies.ts';
import { intersectHostnames } from './hostnames.ts';
import { selectorMatches } from './labels.ts';
import type { JudgedListener } from './listeners.ts';
import { GATEWAY_GROUP } from './refs.ts';

export interface Attachment {
  readonly listener: JudgedListener;
  /** The names the route serves there; '' for any host. */
  readonly hostnames: readonly string[];
}

export interface ParentVerdict {
  readonly parentRef: ParentRef;
  /** `namespace/name` of the Gateway. */
  readonly gatewayKey: string;
  readonly generation: number;
  readonly attached: boolean;
  readonly reason: string;
  readonly message: string;
  readonly attachments: readonly Attachment[];
}

export interface AttachContext {
  /** fedgate's Gateways (the copy served), by `namespace/name`, with their listeners judged. */
  readonly gateways: ReadonlyMap<string, readonly JudgedListener[]>;
  readonly namespaceLabels: (namespace: string) => Readonly<Record<string, string>>;
}

/** Does the parentRef name a Gateway (rather than some other parent kind)? */
export const namesGateway = (p: ParentRef): boolean =>
  p.group === GATEWAY_GROUP && p.kind === 'Gateway';

function admits(
  l: JudgedListener,
  route: RouteId,
  labels: (ns: string) => Readonly<Record<string, string>>,
): boolean {
  if (!l.supportedKinds.some((k) => k.group === GATEWAY_GROUP && k.kind === route.kind))
    return false;
  const { from, selector } = l.listener.allowedRoutes;
  if (from === 'All') return true;
  if (from === 'Same') return route.namespace === l.gateway.namespace;
  const everything: LabelSelector = { matchLabels: {}, matchExpressions: [] };
  return selectorMatches(selector ?? everything, labels(route.namespace));
}

/**
 * The verdict for each parentRef that names one of fedgate's Gateways; parentRefs
 * to other kinds or to Gateways fedgate does not run get none (their controller
 * speaks for them).
 */
export function attachRoute(
  route: RouteId,
  generation: number,
  parentRefs: readonly ParentRef[],
  hostnames: readonly string[],
  ctx: AttachContext,
): ParentVerdict[] {
  const out: ParentVerdict[] = [];
  for (const parentRef of parentRefs) {
    if (!namesGateway(parentRef)) continue;
    const gatewayKey = keyOf({
      namespace: parentRef.namespace ?? route.namespace,
      name: parentRef.name,
    });
    const listeners = ctx.gateways.get(gatewayKey);
    if (listeners === undefined) continue;
    const verdict = (
      attached: boolean,
      reason: string,
      message: string,
      attachments: Attachment[] = [],
    ) => out.push({ parentRef, gatewayKey, generation, attached, reason, message, attachments });
    const selected = listeners.filter(
      (l) =>
        (parentRef.sectionName === undefined || parentRef.sectionName === l.listener.name) &&
        (parentRef.port === undefined || parentRef.port === l.listener.port),
    );
    if (selected.length === 0) {
      const want = [
        parentRef.sectionName !== undefined ? `sectionName ${parentRef.sectionName}` : '',
        parentRef.port !== undefined ? `port ${parentRef.port}` : '',
      ].filter(Boolean);
      verdict(
        false,
        'NoMatchingParent',
        `Gateway ${gatewayKey} has no listener with ${want.join(' and ')}`,
      );
      continue;
    }
    const allowed = selected.filter((l) => admits(l, route, ctx.namespaceLabels));
    if (allowed.length === 0) {
      verdict(
        false,
        'NotAllowedByListeners',
        `no listener of Gateway ${gatewayKey} allows ${route.kind}s from namespace ${route.namespace}`,
      );
      continue;
    }
    const attachments = allowed
      .map((listener) => ({
        listener,
        hostnames: intersectHostnames(hostnames, listener.listener.hostname),
      }))
      .filter((a) => a.hostnames.length > 0);
    if (attachments.length === 0) {
      verdict(
        false,
        'NoMatchingListenerHostname',
        `no hostname of the route intersects a listener hostname of Gateway ${gatewayKey}`,
      );
      continue;
    }
    verdict(
      true,
      'Accepted',
      `attached to listener(s) ${attachments.map((a) => a.listener.listener.name).join(', ')}`,
      attachments,
    );
  }
  return out;
}
