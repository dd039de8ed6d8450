// kube-apiserver answers /readyz before every watch cache is filled: right after a restart
// a watch of the ServiceExport custom resource got `429 storage is (re)initializing`
// (1.37.2, seen in test/discovery-faults.test.ts while /readyz said ok). A client takes
// that for a failing API, so the member is ready only once each type's watch is served.
import type { KubeRest } from './kube-rest.ts';
import { resourcePath } from './kube-rest.ts';
import { pollUntil } from './loopback-http.ts';
import { RESOURCE_TYPES } from './resources.ts';

/** Waits until a watch of every type localfed serves is answered other than 429. */
export async function untilWatchesServed(rest: KubeRest, timeoutMs: number): Promise<void> {
  await Promise.all(
    RESOURCE_TYPES.map((t) => {
      // From the cache (resourceVersion 0), ending on its own after a second; a type the
      // member does not serve (no CRD) answers 404, which is as ready as it gets.
      const path = `${resourcePath(t)}?watch=1&resourceVersion=0&timeoutSeconds=1`;
      return pollUntil(
        async () => (await rest.send('GET', path)).status !== 429,
        timeoutMs,
        `a watch of ${t.plural} served (not 429)`,
        100,
      );
    }),
  );
}
