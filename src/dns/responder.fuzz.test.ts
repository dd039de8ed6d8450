// The Responder fuzzed without sockets, seeded: random byte strings, valid queries
// (our names and others, every qtype that matters, EDNS with and without ECS and
// unknown options) and mutations of those (bit flips, truncation, garbage, counts,
// compression pointers and loops, long labels and names). Whatever comes in,
// respond() neither throws nor stalls, and what goes out is a well-formed response
// to that message: same ID, QR, RD echoed, a known rcode, within the UDP limit
// unless truncated. Responses are checked against a strict parser written here,
// and against dns2's. Where the input is well-formed the rcode, the echoed question
// and the OPT record are checked too; for malformed input the FORMERR the README
// promises is tallied and printed, as the targeted cases below assert it.
import dns2 from 'dns2';
import { describe, expect, it } from 'vitest';
import { clusterStatus } from '../../test/fixtures/catalog.ts';
import { type EndpointSpec, service } from '../../test/fixtures/services.ts';
import type { Endpoint, FederatedService, Snapshot } from '../catalog/model.ts';
import { configSchema } from '../config/schema.ts';
import { HealthStore } from '../health/store.ts';
import { seededRandom } from '../routing/random.ts';
import { Router } from '../routing/router.ts';
import { Responder } from './responder.ts';
import { ResponseRateLimiter } from './rrl.ts';
import { addressingView } from './server.ts';

const { Packet } = dns2;

const SEED = Number(process.env.FEDGATE_FUZZ_SEED ?? 0x5eed_d25);
const CASES = Number(process.env.FEDGATE_FUZZ_CASES ?? 100_000);
/**
 * One respond() call longer than this, and again on each of STALL_TRIES fresh
 * responders, is a stall: work that grows without bound (calls take well under 1 ms),
 * not a busy machine pausing the process once.
 */
const HANG_MS = 250;
const STALL_TRIES = 5;
/**
 * The whole run: past this the test stops (vitest's own limit is 60 s), and passes if
 * it checked MIN_CASES: a loaded machine makes it slower, not wrong.
 */
const BUDGET_MS = 40_000;
const MIN_CASES = 10_000;

// ---------------------------------------------------------------- the world

const config = configSchema.parse({
  federation: { name: 'galaxy', domain: 'example.test' },
  self: { region: 'us-east', zone: 'us-east-a' },
  clusters: [
    { name: 'alpha', kubeconfig: 'alpha.kubeconfig', region: 'us-east' },
    { name: 'beta', kubeconfig: 'beta.kubeconfig', region: 'us-west' },
  ],
  localities: [
    { cidr: '127.198.100.0/24', region: 'us-west', zone: 'us-west-a' },
    { cidr: '127.203.113.0/24', region: 'us-east', zone: 'us-east-b' },
    { cidr: '127.192.2.0/25', region: 'eu-west', zone: 'eu-west-a' },
    { cidr: '::1/128', region: 'us-west', zone: 'us-west-a' },
  ],
  dns: {
    // Large enough that a routed AAAA answer outgrows even the EDNS limit.
    maxAnswers: 48,
    rrl: { enabled: false },
    nameServers: [{ name: 'ns1.example.test', addresses: ['127.192.2.53', '::1'] }],
    // PTR for the headless db's endpoints, IPv4 and (IPv4-mapped) IPv6.
    reverseZones: ['127.in-addr.arpa', 'ip6.arpa'],
    proxyAddresses: [
      { region: 'us-east', zone: 'us-east-a', addresses: ['127.192.2.80', '::ffff:7fc0:250'] },
      { region: 'us-west', addresses: ['127.198.100.80'] },
    ],
  },
});

const EAST_A = { region: 'us-east', zone: 'us-east-a' };
const EAST_B = { region: 'us-east', zone: 'us-east-b' };
const WEST_A = { region: 'us-west', zone: 'us-west-a' };

const many = (n: number, address: (i: number) => string, where: object): EndpointSpec[] =>
  Array.from({ length: n }, (_, i) => ({ ...where, address: address(i) }));

function withHostnames(svc: FederatedService): FederatedService {
  let n = 0;
  return {
    ...svc,
    type: 'Headless',
    clusters: svc.clusters.map((m) => ({
      ...m,
      endpoints: m.endpoints.map((e): Endpoint => ({ ...e, hostname: `db-${n++}` })),
    })),
  };
}

function world(version: number): Snapshot {
  const web = {
    ...service(
      [
        {
          cluster: 'alpha',
          endpoints: [
            { ...EAST_A, address: '127.10.0.1' },
            { ...EAST_A, address: '127.10.0.2' },
            { ...EAST_B, address: '127.10.1.1' },
            { ...EAST_A, address: '::ffff:7f0a:a1' },
            { ...EAST_B, address: '::ffff:7f0a:b1', ready: false },
          ],
        },
        {
          cluster: 'beta',
          weight: 2,
          endpoints: [
            { ...WEST_A, address: '127.11.0.1' },
            { ...WEST_A, address: '127.11.0.2', terminating: true, ready: false },
            { ...WEST_A, address: '::ffff:7f0b:c1' },
          ],
        },
      ],
      'shop/web',
    ),
    ports: [
      { name: 'http', protocol: 'TCP', port: 80 },
      { name: 'dns', protocol: 'UDP', port: 53 },
    ],
  } satisfies FederatedService;
  const big = service(
    [
      {
        cluster: 'alpha',
        endpoints: [
          ...many(60, (i) => `127.13.0.${i}`, EAST_A),
          ...many(60, (i) => `::ffff:7f0d:1${i.toString(16).padStart(2, '0')}`, EAST_A),
        ],
      },
      { cluster: 'beta', endpoints: many(20, (i) => `127.14.0.${i}`, WEST_A) },
    ],
    'shop/big',
  );
  const db = withHostnames(
    service(
      [
        {
          cluster: 'beta',
          endpoints: [
            ...many(30, (i) => `127.12.0.${i}`, WEST_A),
            ...many(30, (i) => `::ffff:7f0c:1${i.toString(16).padStart(2, '0')}`, WEST_A),
          ],
        },
        { cluster: 'alpha', endpoints: many(3, (i) => `127.12.1.${i}`, EAST_A) },
      ],
      'data/db',
    ),
  );
  const edge = {
    ...service(
      [{ cluster: 'alpha', endpoints: [{ ...EAST_A, address: '127.15.0.1' }] }],
      'ops/edge',
    ),
    dnsMode: 'proxy',
  } satisfies FederatedService;
  const lb = service(
    [
      { cluster: 'alpha', endpoints: [{ ...EAST_A, address: '127.16.0.1' }] },
      { cluster: 'beta', endpoints: [{ ...WEST_A, address: '127.16.1.1', ready: false }] },
    ],
    'ops/lb',
  );
  const ingress = {
    ...lb,
    dnsMode: 'ingress',
    clusters: lb.clusters.map((m, i) => ({ ...m, ingress: [{ ip: `127.192.2.${100 + i}` }] })),
  } satisfies FederatedService;
  const empty = service([{ cluster: 'alpha', endpoints: [] }], 'ops/empty');
  const services = new Map<string, FederatedService>(
    [web, big, db, edge, ingress, empty].map((s) => [s.key, s]),
  );
  return {
    version,
    createdAt: 0,
    services,
    clusters: new Map(['alpha', 'beta'].map((c) => [c, clusterStatus(c)])),
  };
}

