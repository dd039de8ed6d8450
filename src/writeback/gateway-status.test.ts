import { describe, expect, it } from 'vitest';
import type { ObjectStatusReport } from '../gateway/status.ts';
import { gatewayRef, gatewayStatus } from './gateway-status.ts';

const ours = {
  parentRef: {
    group: 'gateway.networking.k8s.io',
    kind: 'Gateway',
    namespace: 'infra',
    name: 'edge',
  },
  controllerName: 'fedgate.io/gateway-controller',
  conditions: [
    {
      type: 'Accepted',
      status: 'True' as const,
      reason: 'Accepted',
      message: '',
      observedGeneration: 2,
    },
  ],
};

describe('gatewayStatus', () => {
  it("replaces fedgate's parent entries of a route and keeps other controllers'", () => {
    const report = {
      kind: 'HTTPRoute',
      cluster: 'alpha',
      namespace: 'shop',
      name: 'web',
      status: { parents: [ours] },
    } as unknown as ObjectStatusReport;
    const theirs = {
      parentRef: { name: 'other' },
      controllerName: 'example.com/gw',
      conditions: [],
    };
    const stale = { ...ours, conditions: [] };
    expect(gatewayStatus(report, { status: { parents: [stale, theirs] } })).toEqual({
      parents: [theirs, ours],
    });
    expect(gatewayRef(report)).toEqual({
      gvr: { group: 'gateway.networking.k8s.io', version: 'v1', resource: 'httproutes' },
      namespace: 'shop',
      name: 'web',
    });
  });

  it("a GatewayClass's status is the report's; it is cluster-scoped", () => {
    const report = {
      kind: 'GatewayClass',
      cluster: 'alpha',
      namespace: '',
      name: 'fedgate',
      status: {
        conditions: [
          {
            type: 'Accepted',
            status: 'True',
            reason: 'Accepted',
            message: '',
            observedGeneration: 1,
          },
        ],
      },
    } as unknown as ObjectStatusReport;
    expect(gatewayStatus(report, { status: { conditions: [] } })).toEqual(report.status);
    expect(gatewayRef(report).namespace).toBe('');
  });
});
