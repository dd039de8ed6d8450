// The Gateway API channel a member serves: the experimental CRDs' fields (HTTPRoute
// rules' `retry`) pruned on a standard-channel member and kept on an experimental one,
// and the scenario key that chooses it.
import { describe, expect, it } from 'vitest';
import { pruneUnknownFields } from './fields.ts';
import type { KubeObject } from './objects.ts';
import { Registry } from './registry.ts';
import { findType, type ResourceType } from './resources.ts';
import { parseScenario } from './scenario.ts';
import { ClusterStore } from './store.ts';

const G = 'gateway.networking.k8s.io';
const RETRY = { codes: [500, 502], attempts: 2, backoff: '100ms' };

const route = (): KubeObject => ({
  apiVersion: `${G}/v1`,
  kind: 'HTTPRoute',
  metadata: { name: 'retries', namespace: 'shop' },
  spec: { parentRefs: [{ name: 'gw' }], rules: [{ retry: structuredClone(RETRY) }] },
});

const rules = (o: KubeObject) => (o.spec as { rules: Record<string, unknown>[] }).rules;

function registry(channel?: 'standard' | 'experimental'): Registry {
  const reg = new Registry(new ClusterStore(), undefined, channel);
  reg.create(findType('', 'v1', 'namespaces') as ResourceType, undefined, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'shop' },
  });
  return reg;
}

describe('the Gateway API channel', () => {
  it('standard (the default) prunes a rule’s retry; experimental keeps it', () => {
    const standard = route();
    expect(pruneUnknownFields('HTTPRoute', standard)).toEqual(['spec.rules[0].retry']);
    expect(rules(standard)[0]).not.toHaveProperty('retry');
    const experimental = route();
    expect(pruneUnknownFields('HTTPRoute', experimental, 'experimental')).toEqual([]);
    expect(rules(experimental)[0]?.retry).toEqual(RETRY);
  });

  it('an experimental member stores the retry, validated and defaulted by its schema', () => {
    const reg = registry('experimental');
    const http = findType(G, 'v1', 'httproutes') as ResourceType;
    const made = reg.create(http, 'shop', route());
    expect(rules(made)[0]?.retry).toEqual(RETRY);
    // The rest of the rule defaulted as on the standard channel.
    expect(rules(made)[0]?.matches).toEqual([{ path: { type: 'PathPrefix', value: '/' } }]);
    expect(registry().gatewayApiChannel).toBe('standard');
  });

  it('a scenario says which channel its members serve (default standard)', () => {
    const base = [
      'federation: { name: f, domain: f.test }',
      'clusters: [{ name: a, region: r, zones: [{ name: z }] }]',
    ];
    expect(parseScenario(base.join('\n')).gatewayAPIChannel).toBe('standard');
    const exp = parseScenario([...base, 'gatewayAPIChannel: experimental'].join('\n'));
    expect(exp.gatewayAPIChannel).toBe('experimental');
    expect(() => parseScenario([...base, 'gatewayAPIChannel: beta'].join('\n'))).toThrow(
      /gatewayAPIChannel/,
    );
  });
});
