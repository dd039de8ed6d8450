// The per-query fast path's view of a packet: just enough of an ordinary query
// (one question, no records but an optional OPT) to find its cached answer, and the
// patching that turns a cached response into this query's. Anything unusual goes to
// `inspectMessage`, a strict walk of the whole message's structure (names,
// compression pointers, record bounds) that finds the question and the OPT record.
// Neither decodes record data: encoding stays with dns2 (codec.ts), whose decoder
// is not used on untrusted input because counts that cannot fit make it retry for
// a second or more, long options cost it quadratic time, and it loses label
// boundaries and OPT flags.

export interface Ecs {
  readonly family: number;
  readonly sourcePrefix: number;
  /** The address octets as sent (at most ceil(sourcePrefix / 8)). */
  readonly address: Uint8Array;
}

export interface ScannedQuery {
  readonly id: number;
  readonly rd: boolean;
  /** Lower case, no trailing dot ('' for the root). */
  readonly name: string;
  /** Offset just past the question's name. */
  readonly nameEnd: number;
  readonly qtype: number;
  readonly qclass: number;
  /** Present when the query carried an OPT record. */
  readonly edns?:
    | { readonly payload: number; readonly version: number; readonly ecs?: Ecs | undefined }
    | undefined;
}

const OPT = 41;
const ECS_CODE = 8;

// Readers for an offset the caller has already checked lies inside the message:
// the one place the in-bounds promise is asserted, instead of at every read.
function u8(b: Uint8Array, o: number): number {
  return b[o]!;
}

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

/** An ordinary query, or undefined: then the full decode decides (FORMERR, NOTIMP, BADVERS...). */
export function scanQuery(b: Uint8Array): ScannedQuery | undefined {
  if (b.length < 17) return undefined;
  const flags = u8(b, 2);
  // QR must be 0 and opcode QUERY; one question, no answer or authority records.
  if ((flags & 0xf8) !== 0) return undefined;
  if (b[4] !== 0 || b[5] !== 1 || b[6] !== 0 || b[7] !== 0 || b[8] !== 0 || b[9] !== 0)
    return undefined;
  const arcount = u16(b, 10);
  if (arcount > 1) return undefined;
  let o = 12;
  let name = '';
  for (;;) {
    const len = b[o];
    if (len === undefined || len > 63) return undefined;
    o++;
    if (len === 0) break;
    if (o + len > b.length || o - 12 + len > 254) return undefined;
    if (name !== '') name += '.';
    for (let i = 0; i < len; i++) {
      let c = u8(b, o + i);
      if (c >= 65 && c <= 90) c += 32;
      // Only what a host name may hold (plus _ for SRV names); anything else goes the slow way.
      if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95))
        return undefined;
      name += String.fromCharCode(c);
    }
    o += len;
  }
  const nameEnd = o;
  if (o + 4 > b.length) return undefined;
  const qtype = u16(b, o);
  const qclass = u16(b, o + 2);
  o += 4;
  const base = { id: u16(b, 0), rd: (flags & 1) === 1, name, nameEnd, qtype, qclass };
  if (arcount === 0) return o === b.length ? base : undefined;
  // The OPT record: root name, type 41, class = payload, TTL = ext-rcode/version/flags.
  if (o + 11 > b.length || b[o] !== 0 || u16(b, o + 1) !== OPT) return undefined;
  const payload = u16(b, o + 3);
  const version = u8(b, o + 6);
  const rdlen = u16(b, o + 9);
  o += 11;
  if (o + rdlen !== b.length) return undefined;
  let ecs: Ecs | undefined;
  const end = o + rdlen;
  while (o < end) {
    if (o + 4 > end) return undefined;
    const code = u16(b, o);
    const len = u16(b, o + 2);
    o += 4;
    if (o + len > end) return undefined;
    if (code === ECS_CODE) {
      if (ecs || len < 4) return undefined;
      const family = u16(b, o);
      const sourcePrefix = u8(b, o + 2);
      const bytes = len - 4;
      // RFC 7871 §7.1.1: exactly ceil(source / 8) octets, a known family, a sane prefix.
      if ((family !== 1 && family !== 2) || sourcePrefix > (family === 1 ? 32 : 128))
        return undefined;
      if (bytes !== Math.ceil(sourcePrefix / 8) || b[o + 3] !== 0) return undefined;
      ecs = { family, sourcePrefix, address: b.slice(o + 4, o + len) };
    }
    o += len;
  }
  return { ...base, edns: { payload, version, ecs } };
}

/** The ECS subnet as address text, zero-filled: what the locality table looks up. */
export function ecsAddress(ecs: Ecs): string {
  if (ecs.family === 1) {
    const o = [0, 1, 2, 3].map((i) => ecs.address[i] ?? 0);
    return o.join('.');
  }
  const h: string[] = [];
  for (let i = 0; i < 16; i += 2)
    h.push((((ecs.address[i] ?? 0) << 8) | (ecs.address[i + 1] ?? 0)).toString(16));
  return h.join(':');
}

/**
 * This query's copy of a cached response: its ID, its RD bit and its question
 * name's case (answers point at the question by compression, so they follow).
 */
export function patchResponse(cached: Uint8Array, query: Uint8Array, q: ScannedQuery): Buffer {
  const out = Buffer.allocUnsafe(cached.length);
  out.set(cached);
  out[0] = u8(query, 0);
  out[1] = u8(query, 1);
  out[2] = (u8(out, 2) & 0xfe) | (q.rd ? 1 : 0);
  out.set(query.subarray(12, q.nameEnd), 12);
  return out;
}

