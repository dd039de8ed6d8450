// Gateway API objects → the route tables the proxy serves and the status every
// object should show. Pure and deterministic: the same input gives the same output
// whatever order the records came in. GatewayClasses of fedgate's controller, their
// Gateways (the oldest copy of each namespace/name across config clusters; copies
// that say otherwise are reported Accepted False, reason Conflicted, and copies that
// agree show the served copy's status), the routes attached to
// them (same rule for copies), backendRefs resolved against the federated services.
import {
  GATEWAY_CONTROLLER,
  type GatewayObjectMeta,
  type GatewayRecord,
  type TlsSecretRecord,
} from '../watch/gateway-records.ts';
import { type Attachment, attachRoute, namesGateway } from './attach.ts';
import type { RouteId, RouteTables } from './attached.ts';
import { CompileCache } from './compile-cache.ts';
import { type Copies, keyOf, pickOldest } from './copies.ts';
import { gatewayConditions } from './gateway-status.ts';
import type { CompileInput } from './inputs.ts';
import { type JudgedListener, judgeListeners } from './listeners.ts';
import { acceptedOn, parentStatus, type RouteInput, type RouteOutcome } from './route-status.ts';
import { compileGrpcRules, compileHttpRules, type RulesCompiler } from './rules.ts';
import { compareReports, condition, type ObjectStatusReport, type StatusReport } from './status.ts';
import { type AcceptedRoute, buildTables } from './tables.ts';

export interface Compiled {
  readonly tables: RouteTables;
  readonly status: StatusReport;
}

/** The reason fedgate gives a copy that lost to an older copy in another cluster. */
export const CONFLICTED = 'Conflicted';

const METADATA_NAME_LABEL = 'kubernetes.io/metadata.name';

/** What every route's compilation reads besides the route: see compile-cache.ts. */
interface SharedContext {
  readonly classReports: readonly ObjectStatusReport[];
  readonly namespaceLabels: (namespace: string) => Readonly<Record<string, string>>;
  readonly gateways: Copies<GatewayRecord>;
  readonly judged: ReadonlyMap<string, readonly JudgedListener[]>;
}

/** What one served route gives: its outcome and its status report. */
interface RouteResult {
  readonly outcome: RouteOutcome;
  readonly report: ObjectStatusReport;
  /** Where it is accepted, and on which listeners (each once: attachedRoutes counts routes). */
  readonly attachments: readonly Attachment[];
  readonly listeners: ReadonlySet<JudgedListener>;
}

/** A CompileCache for compileGateways: hold one to compile again after a change. */
export type GatewayCompileCache = CompileCache<SharedContext, RouteResult>;

export const newCompileCache = (): GatewayCompileCache => new CompileCache();

function sharedContext(input: CompileInput): SharedContext {
  const { objects, listeners: mappings } = input;
  const classes = objects.gatewayClasses.filter((c) => c.controllerName === GATEWAY_CONTROLLER);
  const classNames = new Set(classes.map((c) => c.name));
  const classReports: ObjectStatusReport[] = classes.map((c) => ({
    kind: 'GatewayClass',
    cluster: c.cluster,
    namespace: '',
    name: c.name,
    status: {
      conditions: [
        condition(c.generation, 'Accepted', true, 'Accepted', `handled by ${GATEWAY_CONTROLLER}`),
      ],
    },
  }));

  const secrets = new Map<string, TlsSecretRecord>(pickOldest(objects.secrets).winners);
  const namespaces = pickOldest(objects.namespaces).winners;
  const namespaceLabels = (ns: string) =>
    namespaces.get(keyOf({ namespace: '', name: ns }))?.labels ?? { [METADATA_NAME_LABEL]: ns };

  const gateways: Copies<GatewayRecord> = pickOldest(
    objects.gateways.filter((g) => classNames.has(g.gatewayClassName)),
  );
  const judged = new Map<string, readonly JudgedListener[]>();
  for (const [key, g] of gateways.winners)
    judged.set(key, judgeListeners(g, mappings, objects.referenceGrants, secrets));
  return { classReports, namespaceLabels, gateways, judged };
}

/**
 * `cache`: what the last compilation with it kept; the result is the same as
 * without it (compile-cache.ts says what is kept and when it is dropped).
 */
