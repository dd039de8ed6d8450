// One JSON request to a member cluster as any client makes it: the kubeconfig's URL and
// CA, a bearer token (the admin's unless given), a connection of its own.
import { type KubeResponse, KubeRest } from '../../src/localfed/kube-rest.ts';
import type { MemberCluster } from '../../src/localfed/member.ts';

export async function memberRequest(
  m: MemberCluster,
  method: string,
  path: string,
  opts: { body?: unknown; token?: string } = {},
): Promise<KubeResponse> {
  const rest = new KubeRest(m.url, opts.token ?? m.token, m.caCert);
  try {
    return await rest.send(method, path, opts.body);
  } finally {
    rest.close();
  }
}
