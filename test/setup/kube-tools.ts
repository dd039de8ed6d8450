// Vitest global setup: builds (or reuses) the real control plane's binaries once, before
// any test file runs, so that no test hook waits minutes for a cold Go build, and hands
// their directory to every test process through FEDGATE_KUBE_TOOLS. A failed build fails
// the run here, naming what is missing; no test skips for want of the binaries.
import { runEnsureScript } from '../../src/localfed/ensure-script.ts';
import { BUILD_TIMEOUT_MS, ENSURE_KUBE_TOOLS } from '../../src/localfed/kube-tools.ts';

export default function setup(): void {
  if (process.env.FEDGATE_KUBE_TOOLS) return;
  const started = Date.now();
  let dir: string;
  try {
    // Progress (stderr) goes to the run's output; only the directory comes back on stdout.
    dir = runEnsureScript(ENSURE_KUBE_TOOLS, BUILD_TIMEOUT_MS, true);
  } catch (e) {
    throw new Error(
      `${(e as Error).message}: the real kube-apiserver, etcd and kubectl the suites run against could not be built; it needs Go (see tools/kube/README.md)`,
    );
  }
  process.env.FEDGATE_KUBE_TOOLS = dir;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(`kube tools: ${dir} (${seconds} s)\n`);
}
