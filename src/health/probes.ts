// One probe of one target: a TCP connect or an HTTP GET, and short failure texts.
// Each resolves to undefined when the target passes, a reason when it answered
// wrongly, and throws when it could not be reached.
import { connect } from 'node:net';
import { type Agent, request } from 'undici';
import { hostPort } from '../host-port.ts';
import type { ActiveCheckConfig, ProbeTarget } from './targets.ts';

export const USER_AGENT = 'fedgate-health-check';

/** undefined when the status is expected, else why not. */
export async function httpProbe(
  agent: Agent,
  t: ProbeTarget,
  config: Pick<ActiveCheckConfig, 'path' | 'expectedStatuses'>,
  signal: AbortSignal,
): Promise<string | undefined> {
  const res = await request(`http://${hostPort(t)}${config.path}`, {
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

/** undefined once connected; throws on failure. */
export function tcpProbe(t: ProbeTarget, signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: t.host, port: t.port });
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
    socket.once('connect', () => done());
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
  return (e.message || e.code || e.name).slice(0, 120);
}
