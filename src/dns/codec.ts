// Every encode, through dns2 (off the per-query path: encoded responses are
// cached). dns2 leaves AA clear and adds no OPT record, so both are set here; names
// are written in lower case and the question's case is patched in per query
// (wire.ts). Untrusted input is never given to dns2's decoder (see wire.ts).
import dns2 from 'dns2';
import { DNS_UDP_PAYLOAD_SIZE } from '../config/defaults.ts';
import type { Answer, Rcode, Rr } from './answer.ts';
import { type Ecs, ecsAddress } from './wire.ts';

const { Packet } = dns2;

// dns2's typings are narrower than its runtime (OPT options, the Header
// constructor, plain objects as records): this is the part we use, as it is.
interface WirePacket {
  header: unknown;
  questions: unknown[];
  answers: unknown[];
  authorities: unknown[];
  additionals: unknown[];
  toBuffer(writer?: BitWriter): Buffer;
}
/** dns2's writer: the message as an array of bits. */
interface BitWriter {
  buffer: number[];
  toBuffer(): Buffer;
}
const Writer = (Packet as unknown as { Writer: new () => BitWriter }).Writer;
const NOTHING = Buffer.alloc(0);

/**
 * The packet's bytes. dns2's record encoder materializes the whole shared writer
 * after every record (`return writer.toBuffer()`), which makes a message of n
 * records cost O(n²): 63 SRV records took 30 ms. Those results are never used, so
 * the writer hands back nothing until the end, when its bits are packed once.
 */
function packetBytes(p: WirePacket): Buffer {
  const w = new Writer();
  w.toBuffer = () => NOTHING;
  p.toBuffer(w);
  const bits = w.buffer;
  const out = Buffer.alloc(bits.length >> 3);
  for (let i = 0; i < out.length; i++) {
    let byte = 0;
    for (let b = 0; b < 8; b++) byte = (byte << 1) | (bits[i * 8 + b] ?? 0);
    out[i] = byte;
  }
  return out;
}
const Header = Packet.Header as unknown as new (h: Record<string, number>) => unknown;
const Edns = Packet.Resource.EDNS as unknown as (
  options: unknown[],
  opts: { udpPayloadSize: number; extendedRcode: number },
) => Record<string, unknown>;

export const RCODE: Record<Rcode | 'BADVERS', number> = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
};

function toDns2(rr: Rr): Record<string, unknown> {
  const base = { name: rr.name, class: Packet.CLASS.IN, ttl: rr.ttl };
  const d = rr.data;
  switch (d.type) {
    case 'A':
      return { ...base, type: Packet.TYPE.A, address: d.address };
    case 'AAAA':
      return { ...base, type: Packet.TYPE.AAAA, address: d.address };
    case 'CNAME':
      return { ...base, type: Packet.TYPE.CNAME, domain: d.target };
    case 'PTR':
      return { ...base, type: Packet.TYPE.PTR, domain: d.target };
    case 'NS':
      return { ...base, type: Packet.TYPE.NS, ns: d.target };
    case 'TXT':
      return { ...base, type: Packet.TYPE.TXT, data: [d.text] };
    case 'SRV':
      return {
        ...base,
        type: Packet.TYPE.SRV,
        priority: d.priority,
        weight: d.weight,
        port: d.port,
        target: d.target,
      };
    case 'SOA':
      return {
        ...base,
        type: Packet.TYPE.SOA,
        primary: d.mname,
        admin: d.rname,
        serial: d.serial,
        refresh: d.refresh,
        retry: d.retry,
        expiration: d.expire,
        minimum: d.minimum,
      };
  }
}

export interface ResponseSpec {
  readonly id: number;
  readonly rd: boolean;
  readonly question?:
    | { readonly name: string; readonly qtype: number; readonly qclass: number }
    | undefined;
  readonly rcode: Rcode | 'BADVERS';
  readonly answer?: Answer | undefined;
  /** Answer with an OPT record (the query had one); ECS echoed with this scope. */
  readonly edns?: { readonly ecs?: Ecs | undefined; readonly scope?: number } | undefined;
  readonly truncated?: boolean;
  /** The query's opcode, copied back (RFC 1035 §4.1.1); QUERY unless told. */
  readonly opcode?: number;
}

export function encodeResponse(spec: ResponseSpec): Buffer {
  const p = new Packet() as unknown as WirePacket;
  const rcode = RCODE[spec.rcode];
  p.header = new Header({
    id: spec.id,
    qr: 1,
    opcode: spec.opcode ?? 0,
    // AA only on answers from our zones (RFC 1035 §4.1.1): data or NXDOMAIN. Errors
    // (FORMERR, NOTIMP, REFUSED, SERVFAIL, BADVERS) speak for no zone.
    aa: spec.rcode === 'NOERROR' || spec.rcode === 'NXDOMAIN' ? 1 : 0,
    tc: spec.truncated ? 1 : 0,
    rd: spec.rd ? 1 : 0,
    ra: 0,
    rcode,
  });
  if (spec.question) {
    p.questions.push({
      name: spec.question.name,
      type: spec.question.qtype,
      class: spec.question.qclass,
    });
  }
  if (spec.answer && !spec.truncated) {
    p.answers.push(...spec.answer.answers.map(toDns2));
    p.authorities.push(...spec.answer.authority.map(toDns2));
    p.additionals.push(...spec.answer.additional.map(toDns2));
  }
  if (spec.edns) {
    const ecs = spec.edns.ecs;
    const options = ecs
      ? [
          {
            ednsCode: Packet.EDNS_OPTION_CODE.ECS,
            family: ecs.family,
            sourcePrefixLength: ecs.sourcePrefix,
            scopePrefixLength: spec.edns.scope ?? 0,
            ip: ecsAddress(ecs),
          },
        ]
      : [];
    const opt = Edns(options, {
      udpPayloadSize: DNS_UDP_PAYLOAD_SIZE,
      extendedRcode: rcode >> 4,
    });
    p.additionals.push({ ...opt, name: '' });
  }
  return packetBytes(p);
}
