import { describe, expect, it } from 'vitest';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from './selectors.ts';
import { ApiError } from './status.ts';

const matches = (selector: string, labels?: Record<string, string>) =>
  matchesLabels(parseLabelSelector(selector), labels);

function badRequest(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    const err = e as ApiError;
    expect(err.code).toBe(400);
    expect(err.reason).toBe('BadRequest');
    return err;
  }
  throw new Error('expected a 400 BadRequest, but nothing was thrown');
}

describe('label selectors', () => {
  it('parses nothing from an empty or missing selector, which matches everything', () => {
    expect(parseLabelSelector('')).toEqual([]);
    expect(parseLabelSelector(null)).toEqual([]);
    expect(parseLabelSelector(undefined)).toEqual([]);
    expect(matches('', undefined)).toBe(true);
    expect(matches('', { a: 'b' })).toBe(true);
  });

  it('parses every operator into requirements', () => {
    expect(
      parseLabelSelector('a=1, b==2,c!=3,d in (x, y),e notin (z),f,!g,app.kubernetes.io/name=web'),
    ).toEqual([
      { key: 'a', op: '=', values: ['1'] },
      { key: 'b', op: '=', values: ['2'] },
      { key: 'c', op: '!=', values: ['3'] },
      { key: 'd', op: 'in', values: ['x', 'y'] },
      { key: 'e', op: 'notin', values: ['z'] },
      { key: 'f', op: 'exists', values: [] },
      { key: 'g', op: '!', values: [] },
      { key: 'app.kubernetes.io/name', op: '=', values: ['web'] },
    ]);
  });

  it('= and == need the key with that value', () => {
    expect(matches('tier=web', { tier: 'web' })).toBe(true);
    expect(matches('tier==web', { tier: 'web' })).toBe(true);
    expect(matches('tier=web', { tier: 'db' })).toBe(false);
    expect(matches('tier=web', {})).toBe(false);
    expect(matches('tier=web', undefined)).toBe(false);
    // An empty value matches only a label that is present and empty.
    expect(matches('tier=', { tier: '' })).toBe(true);
    expect(matches('tier=', {})).toBe(false);
  });

  it('!= matches a different value and a missing key', () => {
    expect(matches('tier!=web', { tier: 'db' })).toBe(true);
    expect(matches('tier!=web', {})).toBe(true);
    expect(matches('tier!=web', undefined)).toBe(true);
    expect(matches('tier!=web', { tier: 'web' })).toBe(false);
  });

  it('in needs the key with one of the values; notin excludes them and accepts a missing key', () => {
    expect(matches('env in (prod, staging)', { env: 'staging' })).toBe(true);
    expect(matches('env in (prod,staging)', { env: 'dev' })).toBe(false);
    expect(matches('env in (prod)', {})).toBe(false);
    expect(matches('env notin (prod,staging)', { env: 'dev' })).toBe(true);
    expect(matches('env notin (prod,staging)', {})).toBe(true);
    expect(matches('env notin (prod,staging)', { env: 'prod' })).toBe(false);
  });

  it('a bare key needs the key (any value); !key needs it absent', () => {
    expect(matches('canary', { canary: '' })).toBe(true);
    expect(matches('canary', { canary: 'yes' })).toBe(true);
    expect(matches('canary', { other: 'x' })).toBe(false);
    expect(matches('!canary', { other: 'x' })).toBe(true);
    expect(matches('!canary', undefined)).toBe(true);
    expect(matches('!canary', { canary: 'yes' })).toBe(false);
  });

  it('ANDs all requirements, with commas inside a value set not splitting it', () => {
    const sel = 'env in (prod,staging),tier=web,!canary';
    expect(matches(sel, { env: 'prod', tier: 'web' })).toBe(true);
    expect(matches(sel, { env: 'prod', tier: 'web', canary: 'y' })).toBe(false);
    expect(matches(sel, { env: 'dev', tier: 'web' })).toBe(false);
    expect(matches(sel, { env: 'staging', tier: 'db' })).toBe(false);
  });

  it('does not match inherited properties as labels', () => {
    expect(matches('constructor', {})).toBe(false);
    expect(matches('toString=x', {})).toBe(false);
  });

  it.each([
    ['a b', 'found'],
    ['=web', 'invalid label key'],
    ['tier=we b', 'found'],
    ['tier=-web', 'invalid label value'],
    ['tier=a=b', 'invalid label value'],
    [`tier=${'x'.repeat(64)}`, 'invalid label value'],
    ['Bad_Prefix/key=x', 'invalid label key'],
    ['env in ()', 'values set'],
    ['env notin ()', 'values set'],
    ['env in (a', 'found'],
    ['!', 'invalid label key'],
  ])('rejects %j with 400 BadRequest', (selector, fragment) => {
    const err = badRequest(() => parseLabelSelector(selector));
    expect(err.message).toContain('unable to parse requirement');
    expect(err.message).toContain(fragment);
    expect(err.message).toContain(`(in selector "${selector}")`);
    expect(err.toStatus()).toMatchObject({ kind: 'Status', code: 400, reason: 'BadRequest' });
  });
});

describe('field selectors', () => {
  const meta = { name: 'web', namespace: 'shop' };

  it('parses metadata.name and metadata.namespace with =, == and !=', () => {
    expect(parseFieldSelector('metadata.name=web,metadata.namespace!=kube-system')).toEqual([
      { field: 'metadata.name', equal: true, value: 'web' },
      { field: 'metadata.namespace', equal: false, value: 'kube-system' },
    ]);
    expect(parseFieldSelector('metadata.name==web')).toEqual([
      { field: 'metadata.name', equal: true, value: 'web' },
    ]);
    expect(parseFieldSelector('')).toEqual([]);
    expect(parseFieldSelector(null)).toEqual([]);
  });

  it('matches on name and namespace', () => {
    const m = (sel: string, md: { name: string; namespace?: string }) =>
      matchesFields(parseFieldSelector(sel), { apiVersion: 'v1', kind: 'Service', metadata: md });
    expect(m('metadata.name=web', meta)).toBe(true);
    expect(m('metadata.name=api', meta)).toBe(false);
    expect(m('metadata.name!=api', meta)).toBe(true);
    expect(m('metadata.name!=web', meta)).toBe(false);
    expect(m('metadata.namespace=shop', meta)).toBe(true);
    expect(m('metadata.namespace=default', meta)).toBe(false);
    expect(m('metadata.namespace=shop,metadata.name=api', meta)).toBe(false);
    // A cluster-scoped object has the empty namespace.
    expect(m('metadata.namespace=', { name: 'node-1' })).toBe(true);
    expect(m('metadata.namespace=shop', { name: 'node-1' })).toBe(false);
  });

  it.each(['spec.clusterIP=127.255.0.1', 'metadata.labels=x', 'status.phase!=Active'])(
    'rejects %j: field label not supported',
    (selector) => {
      const err = badRequest(() => parseFieldSelector(selector));
      expect(err.message).toBe(`field label not supported: ${selector.split(/!?=/)[0]}`);
    },
  );

  it('rejects a selector without an operator', () => {
    const err = badRequest(() => parseFieldSelector('metadata.name'));
    expect(err.message).toContain('invalid selector');
  });
});
