// Tests, benchmarks, the demo and every process they start talk only to loopback:
// 127.0.0.0/8 and ::1. Health checks and the proxy dial whatever the catalog holds, so
// even an address that "only" sits in a fixture (an EndpointSlice, a locality table, a
// client address, an X-Forwarded-For value) could be dialed one day. This scans every
// tracked file under src/, test/, bench/ and scripts/ (Markdown aside: prose about
// production use) for address literals outside loopback and fails with file:line for
// each one not on the allowlist below.
//
// What counts as an address literal:
// - IPv4: four dotted decimal octets (each 0..255) standing alone, so not part of a
//   longer dotted run (a version such as 1.2.3.4.5) nor glued to a word (v1.2.3.4).
//   Allowed: 127.0.0.0/8, and 0.0.0.0 wherever it appears. It is the unspecified
//   address: a wildcard bind (0.0.0.0:8080), the base of a catch-all CIDR (0.0.0.0/0)
//   or a "no address" placeholder, and nothing reaches another host through it: Linux
//   takes a connect to it for this host. Telling a bind from other uses would take the
//   code around it; a listener test that binds it still only answers, never dials.
// - IPv4 built in a template or by concatenation: one to three leading octets then
//   `${`, or two or three then a closing quote (`10.${c}.0.1`, '10.0.0.' + i).
//   Allowed when the first octet is 127.
// - IPv4 in a regular expression: four parts (octets or \d) joined by escaped dots
//   (/10\.0\.0\.\d/), or two or three octets and an escaped dot (/^10\.96\./).
//   Allowed when the first octet is 127.
// - IPv6: a run of hex digits and colons (a dotted IPv4 tail allowed) that node:net
//   accepts as IPv6. Allowed: ::1, :: (unspecified: wildcard bind, ::/0) and
//   IPv4-mapped loopback (::ffff:127.x.y.z, in either spelling). An IPv4-mapped
//   address's IPv4 tail is also checked as IPv4.
// Not found: addresses spelled as bytes or numbers ([127, 0, 0, 1], 0x7f000001); keep
// those on loopback by hand.
//
// This file is not scanned itself: it spells out the literals it allows and those its
// own matcher tests feed in.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(fileURLToPath(import.meta.url), '../..');
const SELF = relative(ROOT, fileURLToPath(import.meta.url));
const SCANNED = ['src', 'test', 'bench', 'scripts'];

interface Allowed {
  /** A file, or a directory when it ends with '/'. */
  readonly path: string;
  /** The literals allowed there, as the matcher reports them; omitted: any. */
  readonly literals?: readonly string[];
  readonly reason: string;
}

/** The few places that must spell a non-loopback address. Each says why. */
const ALLOWED: readonly Allowed[] = [
  {
    path: 'src/netguard/',
    reason:
      'the loopback guard itself: its unit tests classify private, public and link-local addresses as non-loopback, without dialing them',
  },
  {
    path: 'test/netguard.test.ts',
    reason:
      "the guard's end-to-end test: it asks for multicast and broadcast destinations to see the guard refuse each one before a socket connects",
  },
  {
    path: 'src/config/schema.ts',
    literals: ['10.0.0.0', '2001:db8::'],
    reason:
      'the example in the error for a bad CIDR, written for production configurations; nothing dials it',
  },
  {
    path: 'src/dns/rrl.test.ts',
    literals: [
      '2001:db8:0:1200::1',
      '2001:db8:0:12ff:ffff:ffff:ffff:ffff',
      '2001:0db8:0000:1234:0:0:0:1',
      '2001:db8:0:1300::1',
      '2001:db8:1:1200::1',
    ],
    reason:
      'response rate limiting groups IPv6 clients by /56: telling /56s apart needs global IPv6 addresses (::1 is the only loopback one); the limiter only keys them, nothing dials a client',
  },
  {
    path: 'src/netblock.test.ts',
    literals: [
      '2001:db8:0:ff::1',
      '2001:db8:0:1::2',
      '2001:db8:0:100::1',
      '2001:db8:1:ff::1',
      '2001:db8:1:1::1',
    ],
    reason:
      'clients are grouped by IPv6 /56 (DNS RRL, the proxy client share): telling prefixes apart needs global IPv6 addresses (::1 is the only loopback one); they are only keyed, nothing dials a client',
  },
  {
    path: 'src/routing/locality.test.ts',
    literals: [
      '2001:db8::',
      '2001:db8:1::',
      '2001:db8:1:2::5',
      '2001:db8:ffff::1',
      '2001:0DB8:0001::1',
      'fe80::1',
      '2002::1',
    ],
    reason:
      'longest-prefix match over IPv6 CIDRs needs global and link-local IPv6 prefixes (::1 is the only loopback address); the table only maps client addresses to localities, nothing dials them',
  },
];

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** Not glued to a word or a dot before: a backslash escape (\\t, \\n) before it is no word. */
const START = String.raw`(?<!(?<!\\)[\w.])`;
/** A dotted quad on its own: not glued to a word, not part of a longer dotted run. */
const IPV4 = new RegExp(`${START}${OCTET}(?:\\.${OCTET}){3}(?!\\w|\\.\\d)`, 'g');
/**
 * The start of an IPv4 address built in a template (`10.${`), or by concatenation from
 * two or three octets ('10.0.0.' + i; one would be any number ending a sentence).
 */
