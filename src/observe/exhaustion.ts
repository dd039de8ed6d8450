// Running out of file descriptors, anywhere in the process: told apart from other
// failures, counted by where it happened (fedgate_resource_exhausted_total), and
// logged at most once a minute per place, so a flood leaves a handful of lines and
// the count, never a line per refused socket.
//
// Accepting: on Linux, Node 24 (libuv 1.52) never reports a failed accept(2) to
// JavaScript. libuv keeps one spare descriptor; on EMFILE or ENFILE it closes it,
// accepts every pending connection and closes each at once, then takes the spare
// back ("shed load"), and the server goes on listening: nothing to count, and
// nothing left for the connections already accepted. So the listeners shed first,
// and visibly: a connection accepted onto one of the last `reserve` descriptors is
// closed at once and counted. Descriptors are handed out lowest first, so one that
// high means every lower one is taken: client connections alone can never take the
// reserve, which stays for upstream connections, watches, health probes and the
// admin listener (/metrics and /healthz keep answering through a flood).

import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { FedgateError } from '../errors.ts';
import type { Logger } from './log.ts';

/** Where the process can run out of descriptors: the `resource` label. */
export const EXHAUSTED_RESOURCES = [
  'http_accept',
  'dns_tcp_accept',
  'upstream_connect',
  'watch',
  'health_probe',
] as const;

export type ExhaustedResource = (typeof EXHAUSTED_RESOURCES)[number];

/** What each place does about it, for the log line. */
const CONSEQUENCE: Readonly<Record<ExhaustedResource, string>> = {
  http_accept: 'new proxy connections are closed at once',
  dns_tcp_accept: 'new DNS TCP connections are closed at once (UDP still answers)',
  upstream_connect:
    'proxied requests that need a new upstream connection get 503 RESOURCE_EXHAUSTED',
  watch: 'a member API watch could not connect; it tries again with its backoff',
  health_probe: 'a health probe could not open its socket; it counts for nothing and runs again',
};

/** What components that open sockets are given: they say when descriptors ran out. */
export interface ExhaustionSink {
  note(resource: ExhaustedResource, err: unknown): void;
}

/** What a listener is given: the sink, and whether an accepted descriptor may be kept. */
export interface AcceptGuard extends ExhaustionSink {
  /** false when descriptor `fd` is one of the reserved last ones. */
  admits(fd: number): boolean;
}

/**
 * EMFILE (this process's limit) or ENFILE (the system's table), on the error or
 * anywhere in its `cause` chain (undici's fetch wraps connect errors in a
 * TypeError) or an AggregateError's errors, or our own RESOURCE_EXHAUSTED.
 * Not ENOBUFS or ENOMEM: those are kernel memory (socket buffers, a full qdisc on
 * a UDP send), transient and not about descriptors; they keep their own handling
 * (a connect failure is retried elsewhere, a UDP answer is lost).
 */
export function isDescriptorExhaustion(err: unknown): boolean {
  return exhaustionCode(err) !== undefined;
}

/** EMFILE, ENFILE or RESOURCE_EXHAUSTED, as found by isDescriptorExhaustion. */
export function exhaustionCode(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  // Bounded: a cause chain is short, and a cycle is not followed twice.
  while (queue.length > 0 && seen.size < 16) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (code === 'EMFILE' || code === 'ENFILE' || code === 'RESOURCE_EXHAUSTED') return code;
    queue.push((e as { cause?: unknown }).cause);
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) queue.push(...errors);
  }
  return undefined;
}

