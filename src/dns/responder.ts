// One DNS message in, at most one out; no sockets here. Ordinary queries take the
// fast path: scan, find the encoded answer cached per (question, EDNS shape,
// client locality), patch ID, RD and name case. Misses and anything unusual take
// the full path through dns2. The cache is dropped whenever the catalog or health
// changes, so an answer is never older than the last change.
import type { Snapshot } from '../catalog/model.ts';
import { DNS_UDP_PAYLOAD_SIZE } from '../config/defaults.ts';
import type { Config } from '../config/schema.ts';
import { rcodeFor } from '../errors.ts';
import { localityKey } from '../routing/locality.ts';
import type { Router } from '../routing/router.ts';
import type { Locality } from '../routing/types.ts';
import type { AddressingView } from './addressing.ts';
import {
  type Answer,
  type AnswerInput,
  type AnswerSettings,
  answer,
  QTYPE,
  type Rcode,
  type Served,
  VARIANTS,
} from './answer.ts';
import { encodeResponse } from './codec.ts';
import { buildIndex, type NameIndex } from './name-index.ts';
import { type Match, matchZone, type NameRules, nameRules } from './names.ts';
import type { ResponseRateLimiter, RrlClass } from './rrl.ts';
import {
  asciiLower,
  type Ecs,
  ecsAddress,
  inspectMessage,
  patchResponse,
  type ScannedQuery,
  scanQuery,
} from './wire.ts';

const CACHE_MAX = 50_000;
const LOCATE_CACHE_MAX = 10_000;
const PLAIN_UDP_LIMIT = 512;

interface Entry {
  readonly rcode: Answer['rcode'];
  readonly cls: RrlClass;
  readonly rrlName: string;
  /** Which tier each variant's answer came from, once built. */
  readonly tiers: (string | undefined)[];
  /** Which service and where each variant's answer served, once built (the traffic picture). */
  readonly served: (Served | undefined)[];
  /** "qtype|scheme|rcode", the metrics key of this question's answers. */
  readonly kind: string;
  readonly variants: (Buffer | undefined)[];
  readonly build: (variant: number, truncated: boolean) => Buffer;
  truncated: Buffer | undefined;
  next: number;
}

interface Located {
  readonly locality: Locality | undefined;
  readonly key: string;
  /** ECS scope prefix: how far the answer holds (the table rule's length, capped by the source). */
  readonly scope: number;
}

export interface ResponderStats {
  queries: number;
  cacheHits: number;
  truncated: number;
  rrlSlipped: number;
  rrlDropped: number;
  dropped: number;
  /** By rcode name. */
  rcodes: Record<string, number>;
  /** Answers by the scope of the tier that served them. */
  tiers: Record<string, number>;
  /** Answers by "qtype|scheme|rcode" (see queryKind): bounded by the names of each. */
  kinds: Map<string, number>;
}

const QTYPE_NAMES = new Map<number, string>(Object.entries(QTYPE).map(([k, v]) => [v, k]));

/** Which naming scheme a question used, for metrics: bounded, never the name itself. */
export function nameScheme(match: Match | undefined): string {
  if (!match) return 'outside';
  const p = match.parsed;
  switch (p.kind) {
    case 'mcs':
    case 'mcs-srv':
    case 'mcs-host':
      return 'mcs';
    case 'ptr':
      return 'reverse';
    case 'federation':
      return p.level === 'global' ? 'federation' : p.level === 'region' ? 'regional' : 'zonal';
    case 'apex':
    case 'dns-version':
    case 'interior':
      return `${match.zone.kind}-zone`;
    case 'none':
      return `${match.zone.kind}-unknown`;
  }
}

function queryKind(qtype: number | undefined, scheme: string, rcode: string): string {
  const type = qtype === undefined ? 'none' : (QTYPE_NAMES.get(qtype) ?? 'other');
  return `${type}|${scheme}|${rcode}`;
}