function responder(version = 1): Responder {
  const router = new Router(
    { ...config.routing, localities: config.localities, self: config.self },
    new HealthStore(),
  );
  const r = new Responder({
    config,
    router,
    rrl: new ResponseRateLimiter(config.dns.rrl),
    addressing: addressingView(config),
    serialBase: 1_000_000,
  });
  r.setSnapshot(world(version));
  return r;
}

const CLIENTS = [
  '127.192.2.1',
  '127.192.2.200',
  '127.198.100.7',
  '127.203.113.9',
  '127.19.9.9',
  '::1',
  '::ffff:127.198.100.7',
  '::ffff:127.192.2.200',
];

// ---------------------------------------------------------------- a strict parser

const T = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, OPT: 41 };
const RC = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 };
const RCODE_NAME = new Map(Object.entries(RC).map(([k, v]) => [v, k]));
const ECS = 8;

interface Question {
  readonly labels: Uint8Array[];
  readonly qtype: number;
  readonly qclass: number;
}
interface Record_ {
  readonly owner: Uint8Array[];
  readonly type: number;
  readonly cls: number;
  readonly ttl: number;
  readonly rdata: Uint8Array;
}
interface Opt {
  readonly payload: number;
  readonly extRcode: number;
  readonly version: number;
  readonly options: { code: number; data: Uint8Array }[];
}
interface Message {
  readonly id: number;
  readonly qr: boolean;
  readonly opcode: number;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly rd: boolean;
  readonly ra: boolean;
  /** The header's four bits, with the OPT's extended bits above them. */
  readonly rcode: number;
  readonly questions: Question[];
  readonly answers: Record_[];
  readonly authority: Record_[];
  readonly additional: Record_[];
  readonly opt: Opt | undefined;
}

class Malformed extends Error {}
const bad = (why: string): never => {
  throw new Malformed(why);
};
const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | u16(b, o + 2)) >>> 0;

/** A name, decompressed: only backward pointers, past the header, at most 255 octets. */
function readName(b: Uint8Array, start: number, limit = b.length) {
  const labels: Uint8Array[] = [];
  let o = start;
  let end = -1;
  let size = 1;
  for (let hops = 0; ; ) {
    if (o >= (end < 0 ? limit : b.length)) bad('truncated name');
    const len = b[o]!;
    if ((len & 0xc0) === 0xc0) {
      if (o + 1 >= (end < 0 ? limit : b.length)) bad('truncated name');
      const target = ((len & 0x3f) << 8) | b[o + 1]!;
      if (end < 0) end = o + 2;
      if (target < 12) bad('pointer into the header');
      if (target >= o) bad('forward pointer');
      if (++hops > 127) bad('pointer loop');
      o = target;
      continue;
    }
    if (len & 0xc0) bad('label type 01/10');
    o++;
    if (len === 0) break;
    if (o + len > (end < 0 ? limit : b.length)) bad('truncated name');
    size += len + 1;
    if (size > 255) bad('name over 255 octets');
    labels.push(b.subarray(o, o + len));
    o += len;
  }
  return { labels, end: end < 0 ? o : end, compressed: end >= 0 };
}

function checkRdata(b: Uint8Array, type: number, start: number, end: number): void {
  const name = (o: number) => {
    const n = readName(b, o, end);
    return n.end;
  };
  const exact = (o: number) => o === end || bad(`rdata of type ${type} has the wrong length`);
  switch (type) {
    case T.A:
      return void exact(start + 4);
    case T.AAAA:
      return void exact(start + 16);
    case T.NS:
    case T.CNAME:
    case T.PTR:
      return void exact(name(start));
    case T.SOA:
      return void exact(name(name(start)) + 20);
    case T.SRV:
      return void exact(name(start + 6));
    case T.TXT: {
      let o = start;
      if (o === end) bad('empty TXT');
      while (o < end) o += 1 + b[o]!;
      return void exact(o);
    }
    case T.OPT: {
      let o = start;
      while (o < end) {
        if (o + 4 > end) bad('OPT option header overruns');
        o += 4 + u16(b, o + 2);
      }
      return void exact(o);
    }
  }
}

function readRecord(b: Uint8Array, start: number) {
  const { labels, end } = readName(b, start);
  if (end + 10 > b.length) bad('truncated record');
  const type = u16(b, end);
  const rdlen = u16(b, end + 8);
  const rd = end + 10;
  if (rd + rdlen > b.length) bad('rdata overruns the message');
  checkRdata(b, type, rd, rd + rdlen);
  const rr: Record_ = {
    owner: labels,
    type,
    cls: u16(b, end + 2),
    ttl: u32(b, end + 4),
    rdata: b.subarray(rd, rd + rdlen),
  };
  return { rr, end: rd + rdlen };
}

function parseStrict(b: Uint8Array): Message | string {
  try {
    if (b.length < 12) bad('shorter than a header');
    let o = 12;
    const questions: Question[] = [];
    for (let i = 0; i < u16(b, 4); i++) {
      const n = readName(b, o);
      if (n.end + 4 > b.length) bad('truncated question');
      // Nothing precedes the first name for a pointer to name (a pointer into its own
      // labels, onto a byte that happens to read as the root, is no earlier name).
      if (i === 0 && n.compressed) bad('pointer in the first name');
      questions.push({ labels: n.labels, qtype: u16(b, n.end), qclass: u16(b, n.end + 2) });
      o = n.end + 4;
    }
    const sections: Record_[][] = [];
    for (const at of [6, 8, 10]) {
      const rrs: Record_[] = [];
      for (let i = 0; i < u16(b, at); i++) {
        const r = readRecord(b, o);
        rrs.push(r.rr);
        o = r.end;
      }
      sections.push(rrs);
    }
    if (o !== b.length) bad('trailing bytes');
    const [answers, authority, additional] = sections as [Record_[], Record_[], Record_[]];
    if ([...answers, ...authority].some((r) => r.type === T.OPT)) bad('OPT outside additional');
    const opts = additional.filter((r) => r.type === T.OPT);
    if (opts.length > 1) bad('more than one OPT');
    let opt: Opt | undefined;
    if (opts[0]) {
      const r = opts[0];
      if (r.owner.length > 0) bad('OPT owner not the root');
      const options: Opt['options'] = [];
      for (let p = 0; p < r.rdata.length; p += 4 + u16(r.rdata, p + 2)) {
        options.push({
          code: u16(r.rdata, p),
          data: r.rdata.subarray(p + 4, p + 4 + u16(r.rdata, p + 2)),
        });
      }
      opt = { payload: r.cls, extRcode: r.ttl >>> 24, version: (r.ttl >>> 16) & 0xff, options };
    }
    return {
      id: u16(b, 0),
      qr: (b[2]! & 0x80) !== 0,
      opcode: (b[2]! >> 3) & 0xf,
      aa: (b[2]! & 4) !== 0,
      tc: (b[2]! & 2) !== 0,
      rd: (b[2]! & 1) !== 0,
      ra: (b[3]! & 0x80) !== 0,
      rcode: (b[3]! & 0xf) | ((opt?.extRcode ?? 0) << 4),
      questions,
      answers,
      authority,
      additional,
      opt,
    };
  } catch (e) {
    if (e instanceof Malformed) return e.message;
    throw e;
  }
}

