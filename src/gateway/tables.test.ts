// sameTables: what GatewayFeed decides by whether new tables go to the proxies.
import { describe, expect, it } from 'vitest';
import { backendRef, MAPPINGS, rule, serviceLookup } from '../../test/helpers/gateway-objects.ts';
import type { ListenerTable, RouteTables } from './attached.ts';
import { compileHttpRules } from './rules.ts';
import { sameTables } from './tables.ts';

const rules = (name: string) =>
  compileHttpRules(
    {
      cluster: 'east',
      namespace: 'default',
      name,
      generation: 1,
      createdAt: 0,
      uid: name,
      parentRefs: [],
      hostnames: [],
      rules: [rule({ backendRefs: [backendRef({ name: 'a', port: 80 })] })],
    },
    serviceLookup({ 'default/a': [80] }),
    [],
  ).rules;

const listener = (over: Partial<ListenerTable> = {}): ListenerTable => ({
  address: MAPPINGS[0]?.address ?? '',
  tls: false,
  hosts: [{ hostname: 'a.test', rules: rules('r') }],
  ...over,
});
const tables = (...listeners: ListenerTable[]): RouteTables => ({ listeners });

describe('sameTables', () => {
  it('the same content in other objects is the same', () => {
    expect(sameTables(tables(listener()), tables(listener()))).toBe(true);
  });

  it('a host whose rules differ, a field of the listener, or a listener more is not', () => {
    const other = { hostname: 'a.test', rules: rules('s') };
    expect(sameTables(tables(listener()), tables(listener({ hosts: [other] })))).toBe(false);
    expect(sameTables(tables(listener()), tables(listener({ gatewayPort: 80 })))).toBe(false);
    expect(sameTables(tables(listener()), tables(listener({ tls: true })))).toBe(false);
    expect(sameTables(tables(listener()), tables(listener(), listener({ address: 'x:1' })))).toBe(
      false,
    );
  });
});
