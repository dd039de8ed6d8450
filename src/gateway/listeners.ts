// A Gateway's listeners judged on their own, before any route: which route kinds
// each supports, whether fedgate can serve it (protocol, a fedgate listener mapped
// for its port, conflicts with its siblings) and whether its certificateRefs
// resolve. attachedRoutes is counted later, once routes are attached.
import type {
  GatewayRecord,
  ListenerRecord,
  ReferenceGrantRecord,
  RouteGroupKind,
  TlsSecretRecord,
} from '../watch/gateway-records.ts';
import { pemProblem } from './certificates.ts';
import type { GatewayListenerMapping } from './inputs.ts';
import { certificateRefProblem, GATEWAY_GROUP } from './refs.ts';
import { type Condition, condition } from './status.ts';

/** The route kinds fedgate serves on HTTP and HTTPS listeners. */
export const ROUTE_KINDS: readonly RouteGroupKind[] = [
  { group: GATEWAY_GROUP, kind: 'HTTPRoute' },
  { group: GATEWAY_GROUP, kind: 'GRPCRoute' },
];

export interface JudgedListener {
  readonly gateway: GatewayRecord;
  readonly listener: ListenerRecord;
  readonly supportedKinds: readonly RouteGroupKind[];
  /** The fedgate listener serving it, when one is mapped for its port and protocol. */
  readonly mapping?: GatewayListenerMapping;
  /** Accepted, ResolvedRefs, Conflicted and Programmed, in that order. */
  readonly conditions: readonly Condition[];
  readonly accepted: boolean;
  /** Its routes go into the route tables. */
  readonly programmed: boolean;
  /** An HTTPS listener's certificateRefs' Secrets, resolved and checked. */
  readonly certificates: readonly { readonly cert: string; readonly key: string }[];
}

interface Verdict {
  readonly ok: boolean;
  readonly reason: string;
  readonly message: string;
}

type Resolution = Verdict & { readonly certificates: JudgedListener['certificates'] };

const ok = (reason: string, message: string): Verdict => ({ ok: true, reason, message });
const no = (reason: string, message: string): Verdict => ({ ok: false, reason, message });

function supportedKindsOf(l: ListenerRecord): { kinds: RouteGroupKind[]; invalid: string[] } {
  if (l.protocol !== 'HTTP' && l.protocol !== 'HTTPS') return { kinds: [], invalid: [] };
  if (l.allowedRoutes.kinds.length === 0) return { kinds: [...ROUTE_KINDS], invalid: [] };
  const kinds: RouteGroupKind[] = [];
  const invalid: string[] = [];
  for (const k of l.allowedRoutes.kinds) {
    const known = ROUTE_KINDS.some((s) => s.group === k.group && s.kind === k.kind);
    if (!known) invalid.push(`${k.kind}.${k.group}`);
    else if (!kinds.some((s) => s.group === k.group && s.kind === k.kind)) kinds.push(k);
  }
  return { kinds, invalid };
}

function acceptance(l: ListenerRecord, mappings: readonly GatewayListenerMapping[]): Verdict {
  if (l.protocol !== 'HTTP' && l.protocol !== 'HTTPS') {
    return no('UnsupportedProtocol', `protocol ${l.protocol} is not supported (HTTP, HTTPS)`);
  }
  if (l.protocol === 'HTTPS' && l.tls?.mode === 'Passthrough') {
    return no('UnsupportedValue', 'tls.mode Passthrough is not supported on HTTPS listeners');
  }
  if (!mappings.some((m) => m.port === l.port && m.protocol === l.protocol)) {
    const other = mappings.find((m) => m.port === l.port);
    return no(
      'PortUnavailable',
      other !== undefined
        ? `fedgate serves port ${l.port} as ${other.protocol} (${other.address}), not ${l.protocol}`
        : `no fedgate listener is mapped for port ${l.port} (gatewayAPI.listeners)`,
    );
  }
  return ok('Accepted', 'listener accepted');
}

