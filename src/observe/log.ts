// The process logger: pino, JSON lines on stderr, so stdout stays for what a
// command prints for people. On a terminal the same lines are rendered readable
// (pino-pretty, in-process and synchronous so nothing is lost at exit);
// FEDGATE_LOG_FORMAT=json|pretty overrides. FEDGATE_LOG_LEVEL sets the level
// (default info).
import { pino } from 'pino';
import pretty from 'pino-pretty';
import type { ProxiedRequest, ProxyObserver } from './metrics.ts';

export type Logger = pino.Logger;

export type LogFormat = 'json' | 'pretty';

export function logFormat(
  env: NodeJS.ProcessEnv = process.env,
  isTty = process.stderr.isTTY === true,
): LogFormat {
  const asked = env.FEDGATE_LOG_FORMAT;
  if (asked === 'json' || asked === 'pretty') return asked;
  return isTty ? 'pretty' : 'json';
}

export function createLogger(name: string): Logger {
  const options = { name, level: process.env.FEDGATE_LOG_LEVEL ?? 'info' };
  if (logFormat() === 'pretty') {
    return pino(
      options,
      pretty({
        destination: 2,
        sync: true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
      }),
    );
  }
  return pino(options, pino.destination(2));
}

/** `inner` plus one info line per finished request: http.accessLog. */
export function withAccessLog(inner: ProxyObserver, log: Logger): ProxyObserver {
  const access = log.child({ log: 'access' });
  return {
    request(r: ProxiedRequest) {
      inner.request(r);
      access.info(
        {
          client: r.client,
          method: r.method,
          target: r.target,
          service: r.service,
          status: r.status,
          ms: Math.round(r.seconds * 1e4) / 10,
          cluster: r.cluster,
          zone: r.zone,
          tier: r.tier,
          endpoint: r.endpoint,
          tries: r.tries,
          ...(r.upgrade ? { upgrade: true } : {}),
        },
        'request',
      );
    },
    retry: (service, reason) => inner.retry(service, reason),
    retryBudgetExhausted: (service, reason) => inner.retryBudgetExhausted?.(service, reason),
  };
}
