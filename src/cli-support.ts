// What every subcommand shares: its shape, and the error that means "exit 2".

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

/** A usage or configuration error: printed without a stack, exit code 2. */
export class UsageError extends Error {}

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;
