// The system-tool helpers: requireTool finds (or installs) real binaries and fails
// loudly otherwise; parseDig reads dig 9.18's default output, checked on samples
// captured from dig against Knot 3.2 (tabs as dig prints them); dig() end to end
// against a minimal UDP responder.
import { createSocket, type Socket } from 'node:dgram';
import { isAbsolute } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dig, parseDig, requireTool } from './tools.ts';

const BANNER = (args: string) => `
; <<>> DiG 9.18.49-1~deb12u3-Debian <<>> @127.0.0.1 -p 15353 ${args}
; (1 server found)
;; global options: +cmd
;; Got answer:
`;
const FOOTER = (transport: string, size: number) => `
;; Query time: 0 msec
;; SERVER: 127.0.0.1#15353(127.0.0.1) (${transport})
;; WHEN: Sun Nov 22 12:03:21 UTC 2026
;; MSG SIZE  rcvd: ${size}

`;

const NOERROR_A = `${BANNER('www.example.test A +norec')};; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 9951
;; flags: qr aa; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;www.example.test.\t\tIN\tA

;; ANSWER SECTION:
www.example.test.\t30\tIN\tA\t127.192.2.1
www.example.test.\t30\tIN\tA\t127.192.2.2
${FOOTER('UDP', 77)}`;

const NXDOMAIN = `${BANNER('nope.example.test A +norec')};; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 6934
;; flags: qr aa; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;nope.example.test.\t\tIN\tA

;; AUTHORITY SECTION:
example.test.\t\t30\tIN\tSOA\tns1.example.test. hostmaster.example.test. 1 3600 600 86400 30
${FOOTER('UDP', 97)}`;

// Knot with `edns-client-subnet: on` echoes the client's subnet with scope 0.
const CLIENT_SUBNET = `${BANNER('www.example.test A +norec +subnet=127.198.100.0/24 +nsid +dnssec')};; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 10732
;; flags: qr aa; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags: do; udp: 1232
; NSID: 76 6d ("vm")
; CLIENT-SUBNET: 127.198.100.0/24/0
;; QUESTION SECTION:
;www.example.test.\t\tIN\tA

;; ANSWER SECTION:
www.example.test.\t30\tIN\tA\t127.192.2.1
www.example.test.\t30\tIN\tA\t127.192.2.2
${FOOTER('UDP', 94)}`;

// +ignore keeps the truncated UDP reply: TC set, the counts and sections empty.
const TRUNCATED = `${BANNER('big.example.test TXT +norec +noedns +ignore')};; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 24776
;; flags: qr aa tc; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 0

;; QUESTION SECTION:
;big.example.test.\t\tIN\tTXT
${FOOTER('UDP', 34)}`;

// Without +ignore dig says so and prints only the reply it got over TCP.
const TXT = (c: string) => `big.example.test.\t30\tIN\tTXT\t"${c.repeat(20)} ${c}"`;
const RETRIED = `;; Truncated, retrying in TCP mode.
${BANNER('big.example.test TXT +norec +noedns')};; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 53104
;; flags: qr aa; QUERY: 1, ANSWER: 5, AUTHORITY: 0, ADDITIONAL: 0

;; QUESTION SECTION:
;big.example.test.\t\tIN\tTXT

;; ANSWER SECTION:
${['e', 'a', 'b', 'c', 'd'].map(TXT).join('\n')}
${FOOTER('TCP', 638)}`;

const WITH_ADDITIONAL = `${BANNER('example.test NS +norec')};; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 53187
;; flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 2

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;example.test.\t\t\tIN\tNS

;; ANSWER SECTION:
example.test.\t\t30\tIN\tNS\tns1.example.test.

;; ADDITIONAL SECTION:
ns1.example.test.\t30\tIN\tA\t127.0.0.1
${FOOTER('UDP', 75)}`;

const REFUSED = `${BANNER('other.invalid A +norec')};; ->>HEADER<<- opcode: QUERY, status: REFUSED, id: 26983
;; flags: qr; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
; EDE: 20 (Not Authoritative)
;; QUESTION SECTION:
;other.invalid.\t\t\tIN\tA
${FOOTER('UDP', 48)}`;

const NO_REPLY = `;; communications error to 127.0.0.1#15999: connection refused

; <<>> DiG 9.18.49-1~deb12u3-Debian <<>> @127.0.0.1 -p 15999 +norec +time=1 +tries=1 www.example.test A
; (1 server found)
;; global options: +cmd
;; no servers could be reached
`;

describe('requireTool', () => {
  it('finds dig (installing it if needed) and returns its absolute path', () => {
    const path = requireTool('dig');
    expect(isAbsolute(path)).toBe(true);
    expect(path).toMatch(/\/dig$/);
    expect(requireTool('dig')).toBe(path);
  });

  it('fails naming the tool when it cannot be had', () => {
    expect(() => requireTool('no-such-tool-fedgate')).toThrow(
      /^no-such-tool-fedgate is needed by this test and could not be installed: .*unknown tool 'no-such-tool-fedgate'/s,
    );
  });
});

