// A raw HTTPS client for a Kubernetes API server, simulated or real: one request or
// one watch, with the status, headers and body exactly as they came, no client library
// in between. The parity test sends the same requests to both servers with it.
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Where an API server listens and how to reach it as a given user. */
export interface ApiTarget {
  url: string;
  ca: string;
  token: string;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface RawRequest {
  method?: string;
  path: string;
  /** A string or Buffer goes as is; anything else as JSON. */
  body?: unknown;
  contentType?: string;
  accept?: string;
  /** null sends no Authorization header; undefined sends the target's token. */
  token?: string | null;
  timeoutMs?: number;
}

function headersFor(
  t: ApiTarget,
  r: RawRequest,
): { headers: Record<string, string>; payload?: Buffer } {
  const headers: Record<string, string> = { Accept: r.accept ?? 'application/json' };
  const token = r.token === undefined ? t.token : r.token;
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (r.body === undefined) return { headers };
  const payload = Buffer.isBuffer(r.body)
    ? r.body
    : Buffer.from(typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
  headers['Content-Type'] = r.contentType ?? 'application/json';
  headers['Content-Length'] = String(payload.length);
  return { headers, payload };
}

/** One request; resolves with the whole answer (a watch must carry timeoutSeconds). */
export function rawCall(t: ApiTarget, r: RawRequest): Promise<RawResponse> {
  const u = new URL(t.url);
  const { headers, payload } = headersFor(t, r);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: u.hostname,
        port: u.port,
        method: r.method ?? 'GET',
        path: r.path,
        headers,
        ca: t.ca,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: parseJson(text),
          });
        });
      },
    );
    req.setTimeout(r.timeoutMs ?? 15_000, () =>
      req.destroy(new Error(`${r.path}: client timeout`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A watch body: one JSON event per line. */
export function watchEvents(text: string): { type: string; object: Record<string, unknown> }[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { type: string; object: Record<string, unknown> });
}
