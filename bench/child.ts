// A server a benchmark runs as a child process (knotd, coredns, nginx, the bare Node
// floor): its output kept, killed if the benchmark dies first, stopped on request. And
// a load tool run to its end.
import { type ChildProcess, spawn } from 'node:child_process';

export interface Supervised {
  /** Its stdout and stderr so far. */
  output(): string;
  alive(): boolean;
  /** Why it could not be started, if spawning failed. */
  spawnError(): Error | undefined;
  /** SIGTERM, then SIGKILL after 5 s, and waits for it; safe to call twice, or after it exited. */
  stop(): Promise<void>;
}

/**
 * Watches `child` (spawned with stdout and stderr piped). If the benchmark process
 * exits first, `child` gets `onBenchExit`: SIGKILL by default, so nothing is left
 * holding a port; nginx wants SIGTERM, for its master to take its worker down too.
 */
export function supervise(
  child: ChildProcess,
  onBenchExit: NodeJS.Signals = 'SIGKILL',
): Supervised {
  let output = '';
  const collect = (d: Buffer) => {
    output += d.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let spawnError: Error | undefined;
  child.once('error', (e) => {
    spawnError = e;
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let alive = true;
  void exited.then(() => {
    alive = false;
  });
  const killOnExit = () => child.kill(onBenchExit);
  process.once('exit', killOnExit);
  return {
    output: () => output,
    alive: () => alive && spawnError === undefined,
    spawnError: () => spawnError,
    stop: async () => {
      process.off('exit', killOnExit);
      if (!alive || spawnError) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** What a tool run to its end printed, and how it ended. */
export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bin args` (a load tool that ends by itself: wrk, h2load) and collects its
 * output. SIGKILL after `timeoutMs`, a guard against a hang; rejects only if it could
 * not be spawned.
 */
export function runToEnd(bin: string, args: string[], timeoutMs: number): Promise<Finished> {
  return new Promise<Finished>((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const guard = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(guard);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(guard);
      resolve({
        code,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
  });
}
