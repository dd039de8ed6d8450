// Credentials a real kube-apiserver knows but does not authorize: a ServiceAccount's
// token from the TokenRequest API (served by kube-apiserver itself: no controller is
// needed), and the read access deploy/member-rbac grants, given and taken back. The
// simulator has one token and authorizes everything it accepts, so these are for real
// members only.
import type { MemberCluster } from '../../src/localfed/member.ts';
import { memberRequest } from './member-request.ts';

/** The ServiceAccount the tests use: in `default`, which every cluster has. */
export const READER = { namespace: 'default', name: 'fedgate-test-reader' };
export const READER_USER = `system:serviceaccount:${READER.namespace}:${READER.name}`;
const ROLE = 'fedgate-test-reader';

async function call(c: MemberCluster, method: string, path: string, body?: unknown) {
  const r = await memberRequest(c, method, path, body === undefined ? {} : { body });
  if (r.status >= 300) {
    throw new Error(`${method} ${path} on ${c.name}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  return r.body;
}

/** A token for READER, which no RBAC rule names. */
export async function readerToken(c: MemberCluster): Promise<string> {
  const sa = `/api/v1/namespaces/${READER.namespace}/serviceaccounts`;
  const exists = await memberRequest(c, 'GET', `${sa}/${READER.name}`);
  if (exists.status === 404) {
    await call(c, 'POST', sa, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: READER.name, namespace: READER.namespace },
    });
  }
  const review = (await call(c, 'POST', `${sa}/${READER.name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  })) as { status?: { token?: string } };
  const token = review.status?.token;
  if (!token) throw new Error(`no token in the TokenRequest answer from ${c.name}`);
  return token;
}

/** Grants READER what deploy/member-rbac grants fedgate: get, list, watch of the four kinds. */
export async function grantRead(c: MemberCluster): Promise<void> {
  await call(c, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: ROLE },
    rules: [
      { apiGroups: [''], resources: ['services', 'nodes'], verbs: ['get', 'list', 'watch'] },
      {
        apiGroups: ['discovery.k8s.io'],
        resources: ['endpointslices'],
        verbs: ['get', 'list', 'watch'],
      },
      {
        apiGroups: ['multicluster.x-k8s.io'],
        resources: ['serviceexports'],
        verbs: ['get', 'list', 'watch'],
      },
    ],
  });
  await call(c, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: ROLE },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: ROLE },
    subjects: [{ kind: 'ServiceAccount', name: READER.name, namespace: READER.namespace }],
  });
}

/** Removes the grant and the ServiceAccount (whichever exist), so a shared member is clean. */
export async function removeReader(c: MemberCluster): Promise<void> {
  for (const path of [
    `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${ROLE}`,
    `/apis/rbac.authorization.k8s.io/v1/clusterroles/${ROLE}`,
    `/api/v1/namespaces/${READER.namespace}/serviceaccounts/${READER.name}`,
  ]) {
    const r = await memberRequest(c, 'DELETE', path);
    if (r.status !== 200 && r.status !== 404) {
      throw new Error(`DELETE ${path} on ${c.name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }
}

/** The Status kube-apiserver 1.37 answers when `user` may not `verb` `resource` cluster-wide. */
export function forbidden(user: string, verb: string, resource: string, group = ''): unknown {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `${resource} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${group}" at the cluster scope`,
    reason: 'Forbidden',
    details: { kind: resource },
    code: 403,
  };
}
