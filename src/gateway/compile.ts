// Gateway API objects → the route tables the proxy serves and the status every
// object should show. Pure and deterministic: the same input gives the same output
// whatever order the records came in. GatewayClasses of fedgate's controller, their
// Gateways (the oldest copy of each namespace/name across config clusters; the
// others are reported Accepted False, reason Conflicted), the routes attached to
// them (same rule for copies), backendRefs resolved against the federated services.
import {
  GATEWAY_CONTROLLER,
  type GatewayObjectMeta,
  type GatewayRecord,
  type ParentRef,
  type TlsSecretRecord,
} from '../watch/gateway-records.ts';
import { attachRoute, namesGateway, type ParentVerdict } from './attach.ts';
import type { RouteId, RouteTables } from './attached.ts';
import { type Copies, keyOf, pickOldest } from './copies.ts';
import type { CompileInput } from './inputs.ts';
import { type JudgedListener, judgeListeners } from './listeners.ts';
import {
  type CompiledRules,
  compileGrpcRules,
  compileHttpRules,
  type RulesCompiler,
} from './rules.ts';
import {
  type Condition,
  compareReports,
  condition,
  type ObjectStatusReport,
  type RouteParentStatus,
  type StatusReport,
} from './status.ts';
import { type AcceptedRoute, buildTables } from './tables.ts';

export interface Compiled {
  readonly tables: RouteTables;
  readonly status: StatusReport;
}

/** The reason fedgate gives a copy that lost to an older copy in another cluster. */
export const CONFLICTED = 'Conflicted';

const METADATA_NAME_LABEL = 'kubernetes.io/metadata.name';

interface RouteInput extends GatewayObjectMeta {
  readonly parentRefs: readonly ParentRef[];
  readonly hostnames: readonly string[];
}

interface RouteOutcome {
  readonly record: RouteInput;
  readonly id: RouteId;
  readonly compiled: CompiledRules;
  readonly parents: readonly ParentVerdict[];
}