export interface ResponderOptions {
  readonly config: Config;
  readonly router: Router;
  readonly rrl: ResponseRateLimiter;
  readonly addressing: AddressingView;
  readonly serialBase: number;
}

function settingsOf(c: Config, addressing: AddressingView): AnswerSettings {
  return {
    zones: {
      clusterset: c.federation.clustersetZone,
      domain: c.federation.domain,
      federation: c.federation.name,
      reverse: c.dns.reverseZones,
    },
    ttl: c.dns.ttl,
    negativeTtl: c.dns.negativeTtl,
    maxAnswers: c.dns.maxAnswers,
    nameServers: c.dns.nameServers,
    addressing,
  };
}

/** The most a UDP answer may carry: 512 without EDNS, else the client's size up to ours. */
function udpLimit(edns: { readonly payload: number } | undefined): number {
  return edns
    ? Math.max(PLAIN_UDP_LIMIT, Math.min(edns.payload, DNS_UDP_PAYLOAD_SIZE))
    : PLAIN_UDP_LIMIT;
}

function rrlClass(a: Answer): RrlClass {
  if (a.rcode === 'NXDOMAIN') return 'nxdomain';
  if (a.rcode !== 'NOERROR') return 'error';
  return a.answers.length > 0 ? 'positive' : 'nodata';
}

export class Responder {
  settings: AnswerSettings;
  #rules: NameRules;
  readonly #router: Router;
  #rrl: ResponseRateLimiter;
  readonly #serialBase: number;
  #snapshot: Snapshot | undefined;
  #index: NameIndex | undefined;
  #cache = new Map<string, Entry>();
  #located = new Map<string, Located>();
  /** Where served answers are recorded for the traffic picture (the process's metrics). */
  traffic: { served(s: Served, locality: Locality | undefined): void } | undefined;
  readonly stats: ResponderStats = {
    queries: 0,
    cacheHits: 0,
    truncated: 0,
    rrlSlipped: 0,
    rrlDropped: 0,
    dropped: 0,
    rcodes: {},
    tiers: {},
    kinds: new Map(),
  };

  constructor(opts: ResponderOptions) {
    this.settings = settingsOf(opts.config, opts.addressing);
    this.#rules = nameRules(this.settings.zones);
    this.#router = opts.router;
    this.#rrl = opts.rrl;
    this.#serialBase = opts.serialBase;
  }

  /**
   * New settings (reload): zones, TTLs, addressing and the rest. Nothing answered
   * before is served again: the answer, index and client-locality caches go (the
   * router's locality table may have changed too).
   */
  reconfigure(config: Config, addressing: AddressingView, rrl: ResponseRateLimiter): void {
    this.settings = settingsOf(config, addressing);
    this.#rules = nameRules(this.settings.zones);
    this.#rrl = rrl;
    this.#index = undefined;
    this.#located = new Map();
    this.invalidate();
  }

  /** A new catalog snapshot: answers from now on come from it. */
  setSnapshot(s: Snapshot): void {
    this.#snapshot = s;
    this.#index = undefined;
    this.invalidate();
  }

  /** Health or the catalog moved: nothing cached may be served again. */
  invalidate(): void {
    this.#cache = new Map();
  }

  get serial(): number {
    return (this.#serialBase + (this.#snapshot?.version ?? 0)) >>> 0;
  }

  #input(snapshot: Snapshot): AnswerInput {
    return {
      snapshot,
      index: this.#indexOf(snapshot),
      router: this.#router,
      serial: this.serial,
      settings: this.settings,
    };
  }