export function compileGateways(input: CompileInput, cache?: GatewayCompileCache): Compiled {
  const { objects, services, addresses } = input;
  const shared = cache ? cache.shared(input, () => sharedContext(input)) : sharedContext(input);
  const { gateways, judged, namespaceLabels } = shared;
  const reports: ObjectStatusReport[] = [...shared.classReports];
  const grants = objects.referenceGrants;

  const outcomes: RouteResult[] = [];
  const routeLosers: { copy: RouteInput; id: RouteId; winner: RouteInput }[] = [];
  const routeCopies: { agreeing: { copy: RouteInput; winner: RouteInput }[] } = { agreeing: [] };
  const collect = <R extends RouteInput>(
    kind: RouteId['kind'],
    records: readonly R[],
    compileRules: RulesCompiler<R>,
  ): void => {
    const copies = pickOldest(records);
    const compileRoute = (r: R): RouteResult => {
      const id: RouteId = { kind, namespace: r.namespace, name: r.name };
      const compiled = compileRules(r, services, grants);
      const parents = attachRoute(id, r.generation, r.parentRefs, r.hostnames, {
        gateways: judged,
        namespaceLabels,
      });
      const outcome: RouteOutcome = { record: r, id, compiled, parents };
      const report: ObjectStatusReport = {
        kind,
        cluster: r.cluster,
        namespace: r.namespace,
        name: r.name,
        status: { parents: parents.map((v) => parentStatus(outcome, v)) },
      };
      const attachments = parents
        .filter((v) => acceptedOn(outcome, v))
        .flatMap((v) => v.attachments);
      return {
        outcome,
        report,
        attachments,
        listeners: new Set(attachments.map((a) => a.listener)),
      };
    };
    for (const r of copies.winners.values()) {
      const result = cache ? cache.route(r, () => compileRoute(r)) : compileRoute(r);
      outcomes.push(result);
      routeReports.push(result.report);
    }
    for (const { copy, winner } of copies.losers) {
      routeLosers.push({ copy, id: { kind, namespace: copy.namespace, name: copy.name }, winner });
    }
    routeCopies.agreeing.push(...copies.agreeing);
  };
  const routeReports: ObjectStatusReport[] = [];
  collect('HTTPRoute', objects.httpRoutes, compileHttpRules);
  collect('GRPCRoute', objects.grpcRoutes, compileGrpcRules);

  // attachedRoutes: the routes accepted on each listener, each route once.
  const attachedTo = new Map<JudgedListener, number>();
  const accepted: AcceptedRoute[] = [];
  for (const { outcome, attachments, listeners } of outcomes) {
    for (const l of listeners) attachedTo.set(l, (attachedTo.get(l) ?? 0) + 1);
    // A route without rules (a GRPCRoute may have none) attaches but adds no host.
    if (attachments.length > 0 && outcome.compiled.rules.length > 0)
      accepted.push({ rules: outcome.compiled.rules, attachments });
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
          attachedRoutes: attachedTo.get(l) ?? 0,
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

  reports.push(...routeReports);
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

  const agreeing = [...gateways.agreeing, ...routeCopies.agreeing];
  const programmed = [...judged.values()].flat().filter((l) => l.programmed);
  return {
    tables: buildTables(accepted, programmed, cache),
    status: { objects: [...reports, ...copiedReports(reports, agreeing)].sort(compareReports) },
  };
}

/**
 * A copy that agrees with the served one shows the served one's status, with its own
 * generation as observedGeneration (each cluster counts its copy's generations).
 */
function copiedReports(
  reports: readonly ObjectStatusReport[],
  agreeing: readonly { readonly copy: GatewayObjectMeta; readonly winner: GatewayObjectMeta }[],
): ObjectStatusReport[] {
  const byWinner = new Map<string, GatewayObjectMeta[]>();
  for (const { copy, winner } of agreeing) {
    const key = `${winner.cluster}/${keyOf(winner)}`;
    byWinner.set(key, [...(byWinner.get(key) ?? []), copy]);
  }
  return reports.flatMap((r) =>
    (byWinner.get(`${r.cluster}/${keyOf(r)}`) ?? []).map(
      (copy) =>
        ({
          ...r,
          cluster: copy.cluster,
          status: withGeneration(r.status, copy.generation),
        }) as ObjectStatusReport,
    ),
  );
}

/** A deep copy with every observedGeneration set to `generation`. */
function withGeneration<T>(value: T, generation: number): T {
  if (Array.isArray(value)) return value.map((v) => withGeneration(v, generation)) as T;
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === 'observedGeneration' ? generation : withGeneration(v, generation),
    ]),
  ) as T;
}
