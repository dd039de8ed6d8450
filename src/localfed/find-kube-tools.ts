// The real control plane's binaries for `--api real`, found without blocking: the
// demo and `localfed up` show scripts/ensure-kube-tools.sh's progress as it goes,
// because on a machine that has never built them it compiles kube-apiserver for minutes.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { FedgateError } from '../errors.ts';
import { ENSURE_KUBE_TOOLS, type KubeTools, requireKubeTools } from './kube-tools.ts';

/** A cold build on two cores, as measured in tools/kube/README.md. */
export const COLD_BUILD_TIME = '6 min 13 s';

/**
 * The binaries from FEDGATE_KUBE_TOOLS when set, else from the build cache, building
 * them first when it lacks them. `progress` gets one line per step of the script, and
 * one saying how long a build takes when it starts one.
 */
export async function findKubeTools(progress: (line: string) => void): Promise<KubeTools> {
  if (process.env.FEDGATE_KUBE_TOOLS) return requireKubeTools();
  const child = spawn(ENSURE_KUBE_TOOLS, [], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  const stderr: string[] = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    progress(line);
    if (/^ensure-kube-tools: downloading modules/.test(line)) {
      progress(
        `building kube-apiserver, etcd and kubectl with Go for --api real: the first build takes minutes (${COLD_BUILD_TIME} on two cores); later runs reuse them`,
      );
    }
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  }).catch((e: unknown) => {
    throw new FedgateError(
      'KUBE_TOOLS_MISSING',
      `cannot run ${ENSURE_KUBE_TOOLS}: ${(e as Error).message}`,
    );
  });
  const dir = stdout.trim();
  if (code !== 0 || dir === '') {
    throw new FedgateError(
      'KUBE_TOOLS_MISSING',
      `--api real needs kube-apiserver, etcd and kubectl, and ${ENSURE_KUBE_TOOLS} could not provide them (it needs Go; see tools/kube/README.md): exit ${code}: ${stderr.slice(-5).join(' / ')}`,
    );
  }
  // Checks that all of them are there, without running the script again.
  return requireKubeTools({ ...process.env, FEDGATE_KUBE_TOOLS: dir });
}
