// One probe of one target: a TCP connect or an HTTP GET, and short failure texts.
// Each resolves to undefined when the target passes, a reason when it answered
// wrongly, and throws when it could not be reached.
import { connect } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { type Agent, request } from 'undici';
import { hostPort } from '../host-port.ts';
import type { ActiveCheckConfig, ProbeTarget } from './targets.ts';

export const USER_AGENT = 'fedgate-health-check';

/**
 * A service's backend TLS settings, as the wiring hands them to the checks (the
 * proxy's BackendTlsContext has this shape): probes go over TLS with the same
 * options the proxy dials with. `problem`: the service names a profile that does
 * not exist, so it is not probed at all.
 */
export interface ProbeTls {
  readonly key: string;
  readonly options: ConnectionOptions;
  readonly problem?: string | undefined;
}

/** undefined when the status is expected, else why not. `agent` dials TLS when `tls` is given. */
export async function httpProbe(
  agent: Agent,
  t: ProbeTarget,
  config: Pick<ActiveCheckConfig, 'path' | 'expectedStatuses'>,
  signal: AbortSignal,
  tls?: ProbeTls,
): Promise<string | undefined> {
  const res = await request(`${tls ? 'https' : 'http'}://${hostPort(t)}${config.path}`, {
    method: 'GET',
    headers: { 'user-agent': USER_AGENT },
    dispatcher: agent,
    reset: true,
    signal,
  });
  // Read a little and drop the rest: the status is the answer.
  await res.body.dump({ limit: 4096 }).catch(() => {});
  const { min, max } = config.expectedStatuses;
  return res.statusCode >= min && res.statusCode <= max ? undefined : `HTTP ${res.statusCode}`;
}

/** undefined once connected (with `tls`, once the handshake verified); throws on failure. */
export function tcpProbe(t: ProbeTarget, signal: AbortSignal, tls?: ProbeTls): Promise<undefined> {
  return new Promise((resolve, reject) => {
    const socket = tls
      ? tlsConnect({ ...tls.options, host: t.host, port: t.port })
      : connect({ host: t.host, port: t.port });
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const done = (err?: Error) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve(undefined);
    };
    socket.once(tls ? 'secureConnect' : 'connect', () => done());
    socket.once('error', done);
  });
}

export function abortDetail(reason: unknown, timeoutMs: number): string {
  return reason instanceof Error && reason.message === 'timeout'
    ? `timeout after ${timeoutMs}ms`
    : 'stopped';
}

/** A short reason: 'connect ECONNREFUSED', 'getaddrinfo ENOTFOUND', 'other side closed'. */
export function errorDetail(err: unknown): string {
  if (!(err instanceof Error)) return String(err).slice(0, 120);
  const e = err as NodeJS.ErrnoException;
  if (e.syscall && e.code) return `${e.syscall} ${e.code}`;
  // A TLS failure (verification, an alert) by its code: 'TLS UNABLE_TO_VERIFY_LEAF_SIGNATURE'.
  const tls = tlsCode(err);
  if (tls) return `TLS ${tls}`;
  return (e.message || e.code || e.name).slice(0, 120);
}

/** The code of a TLS failure on the error or its cause; undici wraps some. */
function tlsCode(err: Error): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 3; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code && (/^ERR_(SSL|TLS)_/.test(code) || /CERT|SIGNATURE|ISSUER/.test(code))) return code;
    e = e.cause;
  }
  return undefined;
}