function parentStatus(o: RouteOutcome, v: ParentVerdict): RouteParentStatus {
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
const acceptedOn = (o: RouteOutcome, v: ParentVerdict): boolean =>
  v.attached && (o.compiled.rules.length > 0 || o.compiled.dropped.length === 0);

export function compileGateways(input: CompileInput): Compiled {
  const { objects, services, listeners: mappings, addresses } = input;
  const reports: ObjectStatusReport[] = [];

  const classes = objects.gatewayClasses.filter((c) => c.controllerName === GATEWAY_CONTROLLER);
  const classNames = new Set(classes.map((c) => c.name));
  for (const c of classes) {
    reports.push({
      kind: 'GatewayClass',
      cluster: c.cluster,
      namespace: '',
      name: c.name,
      status: {
        conditions: [
          condition(c.generation, 'Accepted', true, 'Accepted', `handled by ${GATEWAY_CONTROLLER}`),
        ],
      },
    });
  }

  const secrets = new Map<string, TlsSecretRecord>(pickOldest(objects.secrets).winners);
  const namespaces = pickOldest(objects.namespaces).winners;
  const namespaceLabels = (ns: string) =>
    namespaces.get(keyOf({ namespace: '', name: ns }))?.labels ?? { [METADATA_NAME_LABEL]: ns };
  const grants = objects.referenceGrants;

  const gateways: Copies<GatewayRecord> = pickOldest(
    objects.gateways.filter((g) => classNames.has(g.gatewayClassName)),
  );
  const judged = new Map<string, readonly JudgedListener[]>();
  for (const [key, g] of gateways.winners)
    judged.set(key, judgeListeners(g, mappings, grants, secrets));

  const outcomes: RouteOutcome[] = [];
  const routeLosers: { copy: RouteInput; id: RouteId; winner: RouteInput }[] = [];
  const collect = <R extends RouteInput>(
    kind: RouteId['kind'],
    records: readonly R[],
    compileRules: RulesCompiler<R>,
  ): void => {
    const copies = pickOldest(records);
    for (const r of copies.winners.values()) {
      const id: RouteId = { kind, namespace: r.namespace, name: r.name };
      const compiled = compileRules(r, services, grants);
      const parents = attachRoute(id, r.generation, r.parentRefs, r.hostnames, {
        gateways: judged,
        namespaceLabels,
      });
      outcomes.push({ record: r, id, compiled, parents });
    }
    for (const { copy, winner } of copies.losers) {
      routeLosers.push({ copy, id: { kind, namespace: copy.namespace, name: copy.name }, winner });
    }
  };
  collect('HTTPRoute', objects.httpRoutes, compileHttpRules);
  collect('GRPCRoute', objects.grpcRoutes, compileGrpcRules);

  // attachedRoutes: the routes accepted on each listener, each route once.
  const attachedTo = new Map<JudgedListener, Set<RouteOutcome>>();
  const accepted: AcceptedRoute[] = [];
  for (const o of outcomes) {
    const attachments = o.parents.filter((v) => acceptedOn(o, v)).flatMap((v) => v.attachments);
    for (const a of attachments) {
      const set = attachedTo.get(a.listener) ?? new Set();
      set.add(o);
      attachedTo.set(a.listener, set);
    }
    if (attachments.length > 0) accepted.push({ rules: o.compiled.rules, attachments });
  }

  for (const g of gateways.winners.values()) {
    const listeners = judged.get(keyOf(g)) ?? [];
    reports.push({
      kind: 'Gateway',
      cluster: g.cluster,
      namespace: g.namespace,
      name: g.name,
      status: {
        addresses,
        conditions: gatewayConditions(g, listeners, addresses.length > 0),
        listeners: listeners.map((l) => ({
          name: l.listener.name,
          supportedKinds: l.supportedKinds,
          attachedRoutes: attachedTo.get(l)?.size ?? 0,
          conditions: l.conditions,
        })),
      },
    });
  }
  for (const { copy, winner } of gateways.losers) {
    const message = `the copy in cluster ${winner.cluster} is older and is the one served`;
    reports.push({
      kind: 'Gateway',
      cluster: copy.cluster,
      namespace: copy.namespace,
      name: copy.name,
      status: {
        addresses: [],
        conditions: [
          condition(copy.generation, 'Accepted', false, CONFLICTED, message),
          condition(copy.generation, 'Programmed', false, 'Invalid', message),
        ],
        listeners: [],
      },
    });
  }

  for (const o of outcomes) {
    reports.push({
      kind: o.id.kind,
      cluster: o.record.cluster,
      namespace: o.record.namespace,
      name: o.record.name,
      status: { parents: o.parents.map((v) => parentStatus(o, v)) },
    });
  }
  for (const { copy, id, winner } of routeLosers) {
    const message = `the copy in cluster ${winner.cluster} is older and is the one served`;
    const parents = copy.parentRefs
      .filter(
        (p) =>
          namesGateway(p) &&
          gateways.winners.has(keyOf({ namespace: p.namespace ?? copy.namespace, name: p.name })),
      )
      .map((parentRef) => ({
        parentRef,
        controllerName: GATEWAY_CONTROLLER,
        conditions: [condition(copy.generation, 'Accepted', false, CONFLICTED, message)],
      }));
    reports.push({
      kind: id.kind,
      cluster: copy.cluster,
      namespace: copy.namespace,
      name: copy.name,
      status: { parents },
    });
  }

  const programmed = [...judged.values()].flat().filter((l) => l.programmed);
  return {
    tables: buildTables(accepted, programmed),
    status: { objects: reports.sort(compareReports) },
  };
}

function gatewayConditions(
  g: GatewayRecord,
  listeners: readonly JudgedListener[],
  hasAddress: boolean,
): Condition[] {
  const gen = g.generation;
  const acceptedCount = listeners.filter((l) => l.accepted).length;
  const invalid = listeners.filter((l) => !l.accepted).map((l) => l.listener.name);
  const accepted =
    invalid.length === 0 && listeners.length > 0
      ? condition(gen, 'Accepted', true, 'Accepted', 'Gateway accepted')
      : condition(
          gen,
          'Accepted',
          acceptedCount > 0,
          'ListenersNotValid',
          `listener(s) not valid: ${invalid.join(', ') || 'none declared'}`,
        );
  let programmed: Condition;
  if (!hasAddress) {
    programmed = condition(
      gen,
      'Programmed',
      false,
      'AddressNotAssigned',
      'fedgate has no address to publish',
    );
  } else if (listeners.some((l) => l.programmed)) {
    programmed = condition(gen, 'Programmed', true, 'Programmed', 'served by fedgate');
  } else {
    programmed = condition(gen, 'Programmed', false, 'Invalid', 'no listener can be served');
  }
  return [accepted, programmed];
}
