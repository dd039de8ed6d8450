// RequestMirror: a copy of a request sent to another federated service, fire and
// forget. The copy is the request head only (method, path, the headers the real
// request goes upstream with, Content-Length 0): a body is never copied, since
// teeing it would hold the real request's body to the mirror's pace or buffer it.
// It never delays or fails the real request: it is sent after the real request is
// under way, on its own undici Agent, its answer drained and dropped, its failure
// counted and forgotten. At most MAX_MIRRORS_IN_FLIGHT at once per process; past
// that a copy is dropped (counted).
import { Agent } from 'undici';

/** How a mirrored copy ended (`fedgate_http_mirrored_requests_total{result}`). */
export type MirrorResult = 'sent' | 'failed' | 'dropped';

export const MAX_MIRRORS_IN_FLIGHT = 64;
/** A mirror that takes longer is given up: it holds a place meanwhile. */
const MIRROR_TIMEOUT_MS = 10_000;

/** Fields a body-less copy must not carry. */
const BODY_FIELDS = new Set(['content-length', 'transfer-encoding', 'expect', 'trailer']);

export class Mirrors {
  #inFlight = 0;
  readonly #agent = new Agent({
    connections: 16,
    headersTimeout: MIRROR_TIMEOUT_MS,
    bodyTimeout: MIRROR_TIMEOUT_MS,
  });

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Sends a copy to `origin` (`http://address:port`); `done` hears how it ended. */
  send(
    origin: string,
    method: string,
    path: string,
    headers: readonly string[],
    done: (r: MirrorResult) => void,
  ): void {
    if (this.#inFlight >= MAX_MIRRORS_IN_FLIGHT) {
      done('dropped');
      return;
    }
    const fields: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] ?? '';
      if (!BODY_FIELDS.has(name.toLowerCase())) fields.push(name, headers[i + 1] ?? '');
    }
    this.#inFlight++;
    const signal = AbortSignal.timeout(MIRROR_TIMEOUT_MS);
    this.#agent
      .request({ origin, method, path, headers: fields, signal })
      .then(async (r) => {
        await r.body.dump();
        done('sent');
      })
      .catch(() => done('failed'))
      .finally(() => this.#inFlight--);
  }

  async close(): Promise<void> {
    await this.#agent.destroy();
  }
}
