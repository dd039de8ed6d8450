// Core v1 Secrets as kube-apiserver serves them, enough for TLS Secrets that Gateway
// listeners' certificateRefs name: `stringData` folded into `data` (base64) on
// every write, `type` defaulted to Opaque and immutable, kubernetes.io/tls needing
// both tls.crt and tls.key, `immutable: true` freezing data, and the field
// selector `type=…` fedgate's watch lists with.
import { ageColumn, column, nameColumn } from './columns.ts';
import { isRecord, type KubeObject } from './objects.ts';
import type { ResourceType } from './resource-type.ts';
import type { StatusCause } from './status.ts';
import { immutable, invalid, nameCauses, required } from './validation.ts';

const TLS = 'kubernetes.io/tls';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const KEY = /^[-._a-zA-Z0-9]+$/;

const dataOf = (o: KubeObject): Record<string, unknown> =>
  isRecord(o.data) ? (o.data as Record<string, unknown>) : {};

function validate(obj: KubeObject, old: KubeObject | undefined): StatusCause[] {
  const causes = nameCauses(obj.metadata.name, 'subdomain');
  const data = dataOf(obj);
  for (const [k, v] of Object.entries(data)) {
    if (!KEY.test(k)) {
      causes.push(
        invalid(
          `data[${k}]`,
          k,
          "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        ),
      );
    }
    if (typeof v !== 'string' || v.length % 4 !== 0 || !BASE64.test(v)) {
      causes.push(invalid(`data[${k}]`, v, 'must be base64 data'));
    }
  }
  if (obj.type === TLS) {
    for (const k of ['tls.crt', 'tls.key']) if (!(k in data)) causes.push(required(`data[${k}]`));
  }
  if (old !== undefined) {
    causes.push(...immutable('type', obj.type, old.type));
    if (old.immutable === true) {
      causes.push(...immutable('immutable', obj.immutable, old.immutable));
      causes.push(...immutable('data', obj.data, old.data));
    }
  }
  return causes;
}

export const secretType: ResourceType = {
  group: '',
  version: 'v1',
  kind: 'Secret',
  listKind: 'SecretList',
  plural: 'secrets',
  singular: 'secret',
  namespaced: true,
  shortNames: [],
  statusSubresource: false,
  emptyFields: {},
  fieldLabels: { type: (o) => String(o.type ?? '') },
  validate,
  defaults: (obj) => {
    if (obj.type === undefined || obj.type === '') obj.type = 'Opaque';
    // The v1 → internal conversion: stringData overwrites data's keys and is never stored.
    if (isRecord(obj.stringData)) {
      const data = { ...dataOf(obj) };
      for (const [k, v] of Object.entries(obj.stringData as Record<string, unknown>)) {
        data[k] = Buffer.from(String(v), 'utf8').toString('base64');
      }
      obj.data = data;
    }
    delete obj.stringData;
    if (isRecord(obj.data) && Object.keys(obj.data).length === 0) delete obj.data;
  },
  columns: [
    nameColumn,
    column('Type', 'The type of the secret', (o) => String(o.type ?? '')),
    column('Data', 'The number of data items', (o) => String(Object.keys(dataOf(o)).length)),
    ageColumn,
  ],
};
