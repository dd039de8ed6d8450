// Server-side printing: the columns `kubectl get` shows for each type (meta.k8s.io/v1
// Table), as kube-apiserver's printers fill them.
import type { KubeObject } from './objects.ts';

export interface TableColumn {
  name: string;
  type: 'string' | 'integer' | 'date';
  format: string;
  description: string;
  priority: number;
  /** null: no value (a CRD column whose JSONPath finds nothing). */
  cell: (obj: KubeObject, now: number) => string | number | null;
}

export function age(obj: KubeObject, now: number): string {
  const created = Date.parse(obj.metadata.creationTimestamp ?? '');
  if (Number.isNaN(created)) return '<unknown>';
  return shortDuration(Math.max(0, now - created));
}

/** kubectl's HumanDuration, abridged: 45s, 5m10s, 3h, 2d. */
export function shortDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

export const nameColumn: TableColumn = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  priority: 0,
  cell: (o) => o.metadata.name,
};
export const ageColumn: TableColumn = {
  name: 'Age',
  type: 'string',
  format: '',
  description:
    'CreationTimestamp is a timestamp representing the server time when this object was created.',
  priority: 0,
  cell: age,
};

export function column(
  name: string,
  description: string,
  cell: TableColumn['cell'],
  priority = 0,
): TableColumn {
  return { name, type: 'string', format: '', description, priority, cell };
}

/** The first address of a type, as kubectl's node printer shows it. */
export function nodeAddress(o: KubeObject, type: string): string {
  const addresses = (o.status as { addresses?: { type?: string; address?: string }[] })?.addresses;
  return addresses?.find((a) => a.type === type)?.address ?? '<none>';
}

/** A wide column from status.nodeInfo, `<unknown>` when the node has not said. */
export function infoColumn(name: string, description: string, key: string): TableColumn {
  return column(
    name,
    description,
    (o) => {
      const v = (o.status as { nodeInfo?: Record<string, unknown> })?.nodeInfo?.[key];
      return typeof v === 'string' && v !== '' ? v : '<unknown>';
    },
    1,
  );
}
