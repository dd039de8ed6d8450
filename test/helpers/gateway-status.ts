// Hand-built status report entries for tests (what route compilation reports).
import type { Condition, RouteStatusReport } from '../../src/gateway/status.ts';
import type { ParentRef } from '../../src/watch/gateway-records.ts';

/** An HTTPRoute's status in `cluster`: one parent (a Gateway), with its conditions. */
export function routeStatus(
  route: string,
  parent: Partial<ParentRef> & { readonly name: string },
  conditions: readonly Condition[],
  cluster = 'alpha',
): RouteStatusReport {
  const [namespace = '', name = ''] = route.split('/');
  return {
    kind: 'HTTPRoute',
    cluster,
    namespace,
    name,
    status: {
      parents: [
        {
          parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', ...parent },
          controllerName: 'fedgate.io/gateway-controller',
          conditions,
        },
      ],
    },
  };
}
