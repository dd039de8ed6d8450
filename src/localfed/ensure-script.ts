// Runs one of the scripts/ensure-*.sh builders (Go tools built from the module proxy
// into a cache) and returns the directory it prints: the only thing on its stdout.
// The one synchronous runner: localfed's kube-tools, the test run's global setup and
// the DNS bench's CoreDNS all go through it.
import { spawnSync } from 'node:child_process';

const ROOT = new URL('../..', import.meta.url).pathname;

/**
 * Runs `script` from the repository root, synchronously (callers use it at hook or
 * setup level, where a cold build must finish before anything else runs). Its
 * progress on stderr goes to this process's stderr when `showProgress`, else into the
 * error. Throws `<script> failed (<why>)` when it fails or prints no directory.
 */
export function runEnsureScript(
  script: string,
  timeoutMs: number,
  showProgress: boolean,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const r = spawnSync(script, [], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', showProgress ? 'inherit' : 'pipe'],
    timeout: timeoutMs,
  });
  const dir = r.stdout?.trim() ?? '';
  if (r.status !== 0 || dir === '') {
    const stderr = r.stderr?.trim() ?? '';
    const why = r.error
      ? r.error.message
      : `exit ${r.status ?? r.signal}${stderr === '' ? '' : `: ${stderr}`}`;
    throw new Error(`${script} failed (${why})`);
  }
  return dir;
}
