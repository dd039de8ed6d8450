// The MCS API's ServiceExport CRD, as sigs.k8s.io/mcs-api publishes it (tools/kube/crds),
// installed on a real member and waited for until kube-apiserver serves every version.
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { MCS_GROUP } from './cluster.ts';
import type { KubeRest } from './kube-rest.ts';
import { pollUntil } from './loopback-http.ts';
import type { KubeObject } from './objects.ts';

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

export async function installServiceExportCrd(
  api: KubeRest,
  manifest: string,
  member: string,
): Promise<void> {
  const crd = parseAllDocuments(await readFile(manifest, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .find((o) => o?.kind === 'CustomResourceDefinition');
  if (!crd) throw new Error(`${manifest} holds no CustomResourceDefinition`);
  await api.call('POST', CRDS, crd);
  const spec = crd.spec as { versions?: { name: string; served?: boolean }[] };
  const versions = (spec.versions ?? []).filter((v) => v.served !== false).map((v) => v.name);
  // Established, and a list of each served version answering: what a client needs first.
  await pollUntil(
    async () => {
      const got = (await api.call('GET', `${CRDS}/${crd.metadata.name}`)) as {
        status?: { conditions?: { type: string; status: string }[] };
      };
      if (!got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'))
        return false;
      for (const v of versions) {
        const r = await api.send('GET', `/apis/${MCS_GROUP}/${v}/serviceexports`);
        if (r.status !== 200) return false;
      }
      return true;
    },
    30_000,
    `the ServiceExport CRD established and served on ${member}`,
    100,
  );
}
