// An authoritative DNS server run as a child process for the DNS benchmark (Knot,
// CoreDNS, the bare Node floor): started, watched until it answers every zone's SOA
// authoritatively, killed if the benchmark dies, stopped on request.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { supervise } from './child.ts';

export interface DnsProcessOptions {
  /** What the errors call it, e.g. `knotd`. */
  what: string;
  bin: string;
  args: string[];
  host: string;
  port: number;
  /** Zone apexes it must answer SOA for authoritatively before it counts as started. */
  apexes: string[];
  /** A line in its log saying a zone failed to load while the server keeps running. */
  loadFailed?: RegExp;
  /** How long to wait for every apex; 15 s by default. */
  startTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface DnsProcess {
  host: string;
  port: number;
  pid: number;
  /** Its stdout and stderr so far. */
  log(): string;
  /** SIGTERM, then SIGKILL after 5 s, and waits for it; safe to call twice. */
  stop(): Promise<void>;
}

const zoneName = (origin: string) => origin.replace(/\.$/, '');

/** Starts `bin args` and resolves once it answers every apex's SOA authoritatively over UDP. */
export async function startDnsProcess(o: DnsProcessOptions): Promise<DnsProcess> {
  const child = spawn(o.bin, o.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(o.env ? { env: o.env } : {}),
  });
  const s = supervise(child);
  const stop = s.stop;

  const deadline = Date.now() + (o.startTimeoutMs ?? 15_000);
  const pending = new Set(o.apexes.map(zoneName));
  while (pending.size > 0) {
    if (!s.alive()) {
      await stop();
      const why = s.spawnError()?.message ?? `exit ${child.exitCode ?? child.signalCode}`;
      throw new Error(`${o.what} exited before answering (${why}):\n${s.output()}`);
    }
    // A zone file the server rejects may only be logged: watch the log to fail at once.
    if (o.loadFailed?.test(s.output())) {
      await stop();
      throw new Error(`${o.what} could not load a zone:\n${s.output()}`);
    }
    for (const apex of pending) {
      if (await answersAuthoritatively(o.host, o.port, apex, 200)) pending.delete(apex);
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `${o.what} did not answer SOA for ${[...pending].join(', ')} on ${o.host}:${o.port} in time:\n${s.output()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${o.what} has no process id`);
  return { host: o.host, port: o.port, pid, log: s.output, stop };
}

/** Query types the benchmark's mix uses, by name. */
const QTYPES: Record<string, number> = { A: 1, NS: 2, SOA: 6, TXT: 16, AAAA: 28, SRV: 33 };

/** A question section (name as written, type, class IN), as a client encodes it. */
export function questionBytes(name: string, type: string): Buffer {
  const qtype = QTYPES[type.toUpperCase()];
  if (qtype === undefined) throw new Error(`questionBytes: unknown query type ${type}`);
  const labels = zoneName(name)
    .split('.')
    .filter(Boolean)
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(qtype, 1);
  tail.writeUInt16BE(1, 3);
  return Buffer.concat([...labels, tail]);
}

/** A query with one question; `flags` 0 is a plain query, no recursion desired. */
export function queryPacket(id: number, name: string, type: string, flags = 0): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  return Buffer.concat([header, questionBytes(name, type)]);
}

/** Sends `query` over UDP and resolves with the reply carrying its ID, or undefined on timeout. */
export function exchange(
  host: string,
  port: number,
  query: Buffer,
  timeoutMs: number,
): Promise<Buffer | undefined> {
  const id = query.readUInt16BE(0);
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const done = (reply: Buffer | undefined) => {
      clearTimeout(timer);
      sock.close();
      resolve(reply);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('error', () => done(undefined)); // e.g. ICMP port unreachable before it binds
    sock.on('message', (msg) => {
      if (msg.length >= 12 && msg.readUInt16BE(0) === id) done(msg);
    });
    // Connected, so an ICMP port-unreachable surfaces as an 'error' at once.
    sock.connect(port, host, () => sock.send(query));
  });
}

/**
 * One UDP query for `name` SOA, hand-encoded so waiting for a server needs no dig:
 * true when a reply with QR and AA set and RCODE NOERROR arrives in time (Knot
 * answers SERVFAIL/REFUSED until the zone is loaded).
 */
export async function answersAuthoritatively(
  host: string,
  port: number,
  name: string,
  timeoutMs: number,
): Promise<boolean> {
  const query = queryPacket(Math.floor(Math.random() * 0x10000), name, 'SOA');
  const reply = await exchange(host, port, query, timeoutMs);
  if (reply === undefined) return false;
  const flags = reply.readUInt16BE(2);
  return (flags & 0x8000) !== 0 && (flags & 0x0400) !== 0 && (flags & 0x000f) === 0;
}