/** The soft limit on open descriptors (Linux: /proc/self/limits); undefined where unknown or unlimited. */
export function descriptorLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const line = readFileSync(limits, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    const n = Number(soft);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Descriptors accepted connections may not take: a sixteenth of the limit, at least
 * 32 and at most 1024, and never more than a quarter of a small limit.
 */
export function acceptReserve(limit: number): number {
  return Math.max(1, Math.min(1024, Math.max(32, Math.floor(limit / 16)), Math.floor(limit / 4)));
}

/** One log line per resource and minute at most. */
export const EXHAUSTION_LOG_INTERVAL_MS = 60_000;

export interface ExhaustionTrackerOptions {
  readonly log: Logger;
  readonly now?: () => number;
  /** Default: read from /proc/self/limits; undefined there: no accept reserve. */
  readonly descriptorLimit?: number | undefined;
  readonly logIntervalMs?: number;
}

interface Kind {
  count: number;
  /** When the last line was logged. */
  loggedAt: number | undefined;
  /** Notes since then that were not logged. */
  suppressed: number;
}

/** One per process: every component notes its exhaustion here; metrics read the counts. */
export class ExhaustionTracker implements AcceptGuard {
  /** The soft descriptor limit, when known. */
  readonly limit: number | undefined;
  /** Descriptors kept from accepted connections (0 without a known limit). */
  readonly reserve: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #interval: number;
  readonly #kinds = new Map<ExhaustedResource, Kind>();

  constructor(opts: ExhaustionTrackerOptions) {
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#interval = opts.logIntervalMs ?? EXHAUSTION_LOG_INTERVAL_MS;
    this.limit = 'descriptorLimit' in opts ? opts.descriptorLimit : descriptorLimit();
    this.reserve = this.limit === undefined ? 0 : acceptReserve(this.limit);
  }

  admits(fd: number): boolean {
    return this.limit === undefined || fd < 0 || fd < this.limit - this.reserve;
  }

  note(resource: ExhaustedResource, err: unknown): void {
    let k = this.#kinds.get(resource);
    if (!k) {
      k = { count: 0, loggedAt: undefined, suppressed: 0 };
      this.#kinds.set(resource, k);
    }
    k.count++;
    const now = this.#now();
    if (k.loggedAt !== undefined && now - k.loggedAt < this.#interval) {
      k.suppressed++;
      return;
    }
    this.#log.error(
      {
        resource,
        code: exhaustionCode(err) ?? (err as { code?: unknown } | undefined)?.code,
        detail: err instanceof Error ? err.message : String(err),
        suppressed: k.suppressed,
        total: k.count,
        ...(this.limit !== undefined ? { limit: this.limit, reserve: this.reserve } : {}),
      },
      `out of file descriptors: ${CONSEQUENCE[resource]}`,
    );
    k.loggedAt = now;
    k.suppressed = 0;
  }

  /** Times each resource ran out, since start (resources that never did are absent). */
  counts(): ReadonlyMap<ExhaustedResource, number> {
    return new Map([...this.#kinds].map(([r, k]) => [r, k.count]));
  }
}

/** Anything with accept semantics: net.Server, http.Server, the HTTP/2 TLS server. */
type Listening = Pick<EventEmitter, 'on' | 'prependListener'>;

/**
 * Keeps a listening server up through descriptor exhaustion: a connection accepted
 * onto a reserved descriptor is closed before any other 'connection' listener runs
 * (they see it destroyed), counted as `resource`; and the server's 'error' events are always handled, never left to
 * throw. Node emits one for a failed accept when libuv reports it (not libuv 1.52
 * on Linux, which sheds silently; other platforms and versions may): counted when
 * it is exhaustion, logged otherwise; either way the server keeps listening.
 * Call once the server listens, so its own listen errors still reach the caller.
 */
export function guardAccept(
  server: Listening,
  resource: 'http_accept' | 'dns_tcp_accept',
  guard: AcceptGuard,
  log: Logger,
): void {
  server.prependListener(
    'connection',
    (socket: { _handle?: { fd?: number } | null; destroy(): void }) => {
      const fd = socket._handle?.fd;
      if (fd === undefined || guard.admits(fd)) return;
      socket.destroy();
      guard.note(
        resource,
        new FedgateError(
          'RESOURCE_EXHAUSTED',
          `connection accepted onto descriptor ${fd}, one of the last reserved for connections already accepted`,
        ),
      );
    },
  );
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (isDescriptorExhaustion(err)) guard.note(resource, err);
    else log.warn({ err, resource }, 'listener error; still listening');
  });
}
