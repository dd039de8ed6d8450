// The process logger: pino, JSON lines on stderr, so stdout stays for what a
// command prints for people. FEDGATE_LOG_LEVEL sets the level (default info).
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.FEDGATE_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