export interface Inspected {
  readonly id: number;
  readonly qr: boolean;
  readonly opcode: number;
  readonly rd: boolean;
  /** The structure is broken (bad name, record past the end, trailing bytes, two OPTs...). */
  readonly malformed: boolean;
  readonly qdcount: number;
  /** The first question, when it could be read. */
  readonly question?:
    | {
        /**
         * As asked (case kept, one character per octet), except that a dot inside a
         * label reads as NUL: dns2 writes names as text split at dots, so the name
         * keeps its label structure and length, and the asked octets are patched back.
         * NUL is in no name we serve, so `in.addr` never passes for `in-addr`, nor
         * `dns.version` for `dns-version`.
         */
        readonly name: string;
        /** Offset just past the question's name in the message (it holds no pointer). */
        readonly nameEnd: number;
        readonly qtype: number;
        readonly qclass: number;
      }
    | undefined;
  readonly edns?: { readonly payload: number; readonly version: number } | undefined;
}

const MAX_POINTER_JUMPS = 32;

/** Walks a name at `o`; the offset after it (in this record) and its text, or undefined if broken. */
function walkName(
  b: Uint8Array,
  start: number,
): { end: number; name: string; compressed: boolean } | undefined {
  let o = start;
  let end = -1;
  let jumps = 0;
  let octets = 1;
  let name = '';
  for (;;) {
    const len = b[o];
    if (len === undefined) return undefined;
    if ((len & 0xc0) === 0xc0) {
      if (o + 1 >= b.length || ++jumps > MAX_POINTER_JUMPS) return undefined;
      const target = ((len & 0x3f) << 8) | u8(b, o + 1);
      // Only backwards, into what came before: no loops, no forward references.
      if (target >= o || target < 12) return undefined;
      if (end < 0) end = o + 2;
      o = target;
      continue;
    }
    if (len > 63) return undefined;
    o++;
    if (len === 0) break;
    if (o + len > b.length) return undefined;
    octets += len + 1;
    if (octets > 255) return undefined;
    let label = '';
    for (let i = 0; i < len; i++) {
      const c = u8(b, o + i);
      label += String.fromCharCode(c === 46 ? 0 : c);
    }
    name += name === '' ? label : `.${label}`;
    o += len;
  }
  return { end: end < 0 ? o : end, name, compressed: end >= 0 };
}

function validEcs(b: Uint8Array, o: number, len: number): boolean {
  if (len < 4 || o + len > b.length) return false;
  const family = u16(b, o);
  const source = u8(b, o + 2);
  const max = family === 1 ? 32 : family === 2 ? 128 : -1;
  return max >= 0 && source <= max && b[o + 3] === 0 && len - 4 === Math.ceil(source / 8);
}

/** The message's structure, or undefined when not even the header is there (drop it). */
export function inspectMessage(b: Uint8Array): Inspected | undefined {
  if (b.length < 12) return undefined;
  const id = u16(b, 0);
  const flags = u8(b, 2);
  const head = { id, qr: (flags & 0x80) !== 0, opcode: (flags >> 3) & 0x0f, rd: (flags & 1) === 1 };
  const qdcount = u16(b, 4);
  const records = u16(b, 6) + u16(b, 8) + u16(b, 10);
  const arStart = u16(b, 6) + u16(b, 8);
  const broken = (question?: Inspected['question']): Inspected => ({
    ...head,
    malformed: true,
    qdcount,
    question,
  });
  // Counts that cannot fit are refused before any walking: 5 octets a question, 11 a record at least.
  if (12 + qdcount * 5 + records * 11 > b.length) return broken();
  let o = 12;
  let question: Inspected['question'];
  for (let i = 0; i < qdcount; i++) {
    const n = walkName(b, o);
    // The first name of a message has nothing before it to point at: a pointer there is bogus.
    if (!n || n.end + 4 > b.length || (i === 0 && n.compressed)) return broken(question);
    const qtype = u16(b, n.end);
    const qclass = u16(b, n.end + 2);
    if (i === 0) question = { name: n.name, nameEnd: n.end, qtype, qclass };
    o = n.end + 4;
  }
  let edns: Inspected['edns'];
  for (let i = 0; i < records; i++) {
    const n = walkName(b, o);
    if (!n || n.end + 10 > b.length) return broken(question);
    const type = u16(b, n.end);
    const rdlen = u16(b, n.end + 8);
    const next = n.end + 10 + rdlen;
    if (next > b.length) return broken(question);
    if (type === OPT) {
      // One OPT, owned by the root, in the additional section (RFC 6891 §6.1.1).
      if (edns || n.name !== '' || i < arStart) return broken(question);
      edns = { payload: u16(b, n.end + 2), version: u8(b, n.end + 5) };
      let p = n.end + 10;
      while (p < next) {
        if (p + 4 > next) return broken(question);
        const code = u16(b, p);
        const len = u16(b, p + 2);
        // RFC 7871 §7.1.1: a Client Subnet we cannot use as sent is a FORMERR.
        if (code === ECS_CODE && !validEcs(b, p + 4, len)) return broken(question);
        p += 4 + len;
      }
      if (p !== next) return broken(question);
    }
    o = next;
  }
  if (o !== b.length) return { ...broken(question), edns };
  return { ...head, malformed: false, qdcount, question, edns };
}

/** DNS names compare case-insensitively in ASCII only (RFC 4343): other octets stay as they are. */
export function asciiLower(name: string): string {
  return name.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}