  #indexOf(s: Snapshot): NameIndex {
    this.#index ??= buildIndex(s, this.settings.zones, {
      regions: this.settings.addressing.edges,
      nameServers: this.settings.nameServers.map((n) => n.name),
    });
    return this.#index;
  }

  /**
   * The answer to one message, or undefined when nothing should be sent. RRL over UDP
   * only, as Knot's rrl module ("applied to pure UDP only") and BIND's rate-limit: a
   * slipped UDP answer sends the client to TCP, which must then answer in full.
   */
  respond(msg: Uint8Array, client: string, udp: boolean): Buffer | undefined {
    this.stats.queries++;
    const q = scanQuery(msg);
    if (!q || (q.edns && q.edns.version > 0) || q.qclass !== 1 || this.#snapshot === undefined) {
      return this.#slow(msg, client, udp);
    }
    const ecs = q.edns?.ecs;
    const where = this.#locate(ecs ? ecsAddress(ecs) : client, ecs);
    const key = `${q.name}|${q.qtype}|${q.edns ? (ecs ? `e${ecs.family}/${ecs.sourcePrefix}/${ecs.address.join('.')}` : 'e') : 'n'}|${where.key}`;
    let entry = this.#cache.get(key);
    if (entry) this.stats.cacheHits++;
    else {
      entry = this.#entry(q, where, ecs);
      if (this.#cache.size >= CACHE_MAX) this.#cache = new Map();
      this.#cache.set(key, entry);
    }
    const verdict = udp ? this.#rrl.check(client, entry.cls, entry.rrlName) : 'pass';
    if (verdict === 'drop') {
      this.stats.rrlDropped++;
      return undefined;
    }
    let out: Buffer;
    let tier: string | undefined;
    if (verdict === 'slip') {
      this.stats.rrlSlipped++;
      out = entry.truncated ??= entry.build(0, true);
    } else {
      const v = entry.variants.length === 1 ? 0 : entry.next++ % entry.variants.length;
      out = entry.variants[v] ??= entry.build(v, false);
      tier = entry.tiers[v];
      if (udp && out.length > udpLimit(q.edns)) {
        this.stats.truncated++;
        out = entry.truncated ??= entry.build(0, true);
      } else {
        const s = entry.served[v];
        if (s && this.traffic) this.traffic.served(s, where.locality);
      }
    }
    this.#count(entry.rcode, tier, entry.kind);
    return patchResponse(out, msg, q);
  }

  /** `tier` only for answers that carry records: a slip or truncation served no tier. */
  #count(rcode: string, tier: string | undefined, kind: string): void {
    this.stats.rcodes[rcode] = (this.stats.rcodes[rcode] ?? 0) + 1;
    if (tier) this.stats.tiers[tier] = (this.stats.tiers[tier] ?? 0) + 1;
    this.stats.kinds.set(kind, (this.stats.kinds.get(kind) ?? 0) + 1);
  }

  #locate(address: string, ecs: Ecs | undefined): Located {
    const cacheKey = ecs ? `${address}/${ecs.sourcePrefix}` : address;
    let hit = this.#located.get(cacheKey);
    if (hit) return hit;
    const c = this.#router.locate(address);
    hit = {
      locality: c.locality,
      key: localityKey(c.locality),
      scope: c.prefixLength !== undefined && ecs ? Math.min(c.prefixLength, ecs.sourcePrefix) : 0,
    };
    if (this.#located.size >= LOCATE_CACHE_MAX) this.#located.clear();
    this.#located.set(cacheKey, hit);
    return hit;
  }

  #entry(q: ScannedQuery, where: Located, ecs: Ecs | undefined): Entry {
    const question = { name: q.name, qtype: q.qtype, qclass: q.qclass };
    const edns = q.edns ? { ecs, scope: where.scope } : undefined;
    const match = matchZone(q.name, this.#rules);
    const input = this.#input(this.#snapshot!);
    const answerFor = (variant: number): Answer =>
      match
        ? answer({ name: q.name, qtype: q.qtype }, match, where.locality, variant, input)
        : { rcode: rcodeFor('HOST_UNKNOWN'), answers: [], authority: [], additional: [] };
    const first = answerFor(0);
    const answers: (Answer | undefined)[] = [first];
    const tiers: (string | undefined)[] = [first.tier];
    const served: (Served | undefined)[] = [first.served];
    const build = (variant: number, truncated: boolean) => {
      answers[variant] ??= answerFor(variant);
      const a = answers[variant]!;
      tiers[variant] = a.tier;
      served[variant] = a.served;
      return encodeResponse({
        id: 0,
        rd: false,
        question,
        rcode: a.rcode,
        answer: a,
        edns,
        truncated,
      });
    };
    return {
      rcode: first.rcode,
      cls: rrlClass(first),
      // Knot keys positive answers by name and the rest by zone, so a random-name flood is one bucket.
      rrlName:
        first.rcode === 'NOERROR' && first.answers.length > 0 ? q.name : (match?.zone.origin ?? ''),
      tiers,
      served,
      kind: queryKind(q.qtype, nameScheme(match), first.rcode),
      variants: new Array(first.tier ? VARIANTS : 1).fill(undefined),
      build,
      truncated: undefined,
      next: 0,
    };
  }

  /** Everything the fast path leaves: malformed, unusual or uncached-by-design messages. */
  #slow(msg: Uint8Array, client: string, udp: boolean): Buffer | undefined {
    const m = inspectMessage(msg);
    // No header, or a response: never answered (answering responses is how reflection loops start).
    if (!m || m.qr) {
      this.stats.dropped++;
      return undefined;
    }
    const q = m.question;
    // The question goes back as asked, when it was read cleanly.
    const question =
      q && !m.malformed ? { name: q.name, qtype: q.qtype, qclass: q.qclass } : undefined;
    const edns = m.edns ? {} : undefined;
    const reply = (
      rcode: Rcode | 'BADVERS',
      a?: Answer,
      scheme = 'malformed',
    ): Buffer | undefined => {
      const cls: RrlClass = a ? rrlClass(a) : 'error';
      const verdict = udp
        ? this.#rrl.check(
            client,
            cls,
            a && cls === 'positive' && question ? asciiLower(question.name) : '',
          )
        : 'pass';
      if (verdict === 'drop') {
        this.stats.rrlDropped++;
        return undefined;
      }
      const spec = { id: m.id, rd: m.rd, opcode: m.opcode, question, rcode, answer: a, edns };
      let out: Buffer;
      const kind = queryKind(q?.qtype, scheme, rcode);
      if (verdict === 'slip') {
        this.stats.rrlSlipped++;
        this.#count(rcode, undefined, kind);
        out = encodeResponse({ ...spec, truncated: true });
      } else {
        this.#count(rcode, a?.tier, kind);
        out = encodeResponse(spec);
        if (udp && out.length > udpLimit(m.edns)) {
          this.stats.truncated++;
          out = encodeResponse({ ...spec, truncated: true });
        }
      }
      // The asked octets, dots inside labels included: same length, same layout.
      if (question) out.set(msg.subarray(12, q!.nameEnd), 12);
      return out;
    };
    // The rcodes of error conditions come from src/errors.ts's table.
    // A message we cannot read is FORMERR; then the opcode, before the question count:
    // an opcode we do not implement is NOTIMP however many questions it carries
    // (NOTIFY, UPDATE and unassigned ones may carry none).
    if (m.malformed) return reply(rcodeFor('BAD_REQUEST'));
    if (m.opcode !== 0) return reply(rcodeFor('METHOD_NOT_ALLOWED'));
    if (m.qdcount !== 1 || !q) return reply(rcodeFor('BAD_REQUEST'));
    if (m.edns && m.edns.version > 0) return reply(rcodeFor('EDNS_VERSION_UNSUPPORTED'));
    const name = asciiLower(q.name);
    const match = matchZone(name, this.#rules);
    if (!match || (q.qclass !== 1 && q.qclass !== 255) || this.#snapshot === undefined) {
      return reply(rcodeFor('HOST_UNKNOWN'), undefined, nameScheme(match));
    }
    const where = this.#locate(client, undefined);
    const a = answer(
      { name, qtype: q.qtype },
      match,
      where.locality,
      0,
      this.#input(this.#snapshot),
    );
    return reply(a.rcode, a, nameScheme(match));
  }
}
