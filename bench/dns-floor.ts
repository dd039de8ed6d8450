// The bare Node floor for the DNS benchmark: the ceiling for fedgate's DNS in one
// Node process (bench/dns-floor-server.ts). Its answers are fedgate's own, taken
// byte for byte once before the load, so it answers the mix exactly as fedgate does.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Query } from './dns-mix.ts';
import { type DnsProcess, exchange, queryPacket, startDnsProcess } from './dns-process.ts';

const SERVER = new URL('./dns-floor-server.ts', import.meta.url).pathname;

export interface CachedAnswer {
  /** The question section a client sends (name as written, type, class IN). */
  question: Buffer;
  /** The whole response, as the server sent it. */
  answer: Buffer;
}

/** Asks `server` each query once (RD set, as dnsperf and dig send) and keeps its response. */
export async function cacheAnswers(
  server: { host: string; port: number },
  queries: Query[],
): Promise<CachedAnswer[]> {
  const out: CachedAnswer[] = [];
  for (const [i, q] of queries.entries()) {
    const query = queryPacket(i + 1, q.name, q.type, 0x0100);
    const answer = await exchange(server.host, server.port, query, 2_000);
    if (answer === undefined || (answer.readUInt16BE(2) & 0x000f) !== 0) {
      throw new Error(`no NOERROR answer to ${q.name} ${q.type} to cache for the floor`);
    }
    out.push({ question: query.subarray(12), answer });
  }
  return out;
}

/** Starts the floor on host:port with these answers; resolves once it answers every apex's SOA. */
export async function startFloor(opts: {
  dir: string;
  host?: string;
  port: number;
  answers: CachedAnswer[];
  /** SOA questions among the answers, to wait for (as for every other server). */
  apexes: string[];
}): Promise<DnsProcess> {
  const host = opts.host ?? '127.0.0.1';
  const file = join(opts.dir, 'floor-answers.json');
  const json = opts.answers.map((a) => ({
    question: a.question.toString('hex'),
    answer: a.answer.toString('hex'),
  }));
  await writeFile(file, JSON.stringify(json));
  return startDnsProcess({
    what: 'the bare Node floor',
    bin: process.execPath,
    args: [SERVER, host, String(opts.port), file],
    host,
    port: opts.port,
    apexes: opts.apexes,
  });
}
