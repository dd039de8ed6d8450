import { describe, expect, it } from 'vitest';
import { endpoint, service } from '../../test/fixtures/services.ts';
import type { Target } from '../routing/types.ts';
import { type RouteDeps, Routes } from './route.ts';

describe('Routes.upstream: the service port a Gateway API backendRef names', () => {
  const svc = service([], 'shop/web', {
    ports: [
      { name: 'http', protocol: 'TCP', port: 80 },
      { name: 'admin', protocol: 'TCP', port: 9090, appProtocol: 'kubernetes.io/h2c' },
    ],
  });
  const e = endpoint({ address: '127.221.3.1' });
  const target: Target = {
    id: 'c0/127.221.3.1',
    cluster: 'c0',
    address: '127.221.3.1',
    endpoint: {
      ...e,
      ports: [
        { name: 'http', protocol: 'TCP', port: 8080 },
        { name: 'admin', protocol: 'TCP', port: 9999 },
      ],
    },
    weight: 1,
    share: 1,
  };
  const routes = new Routes({ router: { self: undefined } } as unknown as RouteDeps);

  it("takes the named port's target port and protocol, else the proxy's choice", () => {
    expect(routes.upstream(svc, target).origin).toBe('http://127.221.3.1:8080');
    const admin = routes.upstream(svc, target, 9090);
    expect(admin.origin).toBe('http://127.221.3.1:9999');
    expect(admin.wire.h2).toBe(true);
    // A port the service does not have: the proxy's own choice.
    expect(routes.upstream(svc, target, 1234).origin).toBe('http://127.221.3.1:8080');
    expect(routes.upstream(svc, target).origin).toBe('http://127.221.3.1:8080');
  });
});
