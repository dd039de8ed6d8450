// What a question gets: records and an rcode, from the snapshot and routing. Pure
// but for the router's plan cache. Addresses come from the plan for the client's
// locality (or the level the name asks for); `variant` picks the tier by load and
// rotates the addresses, so successive answers spread traffic as the plan says.
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { rcodeFor } from '../errors.ts';
import type { Router } from '../routing/router.ts';
import type { Locality, Plan, Target } from '../routing/types.ts';
import { type AddressingView, addressingPlan, srvPort } from './addressing.ts';
import { type HeadlessHost, headlessView, hostName, servingPort } from './mcs-headless.ts';
import type { NameIndex } from './name-index.ts';
import { type DnsZones, federationName, type Match, mcsName } from './names.ts';

export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export type RecordData =
  | { readonly type: 'A' | 'AAAA'; readonly address: string }
  | { readonly type: 'CNAME' | 'NS' | 'PTR'; readonly target: string }
  | {
      readonly type: 'SRV';
      readonly priority: number;
      readonly weight: number;
      readonly port: number;
      readonly target: string;
    }
  | { readonly type: 'TXT'; readonly text: string }
  | {
      readonly type: 'SOA';
      readonly mname: string;
      readonly rname: string;
      readonly serial: number;
      readonly refresh: number;
      readonly retry: number;
      readonly expire: number;
      readonly minimum: number;
    };

export interface Rr {
  readonly name: string;
  /** Seconds. */
  readonly ttl: number;
  readonly data: RecordData;
}

export type Rcode = 'NOERROR' | 'NXDOMAIN' | 'REFUSED' | 'FORMERR' | 'SERVFAIL' | 'NOTIMP';

export interface Answer {
  readonly rcode: Rcode;
  readonly answers: readonly Rr[];
  readonly authority: readonly Rr[];
  readonly additional: readonly Rr[];
  /** Which tier served (for metrics): its scope, or undefined when no routing was involved. */
  readonly tier?: string | undefined;
  /**
   * For a routed service name (the traffic picture): the service and where each
   * answered address is; no targets when nothing healthy could be answered.
   */
  readonly served?: Served | undefined;
}

export interface Served {
  readonly service: string;
  readonly targets: readonly { readonly cluster: string; readonly zone: string }[];
}

const servedBy = (svc: FederatedService, targets: readonly Target[]): Served => ({
  service: svc.key,
  targets: targets.map((t) => ({ cluster: t.cluster, zone: t.endpoint.locality.zone ?? '' })),
});

export interface AnswerSettings {
  readonly zones: DnsZones;
  readonly ttl: number;
  readonly negativeTtl: number;
  readonly maxAnswers: number;
  readonly nameServers: readonly { readonly name: string; readonly addresses: readonly string[] }[];
  readonly addressing: AddressingView;
}

export interface AnswerInput {
  readonly snapshot: Snapshot;
  readonly index: NameIndex;
  readonly router: Router;
  readonly serial: number;
  readonly settings: AnswerSettings;
}

/** How many answer variants a cached question cycles through: tier shares in tenths. */
export const VARIANTS = 10;

const SOA_TIMERS = { refresh: 3600, retry: 600, expire: 86_400 };

function soa(origin: string, input: AnswerInput): Rr {
  const s = input.settings;
  const neg = Math.round(s.negativeTtl / 1000);
  return {
    name: origin,
    ttl: neg,
    data: {
      type: 'SOA',
      mname: nameServerNames(origin, s)[0]!,
      rname: `hostmaster.${origin}`,
      serial: input.serial,
      ...SOA_TIMERS,
      minimum: neg,
    },
  };
}

function nameServerNames(origin: string, s: AnswerSettings): string[] {
  return s.nameServers.length > 0 ? s.nameServers.map((n) => n.name) : [`ns.${origin}`];
}

const familyOf = (qtype: number) => (qtype === QTYPE.AAAA ? 'IPv6' : 'IPv4');

/** The tier a variant lands in, by the plan's loads: variant i of VARIANTS takes the (i + ½)/VARIANTS point. */
function tierFor(plan: Plan, variant: number): number {
  const u = ((variant % VARIANTS) + 0.5) / VARIANTS;
  let acc = 0;
  let last = -1;
  for (const t of plan.tiers) {
    if (t.load <= 0 || t.targets.length === 0) continue;
    last = t.priority;
    acc += t.load;
    if (u < acc) return t.priority;
  }
  return last;
}

function rotate<T>(xs: readonly T[], by: number, max: number): T[] {
  if (xs.length === 0) return [];
  const start = by % xs.length;
  const out: T[] = [];
  for (let i = 0; i < Math.min(max, xs.length); i++) out.push(xs[(start + i) % xs.length]!);
  return out;
}

function familyTargets(targets: readonly Target[], qtype: number): Target[] {
  const fam = familyOf(qtype);
  return targets.filter((t) => t.endpoint.addressType === fam);
}

