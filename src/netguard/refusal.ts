// What the loopback-only guard says when it refuses a destination: the address, the
// port, and who asked, as a FedgateError with code NON_LOOPBACK_REFUSED.
import type { LookupFunction } from 'node:net';
import { isIPv4, isIPv6 } from 'node:net';
import { FedgateError } from '../errors.ts';
import { hostPort } from '../host-port.ts';
import { isLoopbackAddress } from './address.ts';

export interface Destination {
  protocol: 'TCP' | 'UDP';
  /** What the caller named: an IP literal or a host name. */
  host: string;
  port: unknown;
  /** Where the caller's code asked for it (captured when it asked, not when refused). */
  caller: string;
}

// The guard's own modules, as stack frames name them (a file URL, or a path under vitest).
const GUARD_FILES = ['loopback.ts', 'refusal.ts'].flatMap((f) => {
  const url = new URL(f, import.meta.url);
  return [`${url.href}:`, `${url.pathname}:`];
});

/** The first stack frame outside this guard and Node's internals: the code that dialed. */
export function callerFrame(): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 50;
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, callerFrame);
  Error.stackTraceLimit = limit;
  for (const line of (holder.stack ?? '').split('\n').slice(1)) {
    const frame = line.trim().replace(/^at /, '');
    if (/(^|\()node:/.test(frame) || !/:\d+:\d+\)?$/.test(frame)) continue;
    if (GUARD_FILES.some((f) => frame.includes(f))) continue;
    return frame;
  }
  return 'an unknown caller (no frame outside Node and the guard)';
}

/** `ip:port` as dialed; the port is whatever the caller passed, maybe nothing. */
const dialed = (ip: string, port: unknown): string =>
  hostPort({ host: ip, port: port === undefined || port === null ? undefined : String(port) });

/** The guard's error for `dest`; `resolved` is the address a name resolved to. */
export function refusal(dest: Destination, resolved?: string): FedgateError {
  const what = dest.protocol === 'TCP' ? 'a TCP connection' : 'UDP';
  const to =
    resolved === undefined
      ? dialed(dest.host, dest.port)
      : `${dialed(resolved, dest.port)} (${dest.host} resolved to it)`;
  const err = new FedgateError(
    'NON_LOOPBACK_REFUSED',
    `loopback-only guard refused ${what} to ${to} from ${dest.caller}: tests and benchmarks may only reach 127.0.0.0/8 and ::1`,
  );
  return Object.assign(err, { address: resolved ?? dest.host, port: dest.port });
}

/** The first resolved address outside loopback, if any; entries that are not IPs are left to Node. */
function outsideLoopback(address: unknown): string | undefined {
  const list = Array.isArray(address) ? address.map((a) => a?.address) : [address];
  return list.find(
    (a) => typeof a === 'string' && (isIPv4(a) || isIPv6(a)) && !isLoopbackAddress(a),
  );
}

/**
 * `lookup` with its answers checked: a result outside loopback (any one of them,
 * for `all: true`, as Happy Eyeballs asks) becomes a lookup error carrying the
 * guard's refusal, so the caller's socket fails before it dials.
 */
export function guardedLookup(lookup: LookupFunction, dest: Destination): LookupFunction {
  type Callback = (err: Error | null, ...rest: unknown[]) => void;
  return function guarded(this: unknown, hostname: string, options: unknown, callback?: unknown) {
    const cb = (typeof options === 'function' ? options : callback) as Callback;
    const answer: Callback = (err, ...rest) => {
      if (err) return cb(err);
      const outside = outsideLoopback(rest[0]);
      if (outside !== undefined) return cb(refusal(dest, outside));
      cb(null, ...rest);
    };
    const call = lookup as unknown as (...args: unknown[]) => void;
    if (typeof options === 'function') call.call(this, hostname, answer);
    else call.call(this, hostname, options, answer);
  } as LookupFunction;
}
