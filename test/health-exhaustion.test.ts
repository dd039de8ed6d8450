// Health checks out of file descriptors, for real: a checker alone in a child process
// under `ulimit -n 128` (test/fixtures/probe-flood.ts), with 400 targets at a backend
// in this process that accepts and never answers, so every probe holds its socket.
// 127.71.x.y are this file's own. Every wait is bounded.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { ActiveCheckStats } from '../src/health/active.ts';
import { ROOT } from './helpers/cli.ts';
import { CountingServer } from './helpers/health.ts';
import { sleep, waitFor } from './helpers/wait.ts';

const LIMIT = 128;
const TARGETS = 400;
const WAIT_MS = 20_000;

type Stats = ActiveCheckStats & { exhaustedErrors: number; healthy: number; fds: number | null };

interface Flood {
  readonly child: ChildProcess;
  latest(): Stats | undefined;
  /** Every line it printed, for a failure message. */
  output(): string;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function backend(host: string): Promise<CountingServer> {
  const s = await new CountingServer().start(host);
  s.hang = true;
  cleanups.push(() => s.stop());
  return s;
}

/** The checker in a child whose descriptor limit is LIMIT. */
function flood(server: CountingServer, host: string, maxInFlight: number): Flood {
  const child = spawn(
    'sh',
    [
      '-c',
      `ulimit -n ${LIMIT} && exec "$0" "$@"`,
      process.execPath,
      'test/fixtures/probe-flood.ts',
      host,
      String(server.port),
      String(TARGETS),
      String(maxInFlight),
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let latest: Stats | undefined;
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    const lines = out.trimEnd().split('\n');
    latest = JSON.parse(lines.at(-1)!) as Stats;
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  cleanups.push(async () => {
    child.stdin!.end();
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  });
  return { child, latest: () => latest, output: () => out.slice(-2000) };
}

describe('health checks out of file descriptors', () => {
  it('counts probes that find no descriptor without blaming the endpoint, stays up and recovers', async () => {
    const host = '127.71.0.1';
    const server = await backend(host);
    // A cap above the process's own limit: the probes run out of descriptors.
    const f = flood(server, host, 1000);
    // Once is enough: then starts pause for a second, and the probes let in flight are
    // halved below those still hung, so no more start (or fail) until those end.
    await waitFor(() => (f.latest()?.exhausted ?? 0) >= 1, WAIT_MS, 'probes to run out');
    const during = f.latest()!;
    expect(f.child.exitCode, f.output()).toBeNull();
    // Not one verdict from a missing descriptor: the endpoints did nothing wrong.
    expect(during.failed).toBe(0);
    expect(during.healthy).toBe(0);
    expect(during.exhaustedErrors).toBe(during.exhausted);
    // No spinning on EMFILE: the first burst may count many (every probe started
    // before the first error came back), but then starts pause and fewer are let in
    // flight, so hardly any more follow (without that: ~10,000 a second).
    await sleep(2000);
    expect(f.latest()!.exhausted - during.exhausted).toBeLessThan(20);
    // The backend answers again and lets the hung probes go: every target ends healthy.
    server.hang = false;
    server.dropConnections();
    await waitFor(() => f.latest()?.healthy === TARGETS, WAIT_MS, 'every target healthy');
    expect(f.child.exitCode, f.output()).toBeNull();
  });

  it('with maxInFlight under the limit, never holds more sockets than the cap and never runs out', async () => {
    const host = '127.71.0.2';
    const server = await backend(host);
    const f = flood(server, host, 64);
    await waitFor(() => server.maxInFlight >= 64, WAIT_MS, '64 probes to hang at the backend');
    let maxInFlight = 0;
    for (let i = 0; i < 20; i++) {
      await sleep(50);
      maxInFlight = Math.max(maxInFlight, f.latest()?.inFlight ?? 0);
    }
    expect(server.maxInFlight).toBe(64);
    expect(maxInFlight).toBeLessThanOrEqual(64);
    expect(f.latest()).toMatchObject({ exhausted: 0, failed: 0 });
    expect(f.child.exitCode, f.output()).toBeNull();
  });
});