/** Address records for a service name, routed for the client's locality by the plan's loads. */
function routedAddresses(
  svc: FederatedService,
  qtype: number,
  locality: Locality | undefined,
  variant: number,
  input: AnswerInput,
): { addresses: string[]; tier?: string; served: Served | undefined } {
  const plan = addressingPlan(svc, locality, input.router, input.settings.addressing);
  const usable = plan.tiers
    .map((t) => ({ ...t, targets: familyTargets(t.targets, qtype) }))
    .filter((t) => t.load > 0 && t.targets.length > 0);
  if (usable.length === 0) {
    // Nothing to answer: a failure when nothing at all could serve, not when only the
    // other address family could (an AAAA question about an IPv4-only service).
    const any = plan.tiers.some((t) => t.load > 0 && t.targets.length > 0);
    return { addresses: [], served: any ? undefined : servedBy(svc, []) };
  }
  const chosen = tierFor({ ...plan, tiers: usable }, variant);
  const hit = usable.find((t) => t.priority === chosen)!;
  const picked = rotate(hit.targets, variant, input.settings.maxAnswers);
  return {
    addresses: picked.map((x) => x.address),
    tier: hit.scope,
    served: servedBy(svc, picked),
  };
}

/**
 * The eligible endpoints of a level (a region or a zone), fresh clusters before stale
 * ones. Panic does not apply: a level with nothing healthy answers a CNAME to the
 * wider level instead.
 */
function levelTargets(
  svc: FederatedService,
  at: Locality,
  scope: 'region' | 'zone',
  input: AnswerInput,
): Target[] {
  const plan = addressingPlan(svc, at, input.router, input.settings.addressing);
  const excluded = new Set(plan.excluded.map((e) => e.id));
  return plan.tiers
    .filter((t) => t.scope === scope)
    .flatMap((t) => t.targets.filter((x) => !excluded.has(x.id)));
}

/** A headless host's addresses of the asked family (§2.4.1: one record per address). */
function hostAddresses(h: HeadlessHost, qtype: number): readonly string[] {
  return qtype === QTYPE.AAAA ? h.ipv6 : h.ipv4;
}

function addressRrs(name: string, qtype: number, addresses: readonly string[], ttl: number): Rr[] {
  const type = qtype === QTYPE.AAAA ? 'AAAA' : 'A';
  return addresses.map((address) => ({ name, ttl, data: { type, address } }));
}

export interface Question {
  readonly name: string;
  readonly qtype: number;
}

/**
 * The answer to a question about a name in one of our zones. `name` is lower case
 * without the trailing dot; `match` is its parse.
 */
export function answer(
  q: Question,
  match: Match,
  locality: Locality | undefined,
  variant: number,
  input: AnswerInput,
): Answer {
  const origin = match.zone.origin;
  const ttl = Math.round(input.settings.ttl / 1000);
  const negative = (rcode: Rcode): Answer => ({
    rcode,
    answers: [],
    authority: [soa(origin, input)],
    additional: [],
  });
  const exists = input.index.names.has(q.name);
  if (q.qtype === QTYPE.AXFR || q.qtype === QTYPE.IXFR)
    return { rcode: rcodeFor('ZONE_TRANSFER_REFUSED'), answers: [], authority: [], additional: [] };
  if (!exists) return negative('NXDOMAIN');
  const p = match.parsed;
  const svcOf = (key: string) => input.snapshot.services.get(key);
  // RFC 8482: ANY gets one RRset, the addresses where there are some.
  const qtype = q.qtype === QTYPE.ANY ? anyType(p.kind) : q.qtype;
  const done = (answers: Rr[], tier?: string, additional: Rr[] = []): Answer =>
    answers.length === 0
      ? negative('NOERROR')
      : { rcode: 'NOERROR', answers, authority: [], additional, tier };

  switch (p.kind) {
    case 'apex': {
      if (qtype === QTYPE.SOA) return done([{ ...soa(origin, input), ttl }]);
      if (qtype === QTYPE.NS) {
        const ns = nameServerNames(origin, input.settings);
        return done(
          ns.map((target) => ({ name: origin, ttl, data: { type: 'NS', target } })),
          undefined,
          glue(ns, input, ttl),
        );
      }
      return done([]);
    }
    case 'dns-version':
      return done(
        qtype === QTYPE.TXT ? [{ name: q.name, ttl, data: { type: 'TXT', text: '1.0.0' } }] : [],
      );
    case 'mcs': {
      const svc = svcOf(p.service)!;
      if (qtype !== QTYPE.A && qtype !== QTYPE.AAAA) return done([]);
      if (svc.type === 'Headless') {
        const addresses = headlessView(svc).served.flatMap((h) => hostAddresses(h, qtype));
        return done(addressRrs(q.name, qtype, addresses, ttl));
      }
      const r = routedAddresses(svc, qtype, locality, variant, input);
      return { ...done(addressRrs(q.name, qtype, r.addresses, ttl), r.tier), served: r.served };
    }
    case 'mcs-srv': {
      const svc = svcOf(p.service);
      const port = svc?.ports.find(
        (x) => x.name === p.port && x.protocol.toLowerCase() === p.proto,
      );
      if (!svc || !port || qtype !== QTYPE.SRV) return done([]);
      const service = mcsName(svc, origin);
      const srv = (port: number, target: string): Rr => ({
        name: q.name,
        ttl,
        data: { type: 'SRV', priority: 0, weight: 1, port, target },
      });
      // §2.4.2: one record per ready endpoint, to its own name; §2.3.2: one, to the service.
      if (svc.type === 'Headless')
        return done(
          headlessView(svc).served.map((h) => srv(servingPort(h, port), hostName(h, service))),
        );
      return done([srv(srvPort(svc, port, input.settings.addressing), service)]);
    }
    case 'mcs-host': {
      const svc = svcOf(p.service);
      if (svc?.type !== 'Headless' || (qtype !== QTYPE.A && qtype !== QTYPE.AAAA)) return done([]);
      const h = headlessView(svc).byName.get(`${p.hostname}.${p.cluster}`);
      return done(addressRrs(q.name, qtype, h ? hostAddresses(h, qtype) : [], ttl));
    }
    case 'ptr': {
      const targets = qtype === QTYPE.PTR ? (input.index.ptr.get(q.name) ?? []) : [];
      return done(
        targets.map((target): Rr => ({ name: q.name, ttl, data: { type: 'PTR', target } })),
      );
    }
    case 'federation':
      return federationAnswer(q.name, qtype, p, locality, variant, input, origin, ttl, negative);
    case 'interior':
    case 'none':
      return done(nameServerAddresses(q.name, qtype, input, ttl));
  }
}

