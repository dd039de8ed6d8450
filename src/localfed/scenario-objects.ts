// The scenario's own objects (Gateway API routes, for one), applied to a member
// through its API as `kubectl apply` would: each namespace made first, then the
// objects in the order written. A bad object fails the start with the API's words.
import { ActionError } from './action-error.ts';
import type { MemberCluster } from './member.ts';
import type { KubeObject } from './objects.ts';

export async function applyObjects(
  member: MemberCluster,
  objects: readonly Record<string, unknown>[],
): Promise<void> {
  for (const raw of objects) {
    const obj = raw as KubeObject;
    const ns = obj.metadata.namespace;
    if (ns && !(await member.get('v1', 'Namespace', undefined, ns))) {
      await member.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    }
    try {
      await member.apply(structuredClone(obj));
    } catch (e) {
      const what = `${obj.kind} ${ns ? `${ns}/` : ''}${obj.metadata.name}`;
      throw new ActionError(`${member.name}: applying the scenario's ${what} failed: ${String(e)}`);
    }
  }
}
