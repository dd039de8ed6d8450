// JSON requests straight to a kube-apiserver (not through the member's relay, so they
// work while a fault is on), mapping a kind to its path with localfed's resource table
// and a failure Status to the same ApiError the simulator throws.
import { Agent, request } from 'node:https';
import { jsonOrText, readText } from './loopback-http.ts';
import type { KubeObject } from './objects.ts';
import { apiVersionOf, type ResourceType, typeOfKind } from './resources.ts';
import { ApiError, type KubeStatus } from './status.ts';

export interface KubeResponse {
  status: number;
  body: unknown;
}

const TIMEOUT_MS = 30_000;

export class KubeRest {
  readonly url: string;
  readonly #token: string;
  readonly #agent: Agent;

  constructor(url: string, token: string, ca: string) {
    this.url = url;
    this.#token = token;
    this.#agent = new Agent({ keepAlive: true, ca, ALPNProtocols: ['http/1.1'] });
  }

  close(): void {
    this.#agent.destroy();
  }

  /** Any answer, as status and parsed JSON (text when it is not JSON). */
  send(method: string, path: string, body?: unknown): Promise<KubeResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.url}${path}`,
        {
          method,
          agent: this.#agent,
          headers: {
            authorization: `Bearer ${this.#token}`,
            accept: 'application/json',
            ...(payload === undefined
              ? {}
              : {
                  'content-type': 'application/json',
                  'content-length': Buffer.byteLength(payload),
                }),
          },
          timeout: TIMEOUT_MS,
        },
        (res) => {
          readText(res).then(
            (text) => resolve({ status: res.statusCode ?? 0, body: jsonOrText(text) }),
            reject,
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** The body of a 2xx answer; any other throws ApiError (404 too: callers that expect it check). */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const r = await this.send(method, path, body);
    if (r.status >= 200 && r.status < 300) return r.body;
    throw toApiError(r, `${method} ${path}`);
  }
}

/** The ApiError for a failed answer: its Status when it carries one. */
export function toApiError(r: KubeResponse, what: string): ApiError {
  const s = r.body as Partial<KubeStatus> | string;
  if (typeof s === 'object' && s !== null && s.kind === 'Status') {
    return new ApiError(r.status, s.reason ?? '', s.message ?? what, s.details);
  }
  return new ApiError(r.status, 'Unknown', `${what}: HTTP ${r.status}: ${String(s).slice(0, 200)}`);
}

export function mustType(apiVersion: string, kind: string): ResourceType {
  const t = typeOfKind(apiVersion, kind);
  if (!t) throw new Error(`localfed does not serve ${kind} in ${apiVersion}`);
  return t;
}

/** `/api/v1/namespaces/ns/services[/name]` and the like. */
export function resourcePath(t: ResourceType, namespace?: string, name?: string): string {
  const base = t.group ? `/apis/${apiVersionOf(t)}` : `/api/${t.version}`;
  const ns = t.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const one = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `${base}${ns}/${t.plural}${one}`;
}

export function isKubeObject(v: unknown): v is KubeObject {
  return typeof v === 'object' && v !== null && 'metadata' in v;
}