/** RFC 7871 §6 and §7.1.1: what is wrong with a query's ECS option, if anything. */
function ecsProblem(opt: Opt): string | undefined {
  const ecs = opt.options.filter((x) => x.code === ECS);
  if (ecs.length > 1) return 'ECS twice';
  const d = ecs[0]?.data;
  if (!d) return undefined;
  if (d.length < 4) return 'ECS shorter than 4';
  const family = u16(d, 0);
  const source = d[2]!;
  if (family !== 1 && family !== 2) return 'ECS family unknown';
  if (source > (family === 1 ? 32 : 128)) return 'ECS source prefix too long';
  if (d.length - 4 !== Math.ceil(source / 8)) return 'ECS address length';
  if (d[3] !== 0) return 'ECS scope in a query';
  const last = d[d.length - 1];
  if (source % 8 !== 0 && last !== undefined && (last & (0xff >> (source % 8))) !== 0)
    return 'ECS address bits past the prefix';
  return undefined;
}

const ZONES = [
  ['clusterset', 'local'],
  ['example', 'test'],
  ['127', 'in-addr', 'arpa'],
  ['ip6', 'arpa'],
].map((z) => z.map((l) => Buffer.from(l)));

function lower(label: Uint8Array): Buffer {
  return Buffer.from(label.map((c) => (c >= 65 && c <= 90 ? c + 32 : c)));
}

function inOurZones(labels: readonly Uint8Array[]): boolean {
  return ZONES.some(
    (z) =>
      labels.length >= z.length &&
      z.every((l, i) => lower(labels[labels.length - z.length + i]!).equals(l)),
  );
}

const sameLabels = (a: readonly Uint8Array[], b: readonly Uint8Array[]) =>
  a.length === b.length && a.every((l, i) => Buffer.from(l).equals(b[i]!));

const showName = (labels: readonly Uint8Array[]) =>
  labels.map((l) => Buffer.from(l).toString('latin1')).join('|');

/** What a well-formed query (QR=0) must get, by the README. */
function expectedRcodes(q: Message): number[] {
  const q0 = q.questions[0];
  if (q.opcode !== 0) return q.questions.length === 1 ? [RC.NOTIMP] : [RC.NOTIMP, RC.FORMERR];
  if (!q0 || q.questions.length !== 1) return [RC.FORMERR];
  if (q.opt && q.opt.version > 0) return [RC.BADVERS];
  if (!inOurZones(q0.labels) || (q0.qclass !== 1 && q0.qclass !== 255)) return [RC.REFUSED];
  if (q0.qtype === 251 || q0.qtype === 252) return [RC.REFUSED];
  return [RC.NOERROR, RC.NXDOMAIN];
}

const udpLimit = (q: Message) => (q.opt ? Math.max(512, Math.min(q.opt.payload, 1232)) : 512);

// ---------------------------------------------------------------- generators

type Rand = () => number;