describe('parseDig', () => {
  it('reads the header, question and answers of a NOERROR reply', () => {
    const r = parseDig(NOERROR_A);
    expect(r).toMatchObject({
      status: 'NOERROR',
      opcode: 'QUERY',
      id: 9951,
      flags: ['qr', 'aa'],
      counts: { query: 1, answer: 2, authority: 0, additional: 1 },
      question: [{ name: 'www.example.test.', class: 'IN', type: 'A' }],
      authority: [],
      additional: [],
      retriedOverTcp: false,
      transport: 'UDP',
      edns: { version: 0, flags: [], udp: 1232, options: {} },
    });
    expect(r.answers).toEqual([
      { name: 'www.example.test.', ttl: 30, class: 'IN', type: 'A', data: '127.192.2.1' },
      { name: 'www.example.test.', ttl: 30, class: 'IN', type: 'A', data: '127.192.2.2' },
    ]);
    expect(r.stdout).toBe(NOERROR_A);
  });

  it('reads the SOA in the authority section of an NXDOMAIN', () => {
    const r = parseDig(NXDOMAIN);
    expect(r.status).toBe('NXDOMAIN');
    expect(r.answers).toEqual([]);
    expect(r.authority).toEqual([
      {
        name: 'example.test.',
        ttl: 30,
        class: 'IN',
        type: 'SOA',
        data: 'ns1.example.test. hostmaster.example.test. 1 3600 600 86400 30',
      },
    ]);
  });

  it('reads the OPT pseudosection: EDNS flags, CLIENT-SUBNET and other options', () => {
    const r = parseDig(CLIENT_SUBNET);
    expect(r.edns).toEqual({
      version: 0,
      flags: ['do'],
      udp: 1232,
      options: { NSID: '76 6d ("vm")', 'CLIENT-SUBNET': '127.198.100.0/24/0' },
    });
    // The pseudosection is not an additional record, and must not swallow the question.
    expect(r.additional).toEqual([]);
    expect(r.question).toEqual([{ name: 'www.example.test.', class: 'IN', type: 'A' }]);
    expect(r.answers.map((a) => a.data)).toEqual(['127.192.2.1', '127.192.2.2']);
  });

  it('keeps TC in the flags of a truncated reply and has no EDNS without an OPT record', () => {
    const r = parseDig(TRUNCATED);
    expect(r.flags).toEqual(['qr', 'aa', 'tc']);
    expect(r.counts.answer).toBe(0);
    expect(r.answers).toEqual([]);
    expect(r.edns).toBeUndefined();
    expect(r.retriedOverTcp).toBe(false);
  });

  it('notices a retry over TCP and parses the TCP reply, TXT data quoted as printed', () => {
    const r = parseDig(RETRIED);
    expect(r.retriedOverTcp).toBe(true);
    expect(r.transport).toBe('TCP');
    expect(r.flags).toEqual(['qr', 'aa']);
    expect(r.answers).toHaveLength(5);
    expect(r.answers[0]).toEqual({
      name: 'big.example.test.',
      ttl: 30,
      class: 'IN',
      type: 'TXT',
      data: `"${'e'.repeat(20)} e"`,
    });
  });

  it('reads the additional section', () => {
    const r = parseDig(WITH_ADDITIONAL);
    expect(r.answers).toEqual([
      { name: 'example.test.', ttl: 30, class: 'IN', type: 'NS', data: 'ns1.example.test.' },
    ]);
    expect(r.additional).toEqual([
      { name: 'ns1.example.test.', ttl: 30, class: 'IN', type: 'A', data: '127.0.0.1' },
    ]);
  });

  it('reads REFUSED with an extended error and no answer flags but qr', () => {
    const r = parseDig(REFUSED);
    expect(r.status).toBe('REFUSED');
    expect(r.flags).toEqual(['qr']);
    expect(r.edns?.options).toEqual({ EDE: '20 (Not Authoritative)' });
  });

  it('throws with dig’s words when there was no reply', () => {
    expect(() => parseDig(NO_REPLY)).toThrow(/no servers could be reached/);
  });
});

describe('dig', () => {
  let sock: Socket | undefined;
  afterEach(() => {
    sock?.close();
    sock = undefined;
  });

  async function udpServer(onQuery?: (msg: Buffer) => Buffer): Promise<number> {
    const s = createSocket('udp4');
    sock = s;
    if (onQuery) s.on('message', (msg, rinfo) => s.send(onQuery(msg), rinfo.port, rinfo.address));
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    return s.address().port;
  }

  // A minimal authority: echoes the question and answers one A record, no OPT.
  function answerA(query: Buffer): Buffer {
    let end = 12;
    while (query[end] !== 0) end += query[end]! + 1;
    end += 5; // the root label, QTYPE, QCLASS
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8400, 2); // QR, AA, NOERROR, RD clear
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(1, 6);
    const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 127, 192, 2, 7]);
    return Buffer.concat([header, query.subarray(12, end), rr]);
  }

  it('runs the real dig against a server and parses its answer', async () => {
    const port = await udpServer(answerA);
    const r = await dig({ host: '127.0.0.1', port }, ['svc.example.test', 'A']);
    expect(r.status).toBe('NOERROR');
    expect(r.flags).toEqual(['qr', 'aa']);
    expect(r.answers).toEqual([
      { name: 'svc.example.test.', ttl: 30, class: 'IN', type: 'A', data: '127.192.2.7' },
    ]);
    // +norec by default: the query went out without RD, so no "recursion requested" warning.
    expect(r.stdout).not.toMatch(/recursion requested/);
    expect(r.stdout).toContain('+norec +time=2 +tries=1 svc.example.test A');
  });

  it('rejects with dig’s output when the server stays silent', async () => {
    const port = await udpServer();
    await expect(dig({ host: '127.0.0.1', port }, ['+time=1', 'x.example.test'])).rejects.toThrow(
      /timed out/,
    );
  });
});
