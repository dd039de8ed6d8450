// System tools that tests drive for real (dig, dnsperf, knotd, ...): found on PATH or
// installed on demand by scripts/ensure-tools.sh, never skipped. Plus `dig` run
// against a server with its default text output parsed into records.
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
const ENSURE_TOOLS = join(ROOT, 'scripts/ensure-tools.sh');
// Daemons such as knotd live in sbin, which a non-login PATH (CI, IDE) may lack.
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
// apt-get may have to fetch package lists and several packages.
const INSTALL_TIMEOUT_MS = 10 * 60_000;

const found = new Map<string, string>();

function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * The absolute path of the system tool `name`. When it is missing, installs it with
 * scripts/ensure-tools.sh (synchronously: callers use it at module or hook level);
 * when that fails too, throws, so the test fails saying what is missing. `neededBy`
 * names the caller in that message (benchmarks use this too).
 */
export function requireTool(name: string, neededBy = 'this test'): string {
  const cached = found.get(name);
  if (cached) return cached;
  let path = which(name);
  if (!path) {
    const r = spawnSync(ENSURE_TOOLS, [name], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: INSTALL_TIMEOUT_MS,
    });
    path = which(name);
    if (!path) {
      const why = r.error
        ? r.error.message
        : `${ENSURE_TOOLS} ${name} exited with ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`;
      throw new Error(`${name} is needed by ${neededBy} and could not be installed: ${why}`);
    }
  }
  found.set(name, path);
  return path;
}

// ---- dig ------------------------------------------------------------------------

export interface DigRecord {
  name: string;
  ttl: number;
  class: string;
  type: string;
  /** The record data as dig prints it (e.g. `127.192.2.1`, `"some text"`, SOA fields). */
  data: string;
}

export interface DigEdns {
  version: number;
  /** EDNS header flags, e.g. `['do']`. */
  flags: string[];
  /** The UDP payload size the responder advertised. */
  udp: number;
  /** Options dig printed in the OPT pseudosection, by name: `{ 'CLIENT-SUBNET': '127.198.100.0/24/24' }`. */
  options: Record<string, string>;
}

export interface DigResult {
  /** dig's full output, for assertions the parsed fields do not cover and for messages. */
  stdout: string;
  /** RCODE name from the HEADER line: NOERROR, NXDOMAIN, REFUSED, SERVFAIL, ... */
  status: string;
  opcode: string;
  id: number;
  /** Header flags, e.g. `['qr', 'aa']`; `tc` for a truncated reply kept with `+ignore`. */
  flags: string[];
  /** Record counts from the header: they say what the server sent even when dig prints less. */
  counts: { query: number; answer: number; authority: number; additional: number };
  question: { name: string; class: string; type: string }[];
  answers: DigRecord[];
  authority: DigRecord[];
  /** Additional records, without the OPT pseudo-record (see `edns`). */
  additional: DigRecord[];
  /** Absent when the reply carried no OPT record. */
  edns?: DigEdns;
  /** dig got a truncated UDP reply and asked again over TCP; the parsed reply is the TCP one. */
  retriedOverTcp: boolean;
  /** From dig's `;; SERVER:` line: UDP or TCP. */
  transport?: string | undefined;
}

const SECTIONS = {
  'QUESTION SECTION': 'question',
  'ANSWER SECTION': 'answers',
  'AUTHORITY SECTION': 'authority',
  'ADDITIONAL SECTION': 'additional',
  'OPT PSEUDOSECTION': 'edns',
} as const;
type Section = (typeof SECTIONS)[keyof typeof SECTIONS];

// name ttl class type data, as dig prints each record by default.
const RECORD = /^(\S+)\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/;

/**
 * Parses dig's default (non-+short, non-+multiline) output for one query. Throws when
 * it holds no reply, with dig's own words (`communications error ... timed out`).
 */
