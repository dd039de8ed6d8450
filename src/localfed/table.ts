// Server-side printing: the meta.k8s.io/v1 Table that kubectl asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
import type { KubeObject } from './objects.ts';
import type { ResourceType } from './resources.ts';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** True when the Accept header asks for a Table (kubectl get does). */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const params = part.split(';').map((p) => p.trim());
    return params.includes('as=Table') && params.includes('g=meta.k8s.io');
  });
}

export function toTable(
  t: ResourceType,
  objects: KubeObject[],
  listMeta: Record<string, unknown>,
  include: IncludeObject,
  now = Date.now(),
) {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: t.columns.map(({ cell: _cell, ...def }) => def),
    rows: objects.map((o) => {
      const row: Record<string, unknown> = { cells: t.columns.map((c) => c.cell(o, now)) };
      if (include === 'Object') row.object = o;
      else if (include === 'Metadata') {
        row.object = {
          kind: 'PartialObjectMetadata',
          apiVersion: 'meta.k8s.io/v1',
          metadata: o.metadata,
        };
      }
      return row;
    }),
  };
}
