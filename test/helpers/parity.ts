// The parity test's two servers and how it compares their answers: the same request to
// the simulator and to a real kube-apiserver, and the differences between the answers
// as lines (status, the headers clients read, framing, and the body's shape).
import { expect } from 'vitest';
import { type ApiTarget, type RawRequest, type RawResponse, rawCall } from './raw-api.ts';
import { shapeDiff } from './shape-diff.ts';

export type Api = 'sim' | 'real';
export interface Pair {
  sim: RawResponse;
  real: RawResponse;
}

/** A request, or one built per server (resourceVersions and names the server chose). */
export type PairRequest = RawRequest | ((api: Api) => RawRequest);

/** The simulator and a real kube-apiserver, asked the same things. */
export class ServerPair {
  readonly targets: Readonly<Record<Api, ApiTarget>>;

  constructor(targets: Record<Api, ApiTarget>) {
    this.targets = targets;
  }

  async both(r: PairRequest): Promise<Pair> {
    const req = (api: Api) => (typeof r === 'function' ? r(api) : r);
    const [sim, real] = await Promise.all([
      rawCall(this.targets.sim, req('sim')),
      rawCall(this.targets.real, req('real')),
    ]);
    return { sim, real };
  }

  /** Sends the request to both and expects exactly `listed` differences (none by default). */
  async same(
    r: PairRequest,
    listed: string[] = [],
    body?: (r: RawResponse) => unknown,
  ): Promise<Pair> {
    const p = await this.both(r);
    const stream = (typeof r === 'function' ? r('sim') : r).path.includes('watch=1');
    expect.soft(differences(p, body, stream)).toEqual(listed);
    return p;
  }
}

/** The pair a suite's beforeAll started; throws when it did not start. */
export function startedPair(pair: ServerPair | undefined): ServerPair {
  if (!pair) throw new Error('the servers did not start');
  return pair;
}

const HEADERS = ['content-type', 'warning', 'retry-after'];

function framing(r: RawResponse): string {
  if (r.headers['transfer-encoding']) return `transfer-encoding ${r.headers['transfer-encoding']}`;
  return r.headers['content-length'] !== undefined ? 'content-length' : 'none';
}

/**
 * Real objects carry managedFields (server-side apply's bookkeeping), which the
 * simulator does not keep (a listed difference, asserted on its own); names made from
 * generateName end in five random characters.
 */
export function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (typeof v === 'string') return v.replace(/^(gen-)[a-z0-9]{5}$/, '$1*****');
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (k !== 'managedFields') out[k] = normalize(x);
  return out;
}

interface WatchEvent {
  type: string;
  object: unknown;
}

function parseEvents(r: RawResponse): WatchEvent[] {
  return r.text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as WatchEvent);
}

/**
 * One watch body as its events, bookmarks left out: kube-apiserver's watch cache sends
 * one about 2 s before timeoutSeconds on its own clock (k8s.io/apiserver cacher
 * nextBookmarkTime), which the simulator does not (a listed difference).
 */
export function events(r: RawResponse): unknown[] {
  return parseEvents(r).filter((e) => e.type !== 'BOOKMARK');
}

/** The initial events of a sendInitialEvents watch, up to and including the bookmark that ends them. */
export function initialEvents(r: RawResponse): unknown[] {
  const all = parseEvents(r);
  const end = all.findIndex((e) => e.type === 'BOOKMARK');
  return end < 0 ? all : all.slice(0, end + 1);
}

/** A Table watch's events with server-chosen cells masked (columns come in the first event). */
export function tableEvents(r: RawResponse): unknown[] {
  const all = events(r) as { object: { columnDefinitions?: unknown } }[];
  const columns = all[0]?.object.columnDefinitions;
  return all.map((e) => {
    const withColumns = { ...e.object, columnDefinitions: columns };
    const masked = maskedTable({ ...r, json: withColumns }) as object;
    return { ...e, object: { ...masked, columnDefinitions: e.object.columnDefinitions } };
  });
}

/** A Table with the cells that hold server-chosen values (ages, allocated IPs) masked. */
export function maskedTable(r: RawResponse): unknown {
  const t = r.json as {
    columnDefinitions?: { name: string }[];
    rows?: { cells: unknown[] }[];
  };
  const masked = new Set(['Age', 'Cluster-IP']);
  const cols = t.columnDefinitions ?? [];
  for (const row of t.rows ?? []) {
    row.cells = row.cells.map((c, i) => (masked.has(cols[i]?.name ?? '') ? typeof c : c));
  }
  return t;
}

/** Every difference between the two answers, one line each; [] when they agree. */
export function differences(
  p: Pair,
  body: (r: RawResponse) => unknown = (r) => r.json,
  stream = false,
): string[] {
  const out: string[] = [];
  if (p.sim.status !== p.real.status) out.push(`status: sim ${p.sim.status} real ${p.real.status}`);
  for (const h of HEADERS) {
    const a = JSON.stringify(p.sim.headers[h]);
    const b = JSON.stringify(p.real.headers[h]);
    if (a !== b) out.push(`header ${h}: sim ${a} real ${b}`);
  }
  // Framing is compared for streams and errors. A real object or list is longer by its
  // managedFields, so past Go's 2048-byte buffer it is chunked where the simulator's is not.
  const ok = p.real.status < 300 && p.sim.status < 300;
  if ((stream || !ok) && framing(p.sim) !== framing(p.real))
    out.push(`framing: sim ${framing(p.sim)} real ${framing(p.real)}`);
  const a = bodyOf(p.sim, body);
  const b = bodyOf(p.real, body);
  if (a === undefined || b === undefined) {
    if (p.sim.text !== p.real.text)
      out.push(`text: sim ${JSON.stringify(p.sim.text)} real ${JSON.stringify(p.real.text)}`);
    return out;
  }
  out.push(...shapeDiff(normalize(a), normalize(b), 'body'));
  return out;
}

function bodyOf(r: RawResponse, body: (r: RawResponse) => unknown): unknown {
  try {
    return body(r);
  } catch {
    return undefined; // not the JSON the caller expected: compared as text
  }
}

/** A Status's causes with their messages as compared values, in a stable order. */
export function withCauses(r: RawResponse): unknown {
  const j = r.json as { kind?: string; details?: { causes?: Record<string, string>[] } };
  // A refusal without causes (400) is compared by its message.
  if (j?.kind === 'Status' && !j.details?.causes)
    return { ...j, text: (j as { message?: string }).message };
  if (j?.kind !== 'Status' || !j.details?.causes) return j;
  const causes = j.details.causes
    .map((c) => ({ field: c.field, reason: c.reason, text: c.message }))
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return { ...j, message: undefined, details: { ...j.details, causes } };
}