export function parseDig(stdout: string): DigResult {
  const header = /->>HEADER<<- opcode: (\S+), status: (\S+), id: (\d+)/.exec(stdout);
  if (!header) throw new Error(`dig printed no reply:\n${stdout.trim()}`);
  const flagLine =
    /;; flags:([^;]*); QUERY: (\d+), ANSWER: (\d+), AUTHORITY: (\d+), ADDITIONAL: (\d+)/.exec(
      stdout,
    );
  const result: DigResult = {
    stdout,
    opcode: header[1]!,
    status: header[2]!,
    id: Number(header[3]),
    flags: flagLine ? flagLine[1]!.trim().split(/\s+/).filter(Boolean) : [],
    counts: {
      query: Number(flagLine?.[2] ?? 0),
      answer: Number(flagLine?.[3] ?? 0),
      authority: Number(flagLine?.[4] ?? 0),
      additional: Number(flagLine?.[5] ?? 0),
    },
    question: [],
    answers: [],
    authority: [],
    additional: [],
    retriedOverTcp: /^;; Truncated, retrying in TCP mode\.$/m.test(stdout),
    transport: /^;; SERVER: .*\((UDP|TCP)\)$/m.exec(stdout)?.[1],
  };

  let section: Section | undefined;
  // Only the lines after the HEADER belong to the reply (dig's banner comes first).
  for (const line of stdout.slice(header.index).split('\n')) {
    const heading = /^;; (.+):$/.exec(line);
    if (heading) {
      section = SECTIONS[heading[1] as keyof typeof SECTIONS];
      continue;
    }
    if (line.trim() === '' || line.startsWith(';; ')) {
      // A blank line or a footer (`;; Query time`) ends a section.
      section = undefined;
      continue;
    }
    if (section === 'question') {
      const q = /^;(\S+)\s+(\S+)\s+(\S+)$/.exec(line);
      if (q) result.question.push({ name: q[1]!, class: q[2]!, type: q[3]! });
    } else if (section === 'edns') {
      parseOptLine(line, result);
    } else if (section) {
      const m = RECORD.exec(line);
      if (m) {
        result[section].push({
          name: m[1]!,
          ttl: Number(m[2]),
          class: m[3]!,
          type: m[4]!,
          data: (m[5] ?? '').trim(),
        });
      }
    }
  }
  return result;
}

// `; EDNS: version: 0, flags: do; udp: 1232` then one `; NAME: value` line per option.
function parseOptLine(line: string, result: DigResult): void {
  const edns = /^; EDNS: version: (\d+), flags:([^;]*); udp: (\d+)/.exec(line);
  if (edns) {
    result.edns = {
      version: Number(edns[1]),
      flags: edns[2]!.trim().split(/\s+/).filter(Boolean),
      udp: Number(edns[3]),
      options: {},
    };
    return;
  }
  const option = /^; ([A-Z0-9-]+): ?(.*)$/.exec(line);
  if (option && result.edns) result.edns.options[option[1]!] = option[2]!.trim();
}

/** dig's defaults here: a quick answer or a quick failure, no recursion asked of an authority. */
const DIG_DEFAULTS = ['+norec', '+time=2', '+tries=1'];

/**
 * Runs `dig @host -p port +norec +time=2 +tries=1 ARGS...` and parses its reply. dig
 * applies options left to right, so the caller overrides a default by passing it
 * (`+rec`, `+time=5`). Pass one query per call and keep dig's default output format
 * (no `+short`, `+multiline`, `+yaml`). Rejects when dig gets no reply at all.
 */
export function dig(server: { host: string; port: number }, args: string[]): Promise<DigResult> {
  const bin = requireTool('dig');
  const argv = [`@${server.host}`, '-p', String(server.port), ...DIG_DEFAULTS, ...args];
  return new Promise((resolve, reject) => {
    // Bounded even if the caller raised +time/+tries: dig itself should end well before.
    execFile(bin, argv, { timeout: 60_000 }, (err, stdout, stderr) => {
      try {
        resolve(parseDig(stdout));
      } catch (parseError) {
        const detail = err ? ` (${err.message.trim()})` : '';
        reject(
          new Error(
            `dig ${argv.join(' ')}: ${(parseError as Error).message}${stderr ? `\n${stderr}` : ''}${detail}`,
          ),
        );
      }
    });
  });
}
