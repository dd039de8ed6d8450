import { beforeEach, describe, expect, it } from 'vitest';
import { apiError, mustType } from '../../test/helpers/registry.ts';
import type { KubeObject } from './objects.ts';
import { Registry } from './registry.ts';
import { ClusterStore } from './store.ts';

const NS = mustType('', 'v1', 'namespaces');
const SECRET = mustType('', 'v1', 'secrets');

const secret = (rest: Partial<KubeObject>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'cert', namespace: 'ops' },
  ...rest,
});
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('Secrets in the simulator', () => {
  let reg: Registry;
  beforeEach(() => {
    reg = new Registry(new ClusterStore(), () => new Date('2026-12-03T12:00:00Z'));
    reg.create(NS, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ops' } });
  });

  it('folds stringData into data (base64, over data’s keys) and stores no stringData; type defaults to Opaque', () => {
    const made = reg.create(
      SECRET,
      'ops',
      secret({ data: { a: b64('old'), b: b64('kept') }, stringData: { a: 'new' } }),
    );
    expect(made.type).toBe('Opaque');
    expect(made.data).toEqual({ a: b64('new'), b: b64('kept') });
    expect(made.stringData).toBeUndefined();
    expect(reg.get(SECRET, 'ops', 'cert').data).toEqual(made.data);
  });

  it('kubernetes.io/tls needs tls.crt and tls.key; data must be base64', () => {
    const err = apiError(() =>
      reg.create(
        SECRET,
        'ops',
        secret({ type: 'kubernetes.io/tls', data: { 'tls.crt': b64('x') } }),
      ),
    );
    expect(err.code).toBe(422);
    expect(err.message).toContain('data[tls.key]: Required value');
    const bad = apiError(() => reg.create(SECRET, 'ops', secret({ data: { a: 'not base64!' } })));
    expect(bad.code).toBe(422);
  });

  it('type is immutable; data changes; immutable: true freezes data; delete removes it', () => {
    const tls = { type: 'kubernetes.io/tls', stringData: { 'tls.crt': 'c', 'tls.key': 'k' } };
    reg.create(SECRET, 'ops', secret(tls));
    const err = apiError(() =>
      reg.update(SECRET, 'ops', 'cert', secret({ ...tls, type: 'Opaque' })),
    );
    expect(err.code).toBe(422);
    expect(err.message).toContain('field is immutable');
    const rotated = reg.update(
      SECRET,
      'ops',
      'cert',
      secret({ ...tls, stringData: { 'tls.crt': 'c2', 'tls.key': 'k2' } }),
    );
    expect(rotated.data).toEqual({ 'tls.crt': b64('c2'), 'tls.key': b64('k2') });
    reg.update(SECRET, 'ops', 'cert', secret({ ...tls, immutable: true }));
    const frozen = apiError(() =>
      reg.update(
        SECRET,
        'ops',
        'cert',
        secret({ ...tls, immutable: true, stringData: { 'tls.crt': 'c3', 'tls.key': 'k' } }),
      ),
    );
    expect(frozen.code).toBe(422);
    reg.delete(SECRET, 'ops', 'cert');
    expect(apiError(() => reg.get(SECRET, 'ops', 'cert')).code).toBe(404);
  });
});
