// CustomResourceDefinitions installed on a real member from their published manifests
// (tools/kube copies them next to the binaries), then waited for until kube-apiserver
// serves every version: Established, and a list of each served version answering.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeRest } from './kube-rest.ts';
import { pollUntil } from './loopback-http.ts';
import type { KubeObject } from './objects.ts';

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

interface CrdSpec {
  group?: string;
  names?: { plural?: string };
  versions?: { name: string; served?: boolean }[];
}

/** The CustomResourceDefinitions in a manifest file; other kinds in it are left out. */
export async function readCrds(manifest: string): Promise<KubeObject[]> {
  return parseAllDocuments(await readFile(manifest, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o?.kind === 'CustomResourceDefinition');
}

/** Every CustomResourceDefinition in the .yaml files of a directory. */
export async function readCrdDir(dir: string): Promise<KubeObject[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  return (await Promise.all(files.map((f) => readCrds(join(dir, f))))).flat();
}

/** Creates the CRDs (all at once) and waits until each serves every version it declares. */
export async function installCrds(
  api: KubeRest,
  crds: readonly KubeObject[],
  member: string,
  what: string,
): Promise<void> {
  await Promise.all(crds.map((crd) => api.call('POST', CRDS, crd)));
  await Promise.all(crds.map((crd) => waitServed(api, crd, member, what)));
}

async function waitServed(api: KubeRest, crd: KubeObject, member: string, what: string) {
  const spec = crd.spec as CrdSpec;
  const versions = (spec.versions ?? []).filter((v) => v.served !== false).map((v) => v.name);
  await pollUntil(
    async () => {
      const got = (await api.call('GET', `${CRDS}/${crd.metadata.name}`)) as {
        status?: { conditions?: { type: string; status: string }[] };
      };
      if (!got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'))
        return false;
      for (const v of versions) {
        const r = await api.send('GET', `/apis/${spec.group}/${v}/${spec.names?.plural}`);
        if (r.status !== 200) return false;
      }
      return true;
    },
    30_000,
    `${what} (${crd.metadata.name}) established and served on ${member}`,
    100,
  );
}
