// Gateway and listener status: what fedgate can serve and why not.
import { describe, expect, it } from 'vitest';
import {
  compileObjects,
  conditionsByType,
  gateway,
  gatewayClass,
  gatewayStatus,
  HTTP_ADDRESS,
  httpRoute,
  listener,
  parentRef,
  referenceGrant,
  tlsSecret,
} from '../../test/helpers/gateway-objects.ts';

const gw = (...listeners: ReturnType<typeof listener>[]) => gateway({ name: 'gw' }, listeners);
const listenerStatus = (c: ReturnType<typeof compileObjects>, name: string) => {
  const l = gatewayStatus(c, 'gw').status.listeners.find((x) => x.name === name);
  if (l === undefined) throw new Error(`no listener ${name}`);
  return l;
};
const https = (certificateRefs: { name: string; namespace?: string; kind?: string }[]) =>
  listener({
    name: 'https',
    port: 443,
    protocol: 'HTTPS',
    tls: {
      mode: 'Terminate',
      certificateRefs: certificateRefs.map((r) => ({ group: '', kind: 'Secret', ...r })),
    },
  });

describe('listener status', () => {
  it('an HTTP listener on a mapped port is Accepted, ResolvedRefs, not Conflicted, Programmed', () => {
    const c = compileObjects({ gateways: [gw(listener({}))] });
    const l = listenerStatus(c, 'http');
    expect(conditionsByType(l.conditions)).toEqual({
      Accepted: ['True', 'Accepted'],
      ResolvedRefs: ['True', 'ResolvedRefs'],
      Conflicted: ['False', 'NoConflicts'],
      Programmed: ['True', 'Programmed'],
    });
    expect(l.supportedKinds).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' },
      { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' },
    ]);
    expect(l.conditions.every((x) => x.observedGeneration === 1)).toBe(true);
  });

  it.each(['TLS', 'TCP', 'UDP', 'example.com/custom'])(
    '%s is UnsupportedProtocol, with no kinds',
    (protocol) => {
      const c = compileObjects({ gateways: [gw(listener({ name: 'x', protocol }))] });
      const l = listenerStatus(c, 'x');
      expect(conditionsByType(l.conditions)).toMatchObject({
        Accepted: ['False', 'UnsupportedProtocol'],
        Programmed: ['False', 'Invalid'],
      });
      expect(l.supportedKinds).toEqual([]);
    },
  );

  it('a port no fedgate listener is mapped for is PortUnavailable and not Programmed', () => {
    const c = compileObjects({ gateways: [gw(listener({ name: 'p', port: 8081 }))] });
    const l = listenerStatus(c, 'p');
    expect(conditionsByType(l.conditions)).toMatchObject({
      Accepted: ['False', 'PortUnavailable'],
      Programmed: ['False', 'Invalid'],
    });
    expect(l.conditions.find((x) => x.type === 'Programmed')?.message).toContain(
      'gatewayAPI.listeners',
    );
  });

  it('a port fedgate serves with the other protocol is PortUnavailable', () => {
    const c = compileObjects({
      gateways: [gw(listener({ name: 'p', port: 443, protocol: 'HTTP' }))],
    });
    const accepted = listenerStatus(c, 'p').conditions.find((x) => x.type === 'Accepted');
    expect([accepted?.reason, accepted?.message]).toEqual([
      'PortUnavailable',
      expect.stringContaining('as HTTPS'),
    ]);
  });

  it('HTTPS with a TLS Secret of its namespace resolves and is Programmed', () => {
    const c = compileObjects({
      gateways: [gw(https([{ name: 'cert' }]))],
      secrets: [tlsSecret({ name: 'cert' })],
    });
    expect(conditionsByType(listenerStatus(c, 'https').conditions)).toMatchObject({
      ResolvedRefs: ['True', 'ResolvedRefs'],
      Programmed: ['True', 'Programmed'],
    });
  });

  it('HTTPS whose Secret is missing, of another kind, or absent is InvalidCertificateRef', () => {
    for (const refs of [[{ name: 'gone' }], [{ name: 'cert', kind: 'ConfigMap' }], []]) {
      const c = compileObjects({
        gateways: [gw(https(refs))],
        secrets: [tlsSecret({ name: 'cert' })],
      });
      expect(
        conditionsByType(listenerStatus(c, 'https').conditions),
        JSON.stringify(refs),
      ).toMatchObject({
        Accepted: ['True', 'Accepted'],
        ResolvedRefs: ['False', 'InvalidCertificateRef'],
        Programmed: ['False', 'Invalid'],
      });
    }
  });

  it('HTTPS whose Secret is in another namespace needs a ReferenceGrant (RefNotPermitted)', () => {
    const objects = {
      gateways: [gw(https([{ name: 'cert', namespace: 'certs' }]))],
      secrets: [tlsSecret({ name: 'cert', namespace: 'certs' })],
    };
    expect(
      conditionsByType(listenerStatus(compileObjects(objects), 'https').conditions).ResolvedRefs,
    ).toEqual(['False', 'RefNotPermitted']);
    const grant = referenceGrant(
      { name: 'g', namespace: 'certs' },
      [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'default' }],
      [{ group: '', kind: 'Secret', name: 'cert' }],
    );
    const granted = compileObjects({ ...objects, referenceGrants: [grant] });
    expect(conditionsByType(listenerStatus(granted, 'https').conditions).ResolvedRefs).toEqual([
      'True',
      'ResolvedRefs',
    ]);
  });

  it('HTTPS Passthrough is UnsupportedValue', () => {
    const l = listener({
      name: 'pt',
      port: 443,
      protocol: 'HTTPS',
      tls: { mode: 'Passthrough', certificateRefs: [] },
    });
    expect(
      conditionsByType(listenerStatus(compileObjects({ gateways: [gw(l)] }), 'pt').conditions)
        .Accepted,
    ).toEqual(['False', 'UnsupportedValue']);
  });

  it('kinds fedgate does not serve are left out of supportedKinds and make ResolvedRefs InvalidRouteKinds', () => {
    const l = listener({
      allowedRoutes: {
        from: 'Same',
        kinds: [
          { group: 'gateway.networking.k8s.io', kind: 'TCPRoute' },
          { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' },
        ],
      },
    });
    const s = listenerStatus(compileObjects({ gateways: [gw(l)] }), 'http');
    expect(s.supportedKinds).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' }]);
    expect(conditionsByType(s.conditions).ResolvedRefs).toEqual(['False', 'InvalidRouteKinds']);
  });

  it('two listeners on one port with different protocols are Conflicted (ProtocolConflict) and not Programmed', () => {
    const c = compileObjects({
      gateways: [
        gw(
          listener({ name: 'a' }),
          listener({
            name: 'b',
            protocol: 'HTTPS',
            tls: { mode: 'Terminate', certificateRefs: [] },
          }),
        ),
      ],
    });
    expect(conditionsByType(listenerStatus(c, 'a').conditions)).toMatchObject({
      Conflicted: ['True', 'ProtocolConflict'],
      Programmed: ['False', 'Invalid'],
    });
  });

  it('two listeners on one port with one hostname are Conflicted (HostnameConflict)', () => {
    const c = compileObjects({
      gateways: [
        gw(
          listener({ name: 'a', hostname: 'x.test' }),
          listener({ name: 'b', hostname: 'x.test' }),
        ),
      ],
    });
    expect(conditionsByType(listenerStatus(c, 'b').conditions).Conflicted).toEqual([
      'True',
      'HostnameConflict',
    ]);
  });

  it('attachedRoutes counts a route once per listener, even through two parentRefs', () => {
    const route = httpRoute(
      { name: 'r' },
      { parentRefs: [parentRef({ name: 'gw' }), parentRef({ name: 'gw', sectionName: 'http' })] },
    );
    const c = compileObjects({ gateways: [gw(listener({}))], httpRoutes: [route] });
    expect(listenerStatus(c, 'http').attachedRoutes).toBe(1);
  });
});

