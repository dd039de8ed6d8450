// A plain HTTPS client of a member cluster, as any client reaches it: the kubeconfig's URL,
// its CA, its bearer token, a fresh connection per request (so a fault meets it at once).
import { request } from 'node:https';
import { jsonOrText, readText } from '../../src/localfed/loopback-http.ts';
import type { MemberCluster } from '../../src/localfed/member.ts';

export interface Answer {
  status: number;
  body: unknown;
}

/** One request; rejects with the socket error (ECONNREFUSED, ECONNRESET, a timeout). */
export function memberGet(
  m: MemberCluster,
  path: string,
  opts: { token?: string; timeoutMs?: number } = {},
): Promise<Answer> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = request(
      `${m.url}${path}`,
      {
        ca: m.caCert,
        agent: false,
        headers: { authorization: `Bearer ${opts.token ?? m.token}`, accept: 'application/json' },
      },
      (res) => {
        readText(res).then(
          (text) => resolve({ status: res.statusCode ?? 0, body: jsonOrText(text) }),
          reject,
        );
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end();
  });
}

export interface WatchEvent {
  type: string;
  object: {
    metadata?: { name?: string; resourceVersion?: string };
    code?: number;
    reason?: string;
  };
}

/** An open watch: what it has received, and how it ended (if it has). */
export class MemberWatch {
  readonly events: WatchEvent[] = [];
  status = 0;
  /** 'end' (the server finished it), 'cut' (the connection broke), or undefined while open. */
  ended: 'end' | 'cut' | undefined;
  readonly #destroy: () => void;
  readonly opened: Promise<void>;

  constructor(m: MemberCluster, path: string) {
    let onOpen: () => void = () => {};
    this.opened = new Promise<void>((resolve) => {
      onOpen = resolve;
    });
    const req = request(`${m.url}${path}`, {
      ca: m.caCert,
      agent: false,
      headers: { authorization: `Bearer ${m.token}`, accept: 'application/json' },
    });
    req.on('response', (res) => {
      this.status = res.statusCode ?? 0;
      onOpen();
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
          const line = buffered.slice(0, i).trim();
          buffered = buffered.slice(i + 1);
          if (line) this.events.push(JSON.parse(line) as WatchEvent);
        }
      });
      res.on('end', () => {
        this.ended ??= 'end';
      });
      res.on('error', () => {
        this.ended = 'cut';
      });
      res.on('close', () => {
        if (!res.complete) this.ended = 'cut';
        else this.ended ??= 'end';
      });
    });
    req.on('error', () => {
      this.ended = 'cut';
      onOpen();
    });
    req.end();
    this.#destroy = () => req.destroy();
  }

  close(): void {
    this.#destroy();
  }
}
