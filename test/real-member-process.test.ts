// A real member's etcd and kube-apiserver die with the Node process that started them,
// however it ends, and a process that ends by a signal it can catch removes their
// temporary directory too.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { requireKubeTools } from './helpers/kube-control-plane.ts';
import { waitFor } from './helpers/wait.ts';

const NODE = process.execPath;
const HOLD = new URL('./helpers/real-member-hold.ts', import.meta.url).pathname;

/** The pids of processes whose command line names `dir` (pgrep -f), none when pgrep finds none. */
function processesIn(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', dir], { encoding: 'utf8' }).trim().split('\n');
  } catch {
    return [];
  }
}

async function startHeld(): Promise<{ child: ReturnType<typeof spawn>; dir: string }> {
  requireKubeTools();
  const child = spawn(NODE, [HOLD], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (c: string) => {
    out += c;
  });
  const dir = await waitFor(() => /^(\/\S+)\n/.exec(out)?.[1], 90_000, 'the held member started');
  return { child, dir };
}

describe('a real member and the process that started it', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s: etcd and kube-apiserver gone, directory removed, the exit is still the signal',
    async (signal) => {
      const { child, dir } = await startHeld();
      expect(processesIn(dir)).toHaveLength(2);
      const exited = once(child, 'exit');
      child.kill(signal);
      const [code, sig] = await exited;
      expect({ code, sig }).toEqual({ code: null, sig: signal });
      await waitFor(() => processesIn(dir).length === 0, 10_000, `nothing left running in ${dir}`);
      expect(existsSync(dir)).toBe(false);
    },
    120_000,
  );

  it('on SIGKILL: etcd and kube-apiserver gone (the kernel kills them: pdeathsig)', async () => {
    const { child, dir } = await startHeld();
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    try {
      await waitFor(() => processesIn(dir).length === 0, 10_000, `nothing left running in ${dir}`);
    } finally {
      for (const pid of processesIn(dir)) process.kill(Number(pid), 'SIGKILL');
      execFileSync('rm', ['-rf', dir]);
    }
  }, 120_000);
});