function resolution(
  g: GatewayRecord,
  l: ListenerRecord,
  invalidKinds: readonly string[],
  grants: readonly ReferenceGrantRecord[],
  secrets: ReadonlyMap<string, TlsSecretRecord>,
): Resolution {
  const fail = (reason: string, message: string) => ({ ...no(reason, message), certificates: [] });
  if (invalidKinds.length > 0) {
    return fail('InvalidRouteKinds', `route kinds not supported: ${invalidKinds.join(', ')}`);
  }
  const certificates: { cert: string; key: string }[] = [];
  if (l.protocol === 'HTTPS' && l.tls?.mode !== 'Passthrough') {
    const refs = l.tls?.certificateRefs ?? [];
    if (refs.length === 0)
      return fail('InvalidCertificateRef', 'an HTTPS listener needs a certificateRef');
    for (const ref of refs) {
      const p = certificateRefProblem(ref, g.namespace, grants, secrets);
      if (p !== undefined) return fail(p.reason, p.message);
      const name = `${ref.namespace ?? g.namespace}/${ref.name}`;
      const secret = secrets.get(name);
      if (secret === undefined) continue;
      const bad = pemProblem(secret);
      if (bad !== undefined) return fail('InvalidCertificateRef', `Secret ${name}: ${bad}`);
      certificates.push({ cert: secret.cert, key: secret.key });
    }
  }
  return { ...ok('ResolvedRefs', 'all references resolved'), certificates };
}

/** ProtocolConflict / HostnameConflict among one Gateway's listeners on the same port. */
function conflict(g: GatewayRecord, l: ListenerRecord): Verdict | undefined {
  for (const other of g.listeners) {
    if (other === l || other.port !== l.port) continue;
    if (other.protocol !== l.protocol) {
      return no(
        'ProtocolConflict',
        `listener ${other.name} uses port ${l.port} with ${other.protocol}`,
      );
    }
    if ((other.hostname ?? '') === (l.hostname ?? '')) {
      return no(
        'HostnameConflict',
        `listener ${other.name} uses port ${l.port} with the same hostname`,
      );
    }
  }
  return undefined;
}

export function judgeListeners(
  g: GatewayRecord,
  mappings: readonly GatewayListenerMapping[],
  grants: readonly ReferenceGrantRecord[],
  secrets: ReadonlyMap<string, TlsSecretRecord>,
): JudgedListener[] {
  return g.listeners.map((l) => {
    const { kinds, invalid } = supportedKindsOf(l);
    const accepted = acceptance(l, mappings);
    const resolved = resolution(g, l, invalid, grants, secrets);
    const conflicted = conflict(g, l);
    const programmed = accepted.ok && resolved.ok && conflicted === undefined;
    const why = [accepted, resolved, conflicted].find((v) => v !== undefined && !v.ok);
    const mapping = mappings.find((m) => m.port === l.port && m.protocol === l.protocol);
    const gen = g.generation;
    return {
      gateway: g,
      listener: l,
      supportedKinds: kinds,
      ...(mapping !== undefined ? { mapping } : {}),
      accepted: accepted.ok,
      programmed,
      certificates: programmed ? resolved.certificates : [],
      conditions: [
        condition(gen, 'Accepted', accepted.ok, accepted.reason, accepted.message),
        condition(gen, 'ResolvedRefs', resolved.ok, resolved.reason, resolved.message),
        conflicted !== undefined
          ? condition(gen, 'Conflicted', true, conflicted.reason, conflicted.message)
          : condition(gen, 'Conflicted', false, 'NoConflicts', 'no conflicts'),
        programmed
          ? condition(
              gen,
              'Programmed',
              true,
              'Programmed',
              `served by fedgate listener ${mapping?.address}`,
            )
          : condition(gen, 'Programmed', false, 'Invalid', why?.message ?? 'not programmed'),
      ],
    };
  });
}
