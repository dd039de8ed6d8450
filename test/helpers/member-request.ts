// One JSON request to a member cluster as any client makes it: the kubeconfig's URL and
// CA, a bearer token (the admin's unless given), a connection of its own.
import { request } from 'node:https';
import type { MemberCluster } from '../../src/localfed/member.ts';

export interface Reply {
  status: number;
  /** The parsed JSON body, or the text when it is not JSON. */
  body: unknown;
}

export function memberRequest(
  m: MemberCluster,
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${m.url}${path}`,
      {
        method,
        ca: m.caCert,
        agent: false,
        timeout: opts.timeoutMs ?? 10_000,
        headers: {
          authorization: `Bearer ${opts.token ?? m.token}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // Not JSON: the text is the answer.
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in time`)));
    req.on('error', reject);
    req.end(payload);
  });
}