function generators(rand: Rand) {
  const int = (n: number) => Math.floor(rand() * n);
  const chance = (p: number) => rand() < p;
  const pick = <X>(xs: readonly X[]): X => xs[int(xs.length)]!;
  const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));

  const HOST = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
  const label = (): Uint8Array => {
    const n = chance(0.9) ? 1 + int(12) : 1 + int(63);
    return Uint8Array.from({ length: n }, () =>
      chance(0.9) ? HOST.charCodeAt(int(HOST.length)) : int(256),
    );
  };
  const OURS = [
    'web.shop.svc.clusterset.local',
    'big.shop.svc.clusterset.local',
    'db.data.svc.clusterset.local',
    'edge.ops.svc.clusterset.local',
    'lb.ops.svc.clusterset.local',
    'empty.ops.svc.clusterset.local',
    '_http._tcp.web.shop.svc.clusterset.local',
    '_dns._udp.web.shop.svc.clusterset.local',
    '_http._udp.web.shop.svc.clusterset.local',
    '_tcp.web.shop.svc.clusterset.local',
    'db-3.beta.db.data.svc.clusterset.local',
    'db-81.alpha.db.data.svc.clusterset.local',
    'db-99.beta.db.data.svc.clusterset.local',
    'beta.db.data.svc.clusterset.local',
    'dns-version.clusterset.local',
    'clusterset.local',
    'svc.clusterset.local',
    'shop.svc.clusterset.local',
    'nope.shop.svc.clusterset.local',
    'a.b.c.d.e.shop.svc.clusterset.local',
    'web.shop.galaxy.svc.example.test',
    'web.shop.galaxy.svc.us-west.example.test',
    'web.shop.galaxy.svc.us-east-a.us-east.example.test',
    'web.shop.galaxy.svc.us-east-b.us-east.example.test',
    'web.shop.galaxy.svc.us-west-b.us-west.example.test',
    'web.shop.galaxy.svc.eu-west.example.test',
    'big.shop.galaxy.svc.us-east.example.test',
    'lb.ops.galaxy.svc.us-west.example.test',
    'edge.ops.galaxy.svc.us-west-a.us-west.example.test',
    'db.data.galaxy.svc.example.test',
    'web.shop.other.svc.example.test',
    'shop.galaxy.svc.example.test',
    'galaxy.svc.example.test',
    'example.test',
    'ns1.example.test',
    'ns.clusterset.local',
    '0.0.12.127.in-addr.arpa',
    '2.1.12.127.in-addr.arpa',
    '1.0.10.127.in-addr.arpa',
    '12.127.in-addr.arpa',
    '127.in-addr.arpa',
    '0.0.1.0.c.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa',
    'f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa',
    'ip6.arpa',
  ];
  const OTHERS = [
    '',
    'com',
    'local',
    'example.com',
    'clusterset.localx',
    'xclusterset.local',
    'test',
    'example.test.evil.com',
    'web.shop.svc.cluster.local',
    '1.0.5.in-addr.arpa',
    'in-addr.arpa',
  ];
  const labelsOf = (name: string) =>
    name === '' ? [] : name.split('.').map((l) => Buffer.from(l));
  const name = (): Uint8Array[] => {
    const r = rand();
    let labels: Uint8Array[];
    if (r < 0.6) labels = labelsOf(pick(OURS));
    else if (r < 0.72) labels = labelsOf(pick(OTHERS));
    else if (r < 0.88) labels = [...Array.from({ length: int(4) }, label), ...pick(ZONES)];
    else labels = Array.from({ length: int(5) }, label);
    if (chance(0.1)) labels = [...Array.from({ length: 1 + int(2) }, label), ...labels];
    if (chance(0.4)) {
      labels = labels.map((l) => l.map((c) => (c >= 97 && c <= 122 && chance(0.5) ? c - 32 : c)));
    }
    return labels;
  };
  /** A name at the limit: 255 octets on the wire, or one more. */
  const longName = (over: boolean): Uint8Array[] => {
    const out = [63, 63, 63].map((n) => new Uint8Array(n).fill(97));
    const rest = 255 - 1 - 3 * 64 - 1 + (over ? 1 : 0);
    out.push(new Uint8Array(rest).fill(98));
    return out;
  };

  const QTYPES = [1, 1, 1, 28, 28, 33, 33, 16, 6, 2, 5, 255, 252, 251, 12, 15, 41, 0, 65535];
  const qtype = () => (chance(0.05) ? int(65536) : pick(QTYPES));
  const qclass = () => (chance(0.9) ? 1 : pick([3, 4, 254, 255, 0, int(65536)]));

  const ECS_V4 = [
    [127, 198, 100, 7],
    [127, 203, 113, 9],
    [127, 192, 2, 1],
    [127, 11, 2, 3],
  ];
  const ECS_V6 = [
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 198, 100],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 203, 113],
  ];
  const ecs = (): Uint8Array => {
    const family = chance(0.6) ? 1 : 2;
    const max = family === 1 ? 32 : 128;
    const source = chance(0.5)
      ? pick(family === 1 ? [0, 8, 16, 24, 32] : [0, 32, 48, 56, 64, 128])
      : int(max + 1);
    const base = [...pick(family === 1 ? ECS_V4 : ECS_V6)];
    while (base.length < max / 8) base.push(int(256));
    const n = Math.ceil(source / 8);
    const address = base.slice(0, n);
    if (source % 8 !== 0) address[n - 1]! &= (0xff << (8 - (source % 8))) & 0xff;
    let d = [0, family, source, 0, ...address];
    // Half of these are wrong in one way or another.
    if (chance(0.5)) {
      switch (int(7)) {
        case 0:
          d = d.slice(0, int(4));
          break;
        case 1:
          d.push(int(256));
          break;
        case 2:
          d.pop();
          break;
        case 3:
          d[2] = max + 1 + int(255 - max);
          break;
        case 4:
          d[1] = pick([0, 3, 255]);
          break;
        case 5:
          d[3] = 1 + int(255);
          break;
        default:
          if (d.length > 4) d[d.length - 1]! |= 1;
      }
    }
    return Uint8Array.from(d);
  };
  const option = (): [number, Uint8Array] => {
    switch (int(6)) {
      case 0:
      case 1:
        return [ECS, ecs()];
      case 2:
        return [10, randomBytes(pick([8, 16, 24, 40]))];
      case 3:
        return [12, new Uint8Array(int(100))];
      case 4:
        return [3, new Uint8Array(0)];
      default:
        return [int(65536), randomBytes(int(50))];
    }
  };

  interface Query {
    readonly bytes: Uint8Array;
    readonly nameEnd: number;
    /** Where the OPT record starts, or -1. */
    readonly optAt: number;
  }

  const wireName = (labels: readonly Uint8Array[]) =>
    Buffer.concat([
      ...labels.flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]),
      Buffer.from([0]),
    ]);

  const optRecord = (): Buffer => {
    const options = Array.from({ length: chance(0.4) ? 0 : 1 + int(3) }, option);
    const rdata = Buffer.concat(
      options.map(([code, data]) =>
        Buffer.concat([
          Buffer.from([code >> 8, code & 255, data.length >> 8, data.length & 255]),
          data,
        ]),
      ),
    );
    const payload = chance(0.8)
      ? pick([0, 1, 511, 512, 513, 700, 1000, 1200, 1232, 1233, 1400, 4096, 65535])
      : int(65536);
    const version = chance(0.85) ? 0 : 1 + int(255);
    const ext = chance(0.95) ? 0 : int(256);
    const flags = chance(0.5) ? 0x80 : 0;
    const head = Buffer.from([0, 0, 41, payload >> 8, payload & 255, ext, version, flags, 0]);
    return Buffer.concat([head, Buffer.from([rdata.length >> 8, rdata.length & 255]), rdata]);
  };

  const valid = (): Query => {
    const id = int(65536);
    let b2 = chance(0.5) ? 1 : 0; // RD
    if (chance(0.05)) b2 |= int(16) << 3; // opcode
    if (chance(0.03)) b2 |= 0x80; // QR
    if (chance(0.1)) b2 |= int(8) & 6; // AA, TC
    const b3 = chance(0.1) ? int(256) : 0;
    const withOpt = chance(0.6);
    const n = chance(0.01) ? longName(chance(0.5)) : name();
    const q = Buffer.concat([wireName(n), Buffer.from([0, 0, 0, 0])]);
    const t = qtype();
    const c = qclass();
    q.writeUInt16BE(t, q.length - 4);
    q.writeUInt16BE(c, q.length - 2);
    const head = Buffer.from([id >> 8, id & 255, b2, b3, 0, 1, 0, 0, 0, 0, 0, withOpt ? 1 : 0]);
    const opt = withOpt ? optRecord() : Buffer.alloc(0);
    const bytes = Buffer.concat([head, q, opt]);
    return { bytes, nameEnd: 12 + q.length - 4, optAt: withOpt ? 12 + q.length : -1 };
  };

  const setCount = (b: Uint8Array, at: number, v: number) => {
    b[at] = v >> 8;
    b[at + 1] = v & 255;
  };

  /** One mutation of a query (which may already be mutated). */
  const mutate = (q: Query): Query => {
    let b = Uint8Array.from(q.bytes);
    let { nameEnd, optAt } = q;
    const question = () => b.subarray(12, nameEnd);
    const tail = () => b.subarray(nameEnd);
    const replaceName = (wire: Uint8Array) => {
      b = Buffer.concat([b.subarray(0, 12), wire, tail()]);
      const shift = wire.length - (nameEnd - 12);
      nameEnd += shift;
      if (optAt >= 0) optAt += shift;
    };
    switch (int(16)) {
      case 0: // flip bits
        for (let i = 1 + int(4); i > 0 && b.length > 0; i--) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1: // overwrite a byte
        if (b.length > 0) b[int(b.length)] = int(256);
        break;
      case 2: // truncate
        b = b.slice(0, int(b.length));
        break;
      case 3: // garbage after
        b = Buffer.concat([b, randomBytes(1 + int(64))]);
        break;
      case 4: // a count
        setCount(b, pick([4, 6, 8, 10]), pick([0, 1, 2, 3, 255, 65535, int(65536)]));
        break;
      case 5: {
        // compression pointers in the question
        const len = b.length;
        const shapes = [
          [0xc0, 12], // to itself
          [0x03, 97, 98, 99, 0xc0, 12], // a label, then back to the start: a loop
          [0xc0, 14, 0xc0, 12], // two pointers at each other
          [0xc0, int(12)], // into the header
          [0xc0 | ((len >> 8) & 0x3f), len & 255], // just past the end
          [0xc0 | int(64), int(256)], // anywhere
          [0x01, 97, 0xc0, 13], // into the middle of a label
        ];
        replaceName(Uint8Array.from(pick(shapes)));
        break;
      }
      case 6: {
        // a forward pointer to a copy of the name after everything
        const copy = Uint8Array.from(question());
        const at = b.length + 2;
        replaceName(Uint8Array.from([0xc0 | ((at >> 8) & 0x3f), at & 255]));
        b = Buffer.concat([b, copy]);
        break;
      }
      case 7: // a label length over 63 (or of type 01/10)
        if (nameEnd > 13) b[12] = 64 + int(128);
        break;
      case 8: // a name over 255 octets, or right at the limit
        replaceName(wireName(longName(chance(0.7))));
        break;
      case 9: // the root, or nothing at all
        if (chance(0.5)) replaceName(Uint8Array.from([0]));
        else b = b.slice(0, int(13));
        break;
      case 10: {
        // a second OPT, an OPT elsewhere, an OPT with a name
        const opt = optRecord();
        const shape = int(3);
        if (shape === 0) {
          b = Buffer.concat([b, opt]);
          setCount(b, 10, u16(b, 10) + 1);
        } else if (shape === 1 && optAt >= 0) {
          setCount(b, 6, 1);
          setCount(b, 10, 0);
        } else {
          const named = Buffer.concat([Buffer.from([1, 120]), opt]);
          b = Buffer.concat([optAt >= 0 ? b.subarray(0, optAt) : b, named]);
          setCount(b, 10, 1);
        }
        break;
      }
      case 11: // a second question
        b = Buffer.concat([
          b.subarray(0, nameEnd + 4),
          question(),
          b.subarray(nameEnd, nameEnd + 4),
          b.subarray(nameEnd + 4),
        ]);
        setCount(b, 4, 2);
        break;
      case 12: {
        // insert or delete a byte
        const at = int(b.length + 1);
        b = chance(0.5)
          ? Buffer.concat([b.subarray(0, at), Uint8Array.of(int(256)), b.subarray(at)])
          : Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        break;
      }
      case 13: // opcode, QR, or the whole flags
        if (b.length > 3) {
          b[2] = chance(0.5) ? (b[2]! & 0x87) | (int(16) << 3) : int(256);
          if (chance(0.3)) b[3] = int(256);
        }
        break;
      case 14: {
        // a label character that is no host name character (a dot, a NUL, high bytes)
        if (nameEnd > 13) {
          const at = 13 + int(Math.max(1, nameEnd - 13));
          if (at < nameEnd && b[at]! >= 32) b[at] = pick([46, 0, 32, 42, 0x80, 0xc0, 0xff]);
        }
        break;
      }
      default: {
        // an answer record in the query
        const rr = Buffer.concat([
          Uint8Array.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]),
          randomBytes(4),
        ]);
        const at = optAt >= 0 ? optAt : b.length;
        b = Buffer.concat([b.subarray(0, at), rr, b.subarray(at)]);
        if (optAt >= 0) optAt += rr.length;
        if (b.length >= 8) setCount(b, 6, u16(b, 6) + 1);
      }
    }
    return { bytes: b, nameEnd: Math.min(nameEnd, b.length), optAt: optAt < b.length ? optAt : -1 };
  };

  const mutated = (): Query => {
    let q = valid();
    for (let i = 1 + int(3); i > 0; i--) q = mutate(q);
    return q;
  };

  const random = (): Uint8Array => {
    const b = randomBytes(chance(0.4) ? int(41) : int(601));
    // Half keep the counts small, so the parse goes past the header.
    if (chance(0.5) && b.length >= 12) {
      for (const at of [4, 6, 8, 10]) setCount(b, at, chance(0.7) ? int(2) : int(4));
      b[2]! &= 0x7f;
    }
    return b;
  };

  return { valid, mutated, random, int, chance, pick };
}

