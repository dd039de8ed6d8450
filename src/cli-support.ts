// What every subcommand shares: its shape, the usage error, and how a failure
// becomes an exit code (the `exit` column of src/errors.ts).
import { exitCodeFor, FedgateError } from './errors.ts';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

/** A command line that cannot be used (USAGE_INVALID): printed without a stack. */
export class UsageError extends FedgateError {
  constructor(message: string) {
    super('USAGE_INVALID', message);
    this.name = 'UsageError';
  }
}

export const EXIT_OK = 0;
/** A failure that carries no code (a bug): a runtime failure. */
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = exitCodeFor('USAGE_INVALID');

/** The exit code for a command's failure: its code's, node:util parseArgs's is a usage error. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof FedgateError) return exitCodeFor(e.code);
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) return EXIT_USAGE;
  return EXIT_RUNTIME;
}