describe('Gateway status', () => {
  it('all listeners fine: Accepted, Programmed, and fedgate addresses', () => {
    const c = compileObjects({ gateways: [gw(listener({}))] });
    const s = gatewayStatus(c, 'gw').status;
    expect(conditionsByType(s.conditions)).toEqual({
      Accepted: ['True', 'Accepted'],
      Programmed: ['True', 'Programmed'],
    });
    expect(s.addresses).toEqual([{ type: 'IPAddress', value: '127.220.0.1' }]);
  });

  it('some listeners invalid: Accepted True with ListenersNotValid; all invalid: Accepted False', () => {
    const some = compileObjects({
      gateways: [gw(listener({}), listener({ name: 'tcp', port: 9000, protocol: 'TCP' }))],
    });
    expect(conditionsByType(gatewayStatus(some, 'gw').status.conditions)).toEqual({
      Accepted: ['True', 'ListenersNotValid'],
      Programmed: ['True', 'Programmed'],
    });
    const none = compileObjects({
      gateways: [gw(listener({ name: 'tcp', port: 9000, protocol: 'TCP' }))],
    });
    expect(conditionsByType(gatewayStatus(none, 'gw').status.conditions)).toEqual({
      Accepted: ['False', 'ListenersNotValid'],
      Programmed: ['False', 'Invalid'],
    });
  });

  it('without an address of fedgate it is not Programmed (AddressNotAssigned)', () => {
    const c = compileObjects({ gateways: [gw(listener({}))] }, undefined, { addresses: [] });
    expect(conditionsByType(gatewayStatus(c, 'gw').status.conditions).Programmed).toEqual([
      'False',
      'AddressNotAssigned',
    ]);
  });

  it('observedGeneration is the Gateway generation', () => {
    const c = compileObjects({
      gateways: [gateway({ name: 'gw', generation: 7 }, [listener({})])],
    });
    const s = gatewayStatus(c, 'gw').status;
    expect(
      [...s.conditions, ...(s.listeners[0]?.conditions ?? [])].map((x) => x.observedGeneration),
    ).toEqual(Array(6).fill(7));
  });

  it("Gateways of another controller's class get no status and no table", () => {
    const c = compileObjects({
      gatewayClasses: [gatewayClass(), gatewayClass({ name: 'other' }, 'example.com/other')],
      gateways: [
        gateway({ name: 'theirs' }, [listener({})], 'other'),
        gateway({ name: 'orphan' }, [listener({})], 'missing'),
      ],
    });
    expect(c.status.objects.filter((o) => o.kind === 'Gateway')).toEqual([]);
    expect(c.status.objects.filter((o) => o.kind === 'GatewayClass').map((o) => o.name)).toEqual([
      'fedgate',
    ]);
    expect(c.tables.listeners).toEqual([]);
  });

  it('a GatewayClass of fedgate is Accepted', () => {
    const c = compileObjects({});
    const cls = c.status.objects.find((o) => o.kind === 'GatewayClass');
    expect(cls && conditionsByType(cls.status.conditions)).toEqual({
      Accepted: ['True', 'Accepted'],
    });
  });

  it('a programmed listener opens its fedgate listener table even with no route', () => {
    const c = compileObjects({ gateways: [gw(listener({}))] });
    expect(c.tables.listeners).toEqual([
      { address: HTTP_ADDRESS, tls: false, gatewayPort: 80, hosts: [] },
    ]);
  });

  it('two Gateway ports on one fedgate listener leave it no Gateway port (redirects keep its own)', () => {
    const c = compileObjects(
      { gateways: [gw(listener({}), listener({ name: 'alt', port: 8000 }))] },
      undefined,
      {
        listeners: [
          { port: 80, protocol: 'HTTP', address: HTTP_ADDRESS },
          { port: 8000, protocol: 'HTTP', address: HTTP_ADDRESS },
        ],
      },
    );
    expect(c.tables.listeners).toEqual([{ address: HTTP_ADDRESS, tls: false, hosts: [] }]);
  });
});