const IPV4_BUILT = new RegExp(
  String.raw`${START}${OCTET}(?:(?:\.${OCTET}){0,2}\.\$\{|(?:\.${OCTET}){1,2}\.(?=['"\x60]))`,
  'g',
);
/** An IPv4 address in a regular expression: four parts joined by escaped dots, or a prefix of two or three octets ending in one. */
const IPV4_ESCAPED = new RegExp(
  String.raw`(?<![\w.\\])${OCTET}(?:(?:\\\.(?:${OCTET}|\\d)){3}|(?:\\\.${OCTET}){1,2}\\\.(?!\d))`,
  'g',
);
/** A run that may be an IPv6 address: hex digits and at least two colons, maybe a dotted tail. */
const IPV6 =
  /(?<!(?<!\\)[\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?![\w:]|\.\w)/g;

/** True for an IPv6 address that is loopback (::1), unspecified (::) or IPv4-mapped 127/8. */
function loopbackV6(address: string): boolean {
  // The URL parser canonicalizes: lower case, zeros compressed, a dotted tail as hextets.
  const host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  return host === '::1' || host === '::' || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(host);
}

/**
 * A reverse DNS name's labels hold an address backwards: `1.0.0.127.in-addr.arpa`
 * is judged as 127.0.0.1. Runs of an `ip6.arpa` name's nibbles are no dotted quad.
 */
const IN_ADDR = /^\.in-addr\.arpa\b/i;
const IP6_ARPA = /^(?:\.[0-9a-f])*\.ip6\.arpa\b/i;

/** The non-loopback address literals on one line of text. */
function nonLoopbackLiterals(line: string): string[] {
  const found: string[] = [];
  for (const m of line.matchAll(IPV4)) {
    const after = line.slice((m.index ?? 0) + m[0].length);
    if (IP6_ARPA.test(after)) continue;
    const address = IN_ADDR.test(after) ? m[0].split('.').reverse().join('.') : m[0];
    if (!address.startsWith('127.') && address !== '0.0.0.0') found.push(m[0]);
  }
  for (const [m] of line.matchAll(IPV4_BUILT)) {
    if (!m.startsWith('127.')) found.push(m);
  }
  for (const [m] of line.matchAll(IPV4_ESCAPED)) {
    if (!m.startsWith('127\\.')) found.push(m);
  }
  for (const [m] of line.matchAll(IPV6)) {
    // A dotted tail that is not a whole IPv4 address (::ffff:1.2) makes it no address.
    const candidate = m.replace(/\.$/, '');
    if (isIPv6(candidate) && !loopbackV6(candidate)) found.push(candidate);
  }
  return found;
}

function allowed(file: string, literal: string): Allowed | undefined {
  return ALLOWED.find(
    (a) =>
      (a.path.endsWith('/') ? file.startsWith(a.path) : file === a.path) &&
      (a.literals === undefined || a.literals.includes(literal)),
  );
}

function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--', ...SCANNED], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return out
    .split('\0')
    .filter((f) => f !== '' && !f.endsWith('.md') && f !== SELF && existsSync(join(ROOT, f)));
}

