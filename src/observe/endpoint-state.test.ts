import { describe, expect, it } from 'vitest';
import { endpoint } from '../../test/fixtures/services.ts';
import { endpointState } from './endpoint-state.ts';

const ADDRESS = '127.10.0.1';

describe('endpointState', () => {
  it('takes the cluster word first: terminating, then not ready, whatever health says', () => {
    const ejected = { check: 'unhealthy' as const, ejectedUntil: 5 };
    expect(endpointState(endpoint({ address: ADDRESS, terminating: true }), ejected)).toBe(
      'terminating',
    );
    expect(
      endpointState(endpoint({ address: ADDRESS, ready: false, terminating: true }), undefined),
    ).toBe('terminating');
    expect(endpointState(endpoint({ address: ADDRESS, ready: false }), ejected)).toBe('not-ready');
  });

  it('of a ready endpoint: ejected before a failing check, and ready when nothing was found', () => {
    const ready = endpoint({ address: ADDRESS });
    expect(endpointState(ready, { check: 'unhealthy', ejectedUntil: 5 })).toBe('ejected');
    expect(endpointState(ready, { check: 'healthy', ejectedUntil: 5 })).toBe('ejected');
    expect(endpointState(ready, { check: 'unhealthy' })).toBe('check-failing');
    expect(endpointState(ready, { check: 'unknown' })).toBe('ready');
    expect(endpointState(ready, undefined)).toBe('ready');
  });
});
