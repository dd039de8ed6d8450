import { describe, expect, it } from 'vitest';
import { applyStrategicMergePatch } from './smp.ts';
import { ApiError } from './status.ts';

const service = {
  metadata: { name: 'web', labels: { a: '1', b: '2' }, finalizers: ['x'] },
  spec: {
    ports: [
      { name: 'http', port: 80, targetPort: 8080 },
      { name: 'https', port: 443, targetPort: 8443 },
    ],
    selector: { app: 'web', tier: 'front' },
  },
};

describe('strategic merge patch', () => {
  it('merges a list with a merge key item by item, and replaces a list without one', () => {
    const out = applyStrategicMergePatch('Service', service, {
      spec: {
        ports: [
          { port: 80, targetPort: 9090 },
          { name: 'admin', port: 9000 },
        ],
        externalIPs: ['127.192.2.1'],
      },
    }) as typeof service & { spec: { externalIPs: string[] } };
    // apimachinery's mergeSortedSlice: an item new to the server goes before the server's
    // remaining ones (kube-apiserver 1.37 answers a patch adding port 81 to [80] with [81, 80]).
    expect(out.spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 9090 },
      { name: 'admin', port: 9000 },
      { name: 'https', port: 443, targetPort: 8443 },
    ]);
    expect(out.spec.externalIPs).toEqual(['127.192.2.1']);
    const slice = applyStrategicMergePatch(
      'EndpointSlice',
      { endpoints: [{ addresses: ['127.10.0.1'] }, { addresses: ['127.10.0.2'] }] },
      { endpoints: [{ addresses: ['127.10.0.3'] }] },
    );
    expect(slice).toEqual({ endpoints: [{ addresses: ['127.10.0.3'] }] });
  });

  it('follows the directives kubectl apply emits', () => {
    const out = applyStrategicMergePatch('Service', service, {
      metadata: { labels: { a: null }, '$deleteFromPrimitiveList/finalizers': ['x'] },
      spec: {
        '$setElementOrder/ports': [{ port: 443 }, { port: 80 }],
        ports: [{ port: 80, $patch: 'delete' }],
        selector: { $patch: 'replace', app: 'web2' },
      },
    }) as typeof service;
    expect(out.metadata.labels).toEqual({ b: '2' });
    expect(out.metadata.finalizers).toEqual([]);
    expect(out.spec.ports).toEqual([{ name: 'https', port: 443, targetPort: 8443 }]);
    expect(out.spec.selector).toEqual({ app: 'web2' });
    const reordered = applyStrategicMergePatch('Service', service, {
      spec: { '$setElementOrder/ports': [{ port: 443 }, { port: 80 }] },
    }) as typeof service;
    expect(reordered.spec.ports.map((p) => p.port)).toEqual([443, 80]);
    const retained = applyStrategicMergePatch('Service', service, {
      spec: { $retainKeys: ['ports'], ports: [] },
    }) as typeof service;
    expect(Object.keys(retained.spec)).toEqual(['ports']);
  });

  it('refuses custom resources with 415 and malformed patches with 400', () => {
    const refuse = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as ApiError).code;
      }
      return 0;
    };
    expect(refuse(() => applyStrategicMergePatch('ServiceExport', {}, {}))).toBe(415);
    expect(
      refuse(() =>
        applyStrategicMergePatch('Service', service, { spec: { ports: [{ name: 'no-key' }] } }),
      ),
    ).toBe(400);
    expect(
      refuse(() => applyStrategicMergePatch('Service', service, { spec: { $patch: 'explode' } })),
    ).toBe(400);
    expect(() => applyStrategicMergePatch('Service', service, {})).not.toThrow(ApiError);
  });
});
