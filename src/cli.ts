#!/usr/bin/env node
// fedgate's command line. Exit codes: 0 ok, 2 usage or configuration error, 1 runtime failure,
// each failure's from the `exit` column of its error code (src/errors.ts).
// First: under a test or a benchmark (FEDGATE_LOOPBACK_ONLY=1), loopback only.
import './netguard/from-env.ts';
// Then V8's settings, before the modules that allocate.
import './v8-flags.ts';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Command, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, exitCodeOf } from './cli-support.ts';
import { demo } from './demo.ts';
import { checkConfig, configSchemaCommand, start } from './fedgate-commands.ts';
import { grpcCall, grpcHealth } from './localfed/grpc-command.ts';
import { localfedCtl, localfedUp } from './localfed/localfed-commands.ts';

const COMMANDS: Command[] = [
  start,
  demo,
  checkConfig,
  configSchemaCommand,
  localfedUp,
  localfedCtl,
  grpcCall,
  grpcHealth,
];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function mainHelp(): string {
  return `fedgate ${version()}: cross-cluster load balancer for Kubernetes

Usage: fedgate COMMAND [OPTIONS]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(16)}${c.summary}`).join('\n')}
  help [COMMAND]  show help for a command

Options:
  -h, --help      show help
  -v, --version   print the version

Exit codes: 0 ok, 2 usage or configuration error, 1 runtime failure.
`;
}

/** Finds the longest command whose words start argv. */
function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  const sorted = [...COMMANDS].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  for (const command of sorted) {
    const words = command.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { command, rest: argv.slice(words.length) };
  }
  return undefined;
}

export async function main(argv: string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined || first === '-h' || first === '--help') {
    process.stdout.write(mainHelp());
    return first === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (first === '-v' || first === '--version') {
    process.stdout.write(`${version()}\n`);
    return EXIT_OK;
  }
  if (first === 'help') {
    const found = findCommand(argv.slice(1));
    process.stdout.write(found ? `${found.command.usage}\n` : mainHelp());
    return found || argv.length === 1 ? EXIT_OK : EXIT_USAGE;
  }
  const found = findCommand(argv);
  if (!found) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
    if (group.length > 0 && (argv.length === 1 || argv[1] === '--help' || argv[1] === '-h')) {
      process.stdout.write(`${group.map((c) => c.usage).join('\n\n')}\n`);
      return argv.length === 1 ? EXIT_USAGE : EXIT_OK;
    }
    process.stderr.write(
      `fedgate: unknown command "${argv.slice(0, group.length > 0 ? 2 : 1).join(' ')}" (see fedgate --help)\n`,
    );
    return EXIT_USAGE;
  }
  if (found.rest.includes('--help') || found.rest.includes('-h')) {
    process.stdout.write(`${found.command.usage}\n`);
    return EXIT_OK;
  }
  try {
    return await found.command.run(found.rest);
  } catch (e) {
    // Printed without a stack; the exit code is the error code's (src/errors.ts).
    process.stderr.write(`fedgate ${found.command.name}: ${(e as Error)?.message ?? String(e)}\n`);
    return exitCodeOf(e);
  }
}

function invokedDirectly(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`fedgate: ${String(e)}\n`);
      process.exitCode = EXIT_RUNTIME;
    },
  );
}
