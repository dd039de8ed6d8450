// The request conventions of the Gateway API conformance suite's backend (echo-basic,
// sigs.k8s.io/gateway-api/conformance/echo-basic) that its cases rely on, so the
// sample backends can stand in for it: `?delay=DURATION` answers late,
// `X-Echo-Set-Header: name:value,…` names headers to answer with, and `/retry/…` is the
// flaky backend of the retry case (fails the first `succeedAfter` attempts of a `uuid`).
import type { OutgoingHttpHeaders } from 'node:http';

/** The longest ?delay honoured, as for /delay/MS. */
export const MAX_ECHO_DELAY_MS = 60_000;
/** Retry attempts remembered at most (uuids), the oldest forgotten first. */
const MAX_RETRY_IDS = 10_000;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/**
 * A Go duration of one number and unit (`500ms`, `1s`, `1.5s`, `2m`: the forms the
 * cases send), in ms capped at MAX_ECHO_DELAY_MS; undefined when not one.
 */
export function echoDelayMs(text: string): number | undefined {
  const m = DURATION.exec(text);
  const unit = UNIT_MS[m?.[2] ?? ''];
  if (!m || unit === undefined) return undefined;
  return Math.min(Number(m[1]) * unit, MAX_ECHO_DELAY_MS);
}

/**
 * The answer headers X-Echo-Set-Header asks for: `name:value` pairs split on commas,
 * a name given twice has its values joined with a comma (as echo-basic does).
 */
export function echoSetHeaders(asked: string | string[] | undefined): OutgoingHttpHeaders {
  const out: Record<string, string> = {};
  for (const list of asked === undefined ? [] : [asked].flat()) {
    for (const pair of list.split(',')) {
      const trimmed = pair.trim();
      const colon = trimmed.indexOf(':');
      const name = (colon < 0 ? trimmed : trimmed.slice(0, colon)).trim();
      const value = colon < 0 ? '' : trimmed.slice(colon + 1).trim();
      // A name Node would refuse to send is dropped rather than failing the answer.
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) continue;
      const key = Object.keys(out).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
      out[key] = out[key] === undefined ? value : `${out[key]},${value}`;
    }
  }
  return out;
}

/** What a /retry/… request gets: a bad request, a failure (a status, or a reset), or the echo. */
export type RetryOutcome =
  | { kind: 'bad'; message: string }
  | { kind: 'fail'; status: number | undefined }
  | { kind: 'echo' };

/**
 * Counts attempts per service and uuid, not per pod: echo-basic counts in its one
 * replica, and a federation's service has a pod in each cluster, so a retry landing
 * on the other pod still counts as the next attempt. The uuids are the client's,
 * fresh for each request it means to retry.
 */
export class RetrySimulation {
  readonly #attempts = new Map<string, number>();

  /** One attempt of `query` (uuid, succeedAfter, responseCode) on `service`. */
  attempt(service: string, query: URLSearchParams): RetryOutcome {
    const uuid = query.get('uuid');
    if (!uuid) return { kind: 'bad', message: 'uuid is required' };
    const succeedAfter = Number.parseInt(query.get('succeedAfter') ?? '', 10);
    if (!Number.isFinite(succeedAfter)) return { kind: 'bad', message: 'succeedAfter is required' };
    const key = `${service}\0${uuid}`;
    const made = this.#attempts.get(key) ?? 0;
    if (made >= succeedAfter) return { kind: 'echo' };
    this.#attempts.delete(key);
    this.#attempts.set(key, made + 1);
    if (this.#attempts.size > MAX_RETRY_IDS) {
      const oldest = this.#attempts.keys().next().value;
      if (oldest !== undefined) this.#attempts.delete(oldest);
    }
    const code = Number.parseInt(query.get('responseCode') ?? '', 10);
    return { kind: 'fail', status: code >= 200 && code < 600 ? code : undefined };
  }
}