/** RFC 8482: ANY gets one RRset, the one a name of this kind owns (addresses where it has some). */
function anyType(kind: Match['parsed']['kind']): number {
  switch (kind) {
    case 'apex':
      return QTYPE.SOA;
    case 'dns-version':
      return QTYPE.TXT;
    case 'mcs-srv':
      return QTYPE.SRV;
    case 'ptr':
      return QTYPE.PTR;
    default:
      return QTYPE.A;
  }
}

function glue(ns: readonly string[], input: AnswerInput, ttl: number): Rr[] {
  return ns.flatMap((n) => [
    ...nameServerAddresses(n, QTYPE.A, input, ttl),
    ...nameServerAddresses(n, QTYPE.AAAA, input, ttl),
  ]);
}

function nameServerAddresses(name: string, qtype: number, input: AnswerInput, ttl: number): Rr[] {
  const ns = input.settings.nameServers.find((n) => n.name === name);
  if (!ns || (qtype !== QTYPE.A && qtype !== QTYPE.AAAA)) return [];
  const v6 = qtype === QTYPE.AAAA;
  return addressRrs(
    name,
    qtype,
    ns.addresses.filter((a) => a.includes(':') === v6),
    ttl,
  );
}

function federationAnswer(
  name: string,
  qtype: number,
  p: Extract<Match['parsed'], { kind: 'federation' }>,
  locality: Locality | undefined,
  variant: number,
  input: AnswerInput,
  origin: string,
  ttl: number,
  negative: (rcode: Rcode) => Answer,
): Answer {
  const svc = input.snapshot.services.get(p.service)!;
  const fed = input.settings.zones.federation;
  const chain: Rr[] = [];
  let level = p.level;
  let here = name;
  let where: { region?: string | undefined; zone?: string | undefined } = {
    region: p.region,
    zone: p.zone,
  };
  const address = qtype === QTYPE.A || qtype === QTYPE.AAAA;
  for (;;) {
    if (level !== 'global') {
      const at: Locality =
        level === 'zone' ? { region: where.region, zone: where.zone } : { region: where.region };
      // Whether the level has anything healthy decides the CNAME, whatever family was asked.
      const healthy = levelTargets(svc, at, level, input);
      if (healthy.length > 0) {
        const fitting = address ? familyTargets(healthy, qtype) : [];
        const picked = rotate(fitting, variant, input.settings.maxAnswers);
        const addresses = picked.map((x) => x.address);
        const answers = [...chain, ...addressRrs(here, qtype, addresses, ttl)];
        // Empty only for the other address family: not a failure, not counted.
        const served = picked.length > 0 ? servedBy(svc, picked) : undefined;
        return answers.length === 0
          ? { ...negative('NOERROR'), served }
          : { rcode: 'NOERROR', answers, authority: [], additional: [], tier: level, served };
      }
      const wider = level === 'zone' ? { region: where.region } : {};
      const target = federationName(svc.key, fed, origin, wider);
      chain.push({ name: here, ttl, data: { type: 'CNAME', target } });
      here = target;
      where = wider;
      level = level === 'zone' ? 'region' : 'global';
      continue;
    }
    const r = address
      ? routedAddresses(svc, qtype, locality, variant, input)
      : { addresses: [], served: undefined };
    const answers = [...chain, ...addressRrs(here, qtype, r.addresses, ttl)];
    if (answers.length === 0) return { ...negative('NOERROR'), served: r.served };
    return {
      rcode: 'NOERROR',
      answers,
      authority: [],
      additional: [],
      tier: 'tier' in r ? r.tier : undefined,
      served: r.served,
    };
  }
}