// ---------------------------------------------------------------- the run

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

class Findings {
  readonly #byKind = new Map<string, { count: number; examples: string[] }>();
  add(kind: string, input: Uint8Array, detail = ''): void {
    let f = this.#byKind.get(kind);
    if (!f) {
      f = { count: 0, examples: [] };
      this.#byKind.set(kind, f);
    }
    f.count++;
    if (f.examples.length < 3) f.examples.push(`${hex(input)}${detail ? `  (${detail})` : ''}`);
  }
  count(kind: string): number {
    return this.#byKind.get(kind)?.count ?? 0;
  }
  get size(): number {
    return this.#byKind.size;
  }
  report(): string {
    return [...this.#byKind]
      .sort((a, b) => b[1].count - a[1].count)
      .map(([k, f]) => `${k}: ${f.count}\n${f.examples.map((e) => `    ${e}`).join('\n')}`)
      .join('\n');
  }
}

function timed(r: Responder, msg: Uint8Array, client: string, udp: boolean) {
  const t0 = performance.now();
  let out: Buffer | undefined;
  let error: unknown;
  try {
    out = r.respond(msg, client, udp);
  } catch (e) {
    error = e;
  }
  return { out, error, ms: performance.now() - t0 };
}

/** Whether an SRV record's target is compressed (RFC 2782 and RFC 3597 §4 say it must not be). */
function srvCompressed(rdata: Uint8Array): boolean {
  for (let o = 6; o < rdata.length && rdata[o] !== 0; o += 1 + rdata[o]!) {
    if ((rdata[o]! & 0xc0) === 0xc0) return true;
  }
  return false;
}

const STALL = 'stalls';
const TIME_BUCKETS = [0.1, 1, 5, 10, HANG_MS, Number.POSITIVE_INFINITY];

describe('Responder under fuzzing', () => {
  it(`answers ${CASES} seeded random, valid and mutated messages without throwing or stalling`, () => {
    const g = generators(seededRandom(SEED));
    const r = responder();
    let version = 1;
    const violations = new Findings();
    const lenient = new Findings();
    const outcomes: Record<string, Record<string, number>> = { random: {}, valid: {}, mutated: {} };
    const times = new Array<number>(TIME_BUCKETS.length).fill(0);
    /** What strictly malformed queries (QR=0, a header) got. */
    const malformed: Record<string, number> = {};
    let maxMs = 0;
    let maxInput = '';
    let truncated = 0;
    let done = 0;
    let stopped = '';
    let budgetSpent = '';
    const start = performance.now();

    for (let i = 0; i < CASES; i++) {
      if (performance.now() - start > BUDGET_MS) {
        budgetSpent = `over the ${BUDGET_MS} ms budget after ${i} of ${CASES} messages`;
        break;
      }
      if (violations.count(STALL) >= 3) {
        stopped = `stopped after 3 stalls, at ${i} of ${CASES} messages`;
        break;
      }
      // A new snapshot now and then: the caches are dropped and rebuilt mid-run.
      if (i > 0 && i % 25_000 === 0) r.setSnapshot(world(++version));
      const roll = g.int(100);
      const kind = roll < 25 ? 'random' : roll < 60 ? 'valid' : 'mutated';
      const msg =
        kind === 'random' ? g.random() : (kind === 'valid' ? g.valid() : g.mutated()).bytes;
      const client = g.pick(CLIENTS);
      const udp = g.chance(0.7);
      const outcome = (k: string) => {
        outcomes[kind]![k] = (outcomes[kind]![k] ?? 0) + 1;
      };

      const { out, error, ms } = timed(r, msg, client, udp);
      done++;
      times[TIME_BUCKETS.findIndex((b) => ms <= b)]!++;
      if (ms > maxMs) {
        maxMs = ms;
        maxInput = `${kind}, ${msg.length} bytes: ${hex(msg).slice(0, 64)}…`;
      }
      if (error !== undefined) {
        const e = error as Error;
        violations.add(`throws ${e.name}: ${e.message}`, msg, e.stack?.split('\n')[1]?.trim());
        outcome('threw');
        continue;
      }
      if (ms > HANG_MS) {
        // Only a deterministic stall counts: the same message again, on fresh responders.
        let again = ms;
        for (let t = 0; t < STALL_TRIES && again > HANG_MS; t++) {
          again = Math.min(again, timed(responder(), msg, client, udp).ms);
        }
        if (again > HANG_MS) violations.add(STALL, msg, `${again.toFixed(0)} ms`);
      }
      const q = parseStrict(msg);
      const qr = msg.length >= 3 && (msg[2]! & 0x80) !== 0;
      if (out === undefined) {
        outcome('dropped');
        if (typeof q === 'string' && msg.length >= 12 && !qr)
          malformed.dropped = (malformed.dropped ?? 0) + 1;
        if (typeof q !== 'string' && !q.qr)
          violations.add('a well-formed query goes unanswered', msg);
        continue;
      }
      if (!Buffer.isBuffer(out)) {
        violations.add('returns something other than a Buffer', msg);
        continue;
      }
      if (msg.length < 12) violations.add('answers a message shorter than a header', msg);
      if (qr) violations.add('answers a response (QR=1)', msg, `sent ${hex(out).slice(0, 24)}`);
      if (out.length < 12) {
        violations.add('response shorter than a header', msg, hex(out));
        continue;
      }
      try {
        Packet.parse(out);
      } catch (e) {
        violations.add(`dns2 cannot parse the response: ${(e as Error).message}`, msg, hex(out));
      }
      const a = parseStrict(out);
      if (typeof a === 'string') {
        violations.add(`malformed response: ${a}`, msg, hex(out));
        continue;
      }
      const rcodeName = RCODE_NAME.get(a.rcode) ?? `rcode ${a.rcode}`;
      outcome(rcodeName);
      if (a.tc) truncated++;

      // Every response.
      if (!a.qr) violations.add('response without QR', msg);
      if (a.id !== u16(msg, 0)) violations.add('response ID differs', msg);
      if (a.rd !== ((msg[2]! & 1) === 1)) violations.add('RD not echoed', msg);
      if (a.ra) violations.add('RA set', msg);
      if (![0, 1, 3, 4, 5, 16].includes(a.rcode)) violations.add(`rcode ${rcodeName}`, msg);
      if (a.rcode === RC.BADVERS && !a.opt) violations.add('BADVERS without OPT', msg);
      if ((a.rcode === RC.NOERROR || a.rcode === RC.NXDOMAIN) && !a.aa)
        violations.add('authoritative answer without AA', msg);
      if (a.questions.length > 1) violations.add('more than one question in a response', msg);
      if (udp && out.length > (a.opt ? 1232 : 512))
        violations.add('UDP response over 1232 (EDNS) or 512 bytes', msg, `${out.length}`);
      if (!udp && out.length > 65_535) violations.add('TCP response over 65,535 bytes', msg);
      if (a.tc) {
        if (!udp) violations.add('TC over TCP', msg);
        if (a.answers.length + a.authority.length > 0) violations.add('TC with records', msg);
        // Truncated only when the whole answer (some variant of it) would not have fit.
        const limit = typeof q === 'string' || !a.opt ? 512 : udpLimit(q);
        let whole = 0;
        for (let v = 0; v < 10; v++)
          whole = Math.max(whole, r.respond(msg, client, false)?.length ?? 0);
        if (whole <= limit)
          violations.add('TC though the answer fits', msg, `${whole} <= ${limit}`);
      }
      if (a.answers.some((rr) => rr.type === T.SRV && srvCompressed(rr.rdata)))
        lenient.add('SRV target compressed (RFC 2782, RFC 3597 §4)', msg);

      if (typeof q === 'string') {
        // Malformed, strictly read: the README promises FORMERR.
        malformed[rcodeName] = (malformed[rcodeName] ?? 0) + 1;
        if (a.rcode !== RC.FORMERR) lenient.add(`malformed (${q}), not FORMERR`, msg, rcodeName);
        continue;
      }
      const ecsBad = q.opt ? ecsProblem(q.opt) : undefined;
      if (ecsBad) {
        // RFC 7871 §7.1.1: FORMERR.
        if (a.rcode !== RC.FORMERR) lenient.add(`${ecsBad}, not FORMERR`, msg, rcodeName);
        continue;
      }
      // Well-formed: the rcode, the question and the OPT record follow from the query.
      const want = expectedRcodes(q);
      const q0 = q.questions[0];
      const a0 = a.questions[0];
      if (!want.includes(a.rcode)) {
        const wanted = want.map((c) => RCODE_NAME.get(c)).join('|');
        violations.add(
          `well-formed query answered ${rcodeName}, not ${wanted}`,
          msg,
          q0 ? showName(q0.labels) : '',
        );
      }
      if (q.questions.length === 1 && q0) {
        if (!a0) violations.add('question not echoed', msg);
        else if (
          !sameLabels(q0.labels, a0.labels) ||
          q0.qtype !== a0.qtype ||
          q0.qclass !== a0.qclass
        )
          violations.add(
            'a different question in the response',
            msg,
            `${showName(q0.labels)} -> ${showName(a0.labels)}`,
          );
      }
      if (q.opt && !a.opt) violations.add('EDNS query answered without OPT', msg);
      if (!q.opt && a.opt) violations.add('OPT in the answer to a plain query', msg);
      if (a.opt && a.opt.payload !== 1232)
        violations.add('OPT payload not 1232', msg, `${a.opt.payload}`);
      if (udp && out.length > udpLimit(q))
        violations.add(
          "UDP response over the client's limit",
          msg,
          `${out.length} > ${udpLimit(q)}`,
        );
      const qEcs = q.opt?.options.find((o) => o.code === ECS);
      if (qEcs && a.opt && a.rcode !== RC.FORMERR) {
        const aEcs = a.opt.options.find((o) => o.code === ECS);
        const same = (x: Uint8Array, y: Uint8Array) => Buffer.from(x).equals(Buffer.from(y));
        if (!aEcs) lenient.add('ECS not echoed', msg, rcodeName);
        else if (
          !same(aEcs.data.subarray(0, 3), qEcs.data.subarray(0, 3)) ||
          !same(aEcs.data.subarray(4), qEcs.data.subarray(4)) ||
          aEcs.data[3]! > aEcs.data[2]!
        )
          violations.add('ECS echoed wrongly', msg, hex(aEcs.data));
      }
      if (q.opcode !== 0 && a.opcode !== q.opcode)
        lenient.add('opcode not copied into the response (RFC 1035 §4.1.1)', msg, rcodeName);
    }

    const seconds = (performance.now() - start) / 1000;
    const indent = (s: string) => s.replace(/^/gm, '    ');
    console.log(
      [
        `responder fuzz: seed ${SEED}, ${done} messages in ${seconds.toFixed(1)} s (${Math.round(done / seconds)}/s)${stopped ? `; ${stopped}` : ''}${budgetSpent ? `; ${budgetSpent}` : ''}`,
        `  outcomes by kind: ${JSON.stringify(outcomes)}`,
        `  strictly malformed queries (a header, QR=0) got: ${JSON.stringify(malformed)}`,
        `  truncated (TC=1): ${truncated}; fast-path cache hits: ${r.stats.cacheHits}; tiers: ${JSON.stringify(r.stats.tiers)}`,
        `  call times (ms, upper bounds): ${TIME_BUCKETS.map((b, i) => `≤${b}: ${times[i]}`).join(', ')}`,
        `  slowest call: ${maxMs.toFixed(2)} ms (${maxInput})`,
        lenient.size > 0
          ? `  lenient, not failing (README: malformed → FORMERR; RFC nits):\n${indent(lenient.report())}`
          : '',
        violations.size > 0 ? `  VIOLATIONS:\n${indent(violations.report())}` : '',
      ]
        .filter(Boolean)
        .join('\n'),
    );
    expect(violations.report()).toBe('');
    expect(stopped).toBe('');
    expect(done, budgetSpent).toBeGreaterThanOrEqual(Math.min(CASES, MIN_CASES));
  });
});

// ---------------------------------------------------------------- hand-made messages

const wire = (name: string | Uint8Array[]) =>
  Buffer.concat([
    ...(typeof name === 'string'
      ? name
          .split('.')
          .filter(Boolean)
          .map((l) => Buffer.from(l))
      : name
    ).flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]),
    Buffer.from([0]),
  ]);

