// The process logger: pino, JSON lines on stderr, so stdout stays for what a
// command prints for people. On a terminal the same lines are rendered readable
// (pino-pretty, in-process and synchronous so nothing is lost at exit);
// FEDGATE_LOG_FORMAT=json|pretty overrides. FEDGATE_LOG_LEVEL sets the level
// (default info).
import { pino } from 'pino';
import pretty from 'pino-pretty';

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
