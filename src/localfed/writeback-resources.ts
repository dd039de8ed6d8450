// The kinds fedgate's write-back uses, served as kube-apiserver serves them: the
// built-in coordination.k8s.io/v1 Lease (leader election) and the MCS API's
// ServiceImport (a CRD, sigs.k8s.io/mcs-api v1alpha1, with its status subresource
// and printer columns). ServiceExport's status subresource is in resources.ts.
import { ageColumn, column, nameColumn } from './columns.ts';
import { isRecord, type KubeObject } from './objects.ts';
import type { ResourceType } from './resource-type.ts';
import type { StatusCause } from './status.ts';
import { conditionCauses, invalid, nameCauses, required } from './validation.ts';

function specOf(obj: KubeObject): Record<string, unknown> {
  return isRecord(obj.spec) ? (obj.spec as Record<string, unknown>) : {};
}

export const leaseType: ResourceType = {
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  listKind: 'LeaseList',
  plural: 'leases',
  singular: 'lease',
  namespaced: true,
  shortNames: [],
  statusSubresource: false,
  emptyFields: { spec: {} },
  validate: (obj) => {
    const causes = nameCauses(obj.metadata.name, 'subdomain');
    const s = specOf(obj);
    // kube-apiserver's ValidateLeaseSpec: durations and transitions are never negative.
    if (s.leaseDurationSeconds !== undefined && Number(s.leaseDurationSeconds) <= 0) {
      causes.push(
        invalid('spec.leaseDurationSeconds', s.leaseDurationSeconds, 'must be greater than 0'),
      );
    }
    if (s.leaseTransitions !== undefined && Number(s.leaseTransitions) < 0) {
      causes.push(
        invalid('spec.leaseTransitions', s.leaseTransitions, 'must be greater than or equal to 0'),
      );
    }
    return causes;
  },
  defaults: (obj) => {
    if (!isRecord(obj.spec)) obj.spec = {};
  },
  columns: [
    nameColumn,
    column('Holder', 'Holder is the identity of the lease holder', (o) =>
      String(specOf(o).holderIdentity ?? ''),
    ),
    ageColumn,
  ],
};

const IMPORT_TYPES = ['ClusterSetIP', 'Headless'];

export const serviceImportType: ResourceType = {
  group: 'multicluster.x-k8s.io',
  version: 'v1alpha1',
  kind: 'ServiceImport',
  listKind: 'ServiceImportList',
  plural: 'serviceimports',
  singular: 'serviceimport',
  namespaced: true,
  shortNames: ['svcim', 'svcimport'],
  statusSubresource: true,
  custom: true,
  deleteAnswersStatus: true,
  generation: true,
  validate: (obj) => {
    const causes: StatusCause[] = [...nameCauses(obj.metadata.name, 'dns1035')];
    const s = specOf(obj);
    // The CRD's schema: spec requires ports and type, type is an enum, ips at most two.
    if (!Array.isArray(s.ports)) causes.push(required('spec.ports'));
    if (s.type === undefined) causes.push(required('spec.type'));
    else if (!IMPORT_TYPES.includes(String(s.type))) {
      causes.push({
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: ${JSON.stringify(s.type)}: supported values: "ClusterSetIP", "Headless"`,
        field: 'spec.type',
      });
    }
    if (Array.isArray(s.ips) && s.ips.length > 2) {
      causes.push({
        reason: 'FieldValueTooMany',
        message: `Too many: ${s.ips.length}: must have at most 2 items`,
        field: 'spec.ips',
      });
    }
    causes.push(...conditionCauses(obj.status));
    return causes;
  },
  defaults: () => {},
  columns: [
    nameColumn,
    column('Type', 'The type of this ServiceImport', (o) => String(specOf(o).type ?? '')),
    column('IP', 'The VIP for this ServiceImport', (o) => {
      const ips = specOf(o).ips;
      return ips === undefined ? '' : JSON.stringify(ips);
    }),
    // A CRD's Age column is a date; kube-apiserver still renders the cell as an age.
    { ...ageColumn, type: 'date' },
  ],
};

export const WRITEBACK_TYPES: readonly ResourceType[] = [leaseType, serviceImportType];
