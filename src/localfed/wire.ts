// The HTTP side of the simulated API server: reading request bodies and writing
// answers the way kube-apiserver (Go's net/http) frames them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, errors } from './status.ts';
import type { IncludeObject } from './table.ts';

export function includeObject(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

export function isTrue(v: string | null): boolean {
  return v === '1' || v === 'true';
}

const MAX_BODY_BYTES = 3 * 1024 * 1024;

export async function readJson(req: IncomingMessage, optional = false): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new ApiError(
        413,
        'RequestEntityTooLarge',
        'Request entity too large: limit is 3145728',
      );
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') {
    if (optional) return undefined;
    throw errors.badRequest('the request body is empty');
  }
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (ct && !ct.endsWith('json')) throw errors.unsupportedMediaType(['application/json']);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
  }
}

/**
 * Go's HTTP server, kube-apiserver's, sends a Content-Length when the whole answer fits
 * in its 2048-byte buffer before the handler returns, and chunks anything longer.
 */
const GO_CHUNKING_THRESHOLD = 2048;

export function sendBody(
  res: ServerResponse,
  code: number,
  contentType: string,
  text: string,
  extra: Record<string, string> = {},
): void {
  const length = Buffer.byteLength(text);
  const headers: Record<string, string | number> = { 'Content-Type': contentType, ...extra };
  if (length <= GO_CHUNKING_THRESHOLD) headers['Content-Length'] = length;
  res.writeHead(code, headers);
  res.end(text);
}

export function sendJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  extra: Record<string, string> = {},
): void {
  sendBody(res, code, 'application/json', JSON.stringify(body), {
    'Cache-Control': 'no-cache, private',
    ...extra,
  });
}

export function sendNotFoundPage(res: ServerResponse): void {
  sendBody(res, 404, 'text/plain; charset=utf-8', '404 page not found\n', {
    'X-Content-Type-Options': 'nosniff',
  });
}
