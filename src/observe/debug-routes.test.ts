import { describe, expect, it } from 'vitest';
import { service } from '../../test/fixtures/services.ts';
import { backend, httpMatch, rule, tables } from '../../test/helpers/gateway-rules.ts';
import type { Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import { GatewayRoutes } from '../proxy/gateway.ts';
import { seededRandom } from '../routing/random.ts';
import { explainRoute } from './debug-routes.ts';

const config = {
  http: { listen: [{ host: '127.0.0.1', port: 8080 }], tls: undefined },
} as unknown as Config;

const svc = (key: string) =>
  service([{ cluster: 'c0', endpoints: [{ address: '127.221.9.1' }] }], key);
const snapshot: Snapshot = {
  version: 1,
  createdAt: 0,
  services: new Map([
    ['shop/v1', svc('shop/v1')],
    ['shop/v2', svc('shop/v2')],
  ]),
  clusters: new Map(),
};

const gateway = new GatewayRoutes();
gateway.set(
  tables('127.0.0.1:8080', {
    'shop.example.test': [
      rule({
        route: 'shop/api',
        matches: [httpMatch({ path: { type: 'Exact', value: '/api' }, method: 'POST' })],
        backends: [backend('shop/v2')],
      }),
      rule({
        route: 'shop/web',
        matches: [httpMatch({ headers: { 'x-canary': 'yes' } })],
        backends: [backend('shop/v1', 0), backend('shop/v2', 1)],
      }),
      rule({
        route: 'shop/old',
        matches: [httpMatch({ path: { type: 'PathPrefix', value: '/old' } })],
        filters: [
          {
            type: 'RequestRedirect',
            requestRedirect: {
              statusCode: 301,
              path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' },
            },
          },
        ],
      }),
    ],
  }),
);

const explain = (q: string) =>
  explainRoute(
    gateway,
    config,
    snapshot,
    'shop.example.test',
    new URLSearchParams(q),
    seededRandom(1),
  );

describe('explainRoute', () => {
  it('shows the rule taken, why earlier ones did not match, and the backend the weights chose', () => {
    const e = explain('path=/api&header=X-Canary:yes');
    expect(e?.service?.key).toBe('shop/v2');
    expect(e?.body.matched).toMatchObject({ route: 'shop/web', rule: 0 });
    expect(e?.body.misses).toEqual([
      expect.objectContaining({ route: 'shop/api', why: 'method is not POST' }),
      // A longer PathPrefix is tried before the rule's '/'.
      expect.objectContaining({ route: 'shop/old', why: 'path is not under "/old" (PathPrefix)' }),
    ]);
    expect(e?.body.decision).toMatchObject({
      kind: 'backend',
      chosen: 'shop/v2',
      weights: [
        { service: 'shop/v1', weight: 0, problem: null },
        { service: 'shop/v2', weight: 1, problem: null },
      ],
    });
  });

  it('takes the method, and shows a redirect', () => {
    expect(explain('method=post&path=/api')?.body.matched).toMatchObject({ route: 'shop/api' });
    expect(explain('path=/old/x?y=1')?.body.decision).toEqual({
      kind: 'redirect',
      status: 301,
      location: 'http://shop.example.test:8080/new/x?y=1',
    });
  });

  it('says when no rule matches, and leaves hosts no route covers to Host routing', () => {
    expect(explain('path=/nothing')?.body.decision).toMatchObject({ kind: 'none' });
    expect(
      explainRoute(gateway, config, snapshot, 'other.test', new URLSearchParams(''), Math.random),
    ).toBeUndefined();
    expect(
      explainRoute(
        gateway,
        config,
        snapshot,
        'shop.example.test',
        new URLSearchParams('listener=127.0.0.1:9'),
        Math.random,
      ),
    ).toBeUndefined();
  });
});
