// Child processes (etcd, kube-apiserver) that die with this Node process, and the
// temporary directories they run in. Three layers, because no one covers every way a
// process ends:
// - on Linux each child runs under `setpriv --pdeathsig KILL`, so the kernel kills it when
//   its parent goes, even on SIGKILL or a crash (the directory stays then);
// - on 'exit' every live child gets SIGKILL and the directories are removed (synchronously:
//   it is all 'exit' allows);
// - on SIGINT/SIGTERM/SIGHUP the same; when nothing else listens for that signal it is
//   raised again, so the process still ends as it would have.
// Output goes to `<dir>/<name>.log`; `untilExit` fails with the log's tail if a child
// exits while we wait for it to become ready.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
}

const SETPRIV = '/usr/bin/setpriv';
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;

function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

function hookProcess(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of SIGNALS) {
    const onSignal = (): void => {
      killAll();
      if (process.listenerCount(sig) === 1) {
        process.off(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/** Removes `dir` when this process ends, unless `release`d before. */
export function removeOnExit(dir: string): void {
  hookProcess();
  dirs.add(dir);
}

export function release(dir: string): void {
  dirs.delete(dir);
}

/** Starts `bin` in `dir`, its stdout and stderr appended to `<dir>/<name>.log`. */
export function launch(dir: string, name: string, bin: string, args: string[]): Proc {
  hookProcess();
  const log = join(dir, `${name}.log`);
  const out = createWriteStream(log, { flags: 'a' });
  const [cmd, argv] =
    process.platform === 'linux' && existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args]]
      : [bin, args];
  const child = spawn(cmd, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  child.once('exit', () => {
    live.delete(child);
    out.end();
  });
  // A spawn failure (binary missing) surfaces as 'exit' through untilExit.
  child.once('error', () => {});
  return { name, child, log };
}

export function running(p: Proc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopProc(p: Proc, graceMs = 15_000): Promise<void> {
  if (!running(p)) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** `wait`, failing at once (with the log's tail) if `p` exits first. */
export async function untilExit<T>(p: Proc, wait: Promise<T>): Promise<T> {
  let onExit: (() => void) | undefined;
  const exited = new Promise<never>((_, reject) => {
    onExit = () => {
      // Let the log stream flush what the process wrote last.
      setTimeout(() => {
        void tail(p.log).then((t) =>
          reject(new Error(`${p.name} exited early; its log ends:\n${t}`)),
        );
      }, 100);
    };
    if (!running(p)) onExit();
    else p.child.once('exit', onExit);
  });
  exited.catch(() => {});
  try {
    return await Promise.race([wait, exited]);
  } finally {
    if (onExit) p.child.off('exit', onExit);
  }
}

export async function tail(log: string, lines = 15): Promise<string> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
