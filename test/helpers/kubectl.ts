// kubectl (the one tools/kube builds) against one cluster through a kubeconfig, the
// caller's KUBECONFIG ignored: stdout, or a rejection carrying stderr.
import { execFile } from 'node:child_process';
import { requireKubeTools } from '../../src/localfed/kube-tools.ts';

export type Kubectl = (args: string[], input?: string) => Promise<string>;

/** `kubeconfig` is read at each call, so a caller may set it once the cluster is up. */
export function kubectlWith(kubeconfig: () => string): Kubectl {
  return (args, input) =>
    new Promise<string>((resolve, reject) => {
      const child = execFile(
        requireKubeTools().kubectl,
        [`--kubeconfig=${kubeconfig()}`, ...args],
        { encoding: 'utf8', timeout: 60_000, env: { ...process.env, KUBECONFIG: '' } },
        (err, stdout, stderr) =>
          err
            ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || err.message}`))
            : resolve(stdout),
      );
      if (input !== undefined) child.stdin?.end(input);
    });
}
