// The smallest OpenAPI v3 that kubectl needs: /openapi/v3 lists one document per
// group-version, and each names the PATCH operation of every kind with its
// `fieldValidation` query parameter. That is how kubectl (1.27+) learns that the
// server validates fields itself, so `kubectl create -f` sends fieldValidation=Strict
// instead of downloading schemas to validate on the client.
import { createHash } from 'node:crypto';
import { apiVersionOf, RESOURCE_TYPES, type ResourceType } from './resources.ts';

function gvPath(t: Pick<ResourceType, 'group' | 'version'>): string {
  return t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`;
}

function gvDocument(gv: string) {
  const types = RESOURCE_TYPES.filter((t) => gvPath(t) === gv);
  if (types.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  for (const t of types) {
    const item = t.namespaced
      ? `/${gv}/namespaces/{namespace}/${t.plural}/{name}`
      : `/${gv}/${t.plural}/{name}`;
    paths[item] = {
      patch: {
        operationId: `patch${t.kind}`,
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': { group: t.group, version: t.version, kind: t.kind },
        parameters: [
          { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
        ],
        responses: { '200': { description: 'OK' } },
      },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (fedgate localfed)', version: apiVersionOf(types[0]!) },
    paths,
    components: { schemas: {} },
  };
}

const documents = new Map<string, { body: string; hash: string }>();
for (const gv of new Set(RESOURCE_TYPES.map(gvPath))) {
  const body = JSON.stringify(gvDocument(gv));
  documents.set(gv, {
    body,
    hash: createHash('sha512').update(body).digest('hex').slice(0, 128).toUpperCase(),
  });
}

export function openApiRoot() {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const [gv, doc] of documents)
    paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${doc.hash}` };
  return { paths };
}

/** The document body for `/openapi/v3/<gv>`, or undefined. */
export function openApiDocument(gv: string): string | undefined {
  return documents.get(gv)?.body;
}