/** An OPT record: payload, the TTL field (extended rcode, version, DO), options as hex. */
function opt(payload: number, ttl: number, options: [number, string][] = []): Buffer {
  const rdata = Buffer.concat(
    options.map(([code, data]) => {
      const d = Buffer.from(data, 'hex');
      return Buffer.concat([
        Buffer.from([code >> 8, code & 255, d.length >> 8, d.length & 255]),
        d,
      ]);
    }),
  );
  const o = Buffer.alloc(11);
  o.writeUInt16BE(41, 1);
  o.writeUInt16BE(payload, 3);
  o.writeUInt32BE(ttl >>> 0, 5);
  o.writeUInt16BE(rdata.length, 9);
  return Buffer.concat([o, rdata]);
}

/** A query, ID 0xbeef, RD set; `extra` goes after the question, counted as additional records. */
function query(
  name: string | Uint8Array[],
  o: { qtype?: number; qclass?: number; extra?: Buffer; arcount?: number } = {},
): Buffer {
  const h = Buffer.from('beef01000001000000000000', 'hex');
  h.writeUInt16BE(o.arcount ?? (o.extra ? 1 : 0), 10);
  const t = Buffer.alloc(4);
  t.writeUInt16BE(o.qtype ?? 1);
  t.writeUInt16BE(o.qclass ?? 1, 2);
  return Buffer.concat([h, wire(name), t, o.extra ?? Buffer.alloc(0)]);
}