describe('the address matcher', () => {
  it.each([
    ['10.0.0.1', ['10.0.0.1']],
    ['"192.168.1.20:8080"', ['192.168.1.20']],
    ['{ cidr: 172.16.0.0/12 }', ['172.16.0.0']],
    ['dig @8.8.8.8', ['8.8.8.8']],
    ['`www.example.test.\\t30\\tIN\\tA\\t192.0.2.1\\n`', ['192.0.2.1']],
    ['"AAAA\\tfd00::1"', ['fd00::1']],
    ['X-Forwarded-For: 203.0.113.7, 127.0.0.1', ['203.0.113.7']],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: source text, as the scanner reads it
    ['`10.${c}.${z}.${i}`', ['10.${']],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: source text, as the scanner reads it
    ['`192.168.${i}.1`', ['192.168.${']],
    ["'10.0.0.' + i", ['10.0.0.']],
    ["'192.168.' + i", ['192.168.']],
    ['toMatch(/^10\\.96\\.\\d+\\.\\d+$/)', ['10\\.96\\.']],
    ['/^172\\.16\\.0\\.\\d/', ['172\\.16\\.0\\.\\d']],
    ['/web\\s+10\\.0\\.0\\.1,/', ['10\\.0\\.0\\.1']],
    ['[fd00::1]:53', ['fd00::1']],
    ['2001:db8::/32', ['2001:db8::']],
    ['fe80::1%eth0', ['fe80::1']],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: source text, as the scanner reads it
    ['`fd00:3::${i}`', ['fd00:3::']],
    ['::ffff:10.1.2.3', ['10.1.2.3', '::ffff:10.1.2.3']],
    ['::ffff:0a01:0203', ['::ffff:0a01:0203']],
    // A reverse name: 10.0.0.1 backwards.
    ["'1.0.0.10.in-addr.arpa'", ['1.0.0.10']],
  ])('finds %s', (line, want) => {
    expect(nonLoopbackLiterals(line)).toEqual(want);
  });

  it.each([
    '127.0.0.1:9464',
    '127.255.255.254',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: source text, as the scanner reads it
    '`127.${octet}.0.1`',
    "'127.0.0.' + i",
    '/^127\\.255\\.\\d+\\.\\d+$/',
    '/v1\\.2\\.3/',
    '/^text\\/plain; version=0\\.0\\.4/',
    '0.0.0.0:5353',
    '0.0.0.0/0',
    '[::1]:53',
    '[::]:5353',
    '::/0',
    '::ffff:127.1.2.3',
    '::FFFF:7F01:0203',
    '0:0:0:0:0:0:0:1',
    'version 1.2.3.4.5',
    'v1.2.3.4',
    '::ffff:a.b.c.d',
    '1.2.3',
    "'needs Node 24.'",
    "'see RFC 1918.'",
    '256.1.1.1',
    '12:34:56',
    'aa:bb:cc:dd:ee:ff',
    'a ? b : c',
    'std::fmt',
    // 127.22.0.1 backwards, and nibbles of an ip6.arpa name.
    "'1.0.22.127.in-addr.arpa'",
    "'1.0.0.0.6.1.f.7.f.f.f.f.0.0.ip6.arpa'",
  ])('lets %s be', (line) => {
    expect(nonLoopbackLiterals(line)).toEqual([]);
  });
});

describe('fixtures', () => {
  it('hold no address outside loopback (127.0.0.0/8, ::1) but the allowlisted ones', () => {
    const offending: string[] = [];
    const used = new Set<string>();
    for (const file of trackedFiles()) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      if (text.includes('\0')) continue; // binary
      text.split('\n').forEach((line, i) => {
        for (const literal of nonLoopbackLiterals(line)) {
          const a = allowed(file, literal);
          if (a) used.add(`${a.path} ${literal}`);
          else offending.push(`${file}:${i + 1}: ${literal}`);
        }
      });
    }
    expect(offending, 'use a 127.0.0.0/8 address (or ::1, ::ffff:127.x.y.z) instead').toEqual([]);
    // An allowlisted literal no longer there leaves the list: it should shrink, not rot.
    const stale = ALLOWED.flatMap((a) =>
      (a.literals ?? []).map((l) => `${a.path} ${l}`).filter((k) => !used.has(k)),
    );
    expect(stale, 'allowlisted but no longer found').toEqual([]);
  });

  it('allowlists addresses, spelled as the matcher reports them', () => {
    for (const a of ALLOWED) {
      for (const literal of a.literals ?? []) {
        expect(isIPv4(literal) || isIPv6(literal), `${a.path}: ${literal}`).toBe(true);
      }
    }
  });
});
