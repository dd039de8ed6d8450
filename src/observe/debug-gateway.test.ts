import { describe, expect, it } from 'vitest';
import { backend, httpMatch, rule } from '../../test/helpers/gateway-rules.ts';
import { routeStatus } from '../../test/helpers/gateway-status.ts';
import type { RouteTables } from '../gateway/attached.ts';
import { condition, type StatusReport } from '../gateway/status.ts';
import { gatewayJson, matchText } from './debug-gateway.ts';

const accepted = condition(3, 'Accepted', true, 'Accepted', 'ok');
const report: StatusReport = {
  objects: [
    {
      kind: 'Gateway',
      cluster: 'alpha',
      namespace: 'shop',
      name: 'edge',
      status: {
        addresses: [{ type: 'IPAddress', value: '127.226.0.1' }],
        conditions: [accepted, condition(3, 'Programmed', true, 'Programmed', 'serving')],
        listeners: [
          {
            name: 'http',
            supportedKinds: [],
            attachedRoutes: 2,
            conditions: [accepted],
          },
        ],
      },
    },
    routeStatus('shop/shop', { name: 'edge' }, [accepted]),
    routeStatus('shop/broken', { namespace: 'other', name: 'edge', sectionName: 'https' }, [
      condition(1, 'Accepted', false, 'NoMatchingParent', 'no listener https'),
    ]),
  ],
};

const api = rule({
  route: 'shop/shop',
  index: 0,
  matches: [httpMatch({ path: { type: 'PathPrefix', value: '/api' } })],
  backends: [backend('shop/api', 1, { port: 80 })],
});
const split = rule({
  route: 'shop/shop',
  index: 1,
  backends: [
    backend('shop/web', 90, { port: 80 }),
    backend('shop/gone', 10, { problem: { reason: 'BackendNotFound', message: 'no shop/gone' } }),
  ],
});
// The route's rules under two hostnames: each shown once, in index order.
const tables: RouteTables = {
  listeners: [
    {
      address: '127.226.0.1:80',
      tls: false,
      hosts: [
        { hostname: 'shop.example.test', rules: [split, api] },
        { hostname: 'www.example.test', rules: [api, split] },
      ],
    },
  ],
};

describe('gatewayJson', () => {
  it('lists Gateways with listeners and conditions, routes with parents, rules and shares', () => {
    const body = gatewayJson(
      { report, tables },
      new Map([
        ['shop/shop#0', 1],
        ['shop/shop#1', 3],
      ]),
    );
    expect(body.gateways).toEqual([
      {
        cluster: 'alpha',
        namespace: 'shop',
        name: 'edge',
        addresses: ['127.226.0.1'],
        conditions: [
          { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok' },
          { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'serving' },
        ],
        listeners: [
          {
            name: 'http',
            attachedRoutes: 2,
            conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok' }],
          },
        ],
      },
    ]);
    const [shop, broken] = body.routes as Record<string, unknown>[];
    expect(shop).toMatchObject({
      kind: 'HTTPRoute',
      namespace: 'shop',
      name: 'shop',
      parents: [{ gateway: 'shop/edge', sectionName: null }],
      rules: [
        {
          index: 0,
          matches: ['PathPrefix /api'],
          backends: [{ service: 'shop/api', port: 80, weight: 1, problem: null }],
          requests: 1,
          share: 0.25,
        },
        {
          index: 1,
          matches: ['PathPrefix /'],
          backends: [
            { service: 'shop/web', port: 80, weight: 90, problem: null },
            {
              service: 'shop/gone',
              port: null,
              weight: 10,
              problem: 'BackendNotFound: no shop/gone',
            },
          ],
          requests: 3,
          share: 0.75,
        },
      ],
    });
    // Not accepted: its parent says why, and it has no rule in force.
    expect(broken).toMatchObject({
      name: 'broken',
      parents: [
        {
          gateway: 'other/edge',
          sectionName: 'https',
          conditions: [
            {
              type: 'Accepted',
              status: 'False',
              reason: 'NoMatchingParent',
              message: 'no listener https',
            },
          ],
        },
      ],
      rules: [],
    });
  });

  it('gives no share before a route matched anything, and nothing before a compilation', () => {
    const body = gatewayJson({ report, tables }, new Map());
    const rules = (body.routes as { rules: { requests: number; share: number | null }[] }[])[0]
      ?.rules;
    expect(rules?.map((r) => [r.requests, r.share])).toEqual([
      [0, null],
      [0, null],
    ]);
    expect(gatewayJson({ report: undefined, tables: { listeners: [] } }, new Map())).toEqual({
      gateways: [],
      routes: [],
    });
  });
});

describe('matchText', () => {
  it('says an HTTP match in short: method, path, headers and query (~ for a pattern)', () => {
    const m = httpMatch({
      method: 'POST',
      path: { type: 'Exact', value: '/api' },
      headers: [{ type: 'RegularExpression', name: 'x-v', value: 'v[23]' }],
      query: { debug: '1' },
    });
    expect(matchText(m)).toBe('POST Exact /api header x-v~v[23] query debug=1');
  });

  it('says a gRPC match in short; an empty one matches any call', () => {
    expect(
      matchText({ method: { type: 'Exact', service: 'shop.Cart', method: 'Add' }, headers: [] }),
    ).toBe('shop.Cart/Add');
    expect(
      matchText({
        method: { type: 'RegularExpression', service: 'shop\\..*' },
        headers: [{ type: 'Exact', name: 'x-v', value: '2' }],
      }),
    ).toBe('~shop\\..*/* header x-v=2');
    expect(matchText({ headers: [] })).toBe('any');
  });
});
