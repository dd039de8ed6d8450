// The kubeconfig a simulated cluster hands out: one cluster, one user (a bearer
// token), one context, exactly as `kubectl config view --raw --minify` shows one.
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface KubeconfigParams {
  cluster: string;
  server: string;
  caCert: string;
  token: string;
  namespace?: string;
}

export function kubeconfigYaml(p: KubeconfigParams): string {
  const user = `${p.cluster}-admin`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [
      {
        name: p.cluster,
        cluster: {
          server: p.server,
          'certificate-authority-data': Buffer.from(p.caCert).toString('base64'),
        },
      },
    ],
    users: [{ name: user, user: { token: p.token } }],
    contexts: [
      {
        name: p.cluster,
        context: { cluster: p.cluster, user, namespace: p.namespace ?? 'default' },
      },
    ],
    'current-context': p.cluster,
  });
}

/** Written owner-only: the file holds a credential. */
export async function writeKubeconfig(path: string, p: KubeconfigParams): Promise<void> {
  await writeFile(path, kubeconfigYaml(p), { mode: 0o600 });
  await chmod(path, 0o600);
}

/** Writes `<dir>/<cluster>.kubeconfig` and returns its path. */
export async function writeKubeconfigIn(dir: string, p: KubeconfigParams): Promise<string> {
  const path = join(dir, `${p.cluster}.kubeconfig`);
  await writeKubeconfig(path, p);
  return path;
}
