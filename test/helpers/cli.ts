// Runs the fedgate command line as a user does: a child process, its output and exit code.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const CLI = join(ROOT, 'src/cli.ts');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one fedgate command to its end; `env` is added to this process's. */
export function fedgate(
  args: string[],
  timeoutMs = 30_000,
  env: Record<string, string> = {},
): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: ROOT, timeout: timeoutMs, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Starts a long-running command and collects its output; `env` is added to this process's. */
export function start(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  return { child, out: () => out, exited };
}

/** One of fedgate's JSON log lines. */
export interface LogLine {
  level: number;
  msg: string;
  pid: number;
  worker?: number;
  [key: string]: unknown;
}

/** The JSON log lines in a child's output (anything else it printed is skipped). */
export function logLines(out: string): LogLine[] {
  return out.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}