const WEB = 'web.shop.svc.clusterset.local';
const COOKIE = '0102030405060708';
const ECS_V4_24 = '000118007fc664'; // 127.198.100.0/24
const ECS_V6_128 = `00028000${'00'.repeat(15)}01`; // ::1/128

/** A case's outcome in words, for readable failures: the rcode, or the rcode, OPT and question. */
function outcome(r: Responder, msg: Uint8Array, full = true): string {
  const out = r.respond(msg, '127.192.2.1', true);
  if (!out) return 'dropped';
  const a = parseStrict(out);
  if (typeof a === 'string') return `malformed response (${a})`;
  if (a.id !== u16(msg, 0) || !a.qr) return 'a response with a wrong ID or no QR';
  const rcode = RCODE_NAME.get(a.rcode) ?? `rcode ${a.rcode}`;
  if (!full) return rcode;
  const q0 = a.questions[0];
  return [rcode, a.opt ? 'OPT' : 'no OPT', ...(q0 ? [`question ${showName(q0.labels)}`] : [])].join(
    ', ',
  );
}

type Case = [what: string, msg: Uint8Array, want: string];

describe('Responder on hand-made messages', () => {
  const r = responder();
  const got = (cases: Case[], full = true) =>
    cases.map(([what, msg]) => `${what}: ${outcome(r, msg, full)}  [${hex(msg)}]`);
  const wanted = (cases: Case[]) =>
    cases.map(([what, msg, want]) => `${what}: ${want}  [${hex(msg)}]`);

  it('malformed messages: FORMERR when the header can be read, else dropped; responses never answered', () => {
    const q = query(WEB);
    const withCount = (b: Buffer, at: number, v: number) => {
      const c = Buffer.from(b);
      c.writeUInt16BE(v, at);
      return c;
    };
    const cases: Case[] = [
      ['11 bytes', q.subarray(0, 11), 'dropped'],
      ['a header and no question', Buffer.from('beef01000000000000000000', 'hex'), 'FORMERR'],
      ['the question cut short', q.subarray(0, q.length - 2), 'FORMERR'],
      ['a compression loop', Buffer.from('beef01000001000000000000c00c00010001', 'hex'), 'FORMERR'],
      [
        'a 64-octet label',
        Buffer.concat([
          Buffer.from('beef0100000100000000000040', 'hex'),
          Buffer.alloc(64, 97),
          Buffer.from('0000010001', 'hex'),
        ]),
        'FORMERR',
      ],
      [
        'a 257-octet name',
        query([63, 63, 63, 63].map((n) => new Uint8Array(n).fill(97))),
        'FORMERR',
      ],
      ['bytes after the question', Buffer.concat([q, Buffer.from('deadbeef', 'hex')]), 'FORMERR'],
      ['ARCOUNT 1 and nothing after the question', withCount(q, 10, 1), 'FORMERR'],
      [
        'ANCOUNT 1 and an A record cut short',
        Buffer.concat([withCount(q, 6, 1), Buffer.from('c00c000100010000003c0004c000', 'hex')]),
        'FORMERR',
      ],
      [
        'an OPT whose RDATA runs past the message',
        query(WEB, {
          extra: Buffer.concat([
            opt(1232, 0).subarray(0, 9),
            Buffer.from('000a000a00040102', 'hex'),
          ]),
        }),
        'FORMERR',
      ],
      [
        'two OPT records',
        query(WEB, { extra: Buffer.concat([opt(1232, 0), opt(1232, 0)]), arcount: 2 }),
        'FORMERR',
      ],
      [
        'counts of 65,535 in a bare header',
        Buffer.from('beef0100ffffffffffffffff', 'hex'),
        'FORMERR',
      ],
      ['a malformed response (QR=1)', Buffer.from('beef81000001000000000000', 'hex'), 'dropped'],
      [
        'a well-formed response (QR=1)',
        Buffer.concat([Buffer.from([0xbe, 0xef, 0x85, 0]), q.subarray(4)]),
        'dropped',
      ],
    ];
    expect(got(cases, false)).toEqual(wanted(cases));
  });

  it('EDNS: BADVERS for version > 0, and the OPT echoed, whatever options come along', () => {
    const cases: Case[] = [
      [
        'version 1',
        query(WEB, { extra: opt(1232, 0x0001_0000) }),
        'BADVERS, OPT, question web|shop|svc|clusterset|local',
      ],
      [
        'version 1, COOKIE and ECS',
        query(WEB, {
          extra: opt(1232, 0x0001_0000, [
            [10, COOKIE],
            [8, ECS_V4_24],
          ]),
        }),
        'BADVERS, OPT, question web|shop|svc|clusterset|local',
      ],
      [
        'version 1, ECS ::1/128',
        query(WEB, { extra: opt(1232, 0x0001_0000, [[8, ECS_V6_128]]) }),
        'BADVERS, OPT, question web|shop|svc|clusterset|local',
      ],
      [
        'version 0, COOKIE and ECS',
        query(WEB, {
          extra: opt(1232, 0, [
            [10, COOKIE],
            [8, ECS_V4_24],
          ]),
        }),
        'NOERROR, OPT, question web|shop|svc|clusterset|local',
      ],
      [
        'class ANY, COOKIE and PADDING',
        query(WEB, {
          qclass: 255,
          extra: opt(1232, 0, [
            [10, COOKIE],
            [12, '00'.repeat(20)],
          ]),
        }),
        'NOERROR, OPT, question web|shop|svc|clusterset|local',
      ],
      [
        'class ANY, ECS ::1/128',
        query(WEB, { qclass: 255, extra: opt(1232, 0, [[8, ECS_V6_128]]) }),
        'NOERROR, OPT, question web|shop|svc|clusterset|local',
      ],
      [
        'class ANY, extended-rcode bits set in the query (version 0)',
        query(WEB, { qclass: 255, extra: opt(1232, 0x8000_0000) }),
        'NOERROR, OPT, question web|shop|svc|clusterset|local',
      ],
    ];
    expect(got(cases)).toEqual(wanted(cases));
  });

  it('a label holding dots is one label: the name is not the dotted one, and the question comes back as asked', () => {
    const one = [Buffer.from(WEB)];
    const two = [
      Buffer.from('web.shop'),
      ...['svc', 'clusterset', 'local'].map((l) => Buffer.from(l)),
    ];
    const cases: Case[] = [
      ['one label "web.shop.svc.clusterset.local"', query(one), `REFUSED, no OPT, question ${WEB}`],
      [
        '"web.shop" under svc.clusterset.local',
        query(two),
        'NXDOMAIN, no OPT, question web.shop|svc|clusterset|local',
      ],
      // A dot inside a label is no hyphen: these are not dns-version or a reverse zone.
      [
        '"dns.version" under clusterset.local, TXT',
        query([Buffer.from('dns.version'), Buffer.from('clusterset'), Buffer.from('local')], {
          qtype: 16,
        }),
        'NXDOMAIN, no OPT, question dns.version|clusterset|local',
      ],
      [
        '"in.addr" where the reverse zone has in-addr',
        query(
          ['1', '0', '12', '127', 'in.addr', 'arpa'].map((l) => Buffer.from(l)),
          { qtype: 12 },
        ),
        'REFUSED, no OPT, question 1|0|12|127|in.addr|arpa',
      ],
    ];
    expect(got(cases)).toEqual(wanted(cases));
  });

  it(`no message stalls the responder for more than ${HANG_MS} ms`, () => {
    const bigOption = query(WEB, {
      extra: opt(1232, 0x0001_0000, [[65_001, '00'.repeat(65_000)]]),
    });
    const zeros = Buffer.alloc(65_535);
    zeros.write('beef0100ffffffffffffffff', 'hex');
    const cases: [string, Uint8Array, boolean][] = [
      ['counts of 65,535 in a bare header', Buffer.from('beef0100ffffffffffffffff', 'hex'), true],
      ['the same as a response (QR=1)', Buffer.from('beef8100ffffffffffffffff', 'hex'), true],
      ['counts of 65,535 and 64 KiB of zeros (TCP)', zeros, false],
      ['a 65,000-byte unknown EDNS option, version 1 (TCP)', bigOption, false],
    ];
    r.respond(query(WEB), '127.192.2.1', true); // warm
    const slow = cases.flatMap(([what, msg, udp]) => {
      const ms = Math.min(
        ...Array.from({ length: STALL_TRIES }, () => timed(r, msg, '127.192.2.1', udp).ms),
      );
      return ms > HANG_MS ? [`${what}: ${ms.toFixed(0)} ms  [${hex(msg).slice(0, 64)}…]`] : [];
    });
    expect(slow).toEqual([]);
  });
});
