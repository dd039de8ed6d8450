// Holds a simulated member of the experimental Gateway API channel to kube-apiserver
// v1.37 with the experimental CRDs installed, for what the channel adds that fedgate
// reads: HTTPRoute rules' `retry` (codes, attempts, backoff). The same requests go to
// both and the answers are compared as test/gateway-parity.test.ts compares them.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SimCluster } from '../src/localfed/cluster.ts';
import { installGatewayCrds } from './helpers/gateway-api.ts';
import { ControlPlane } from './helpers/kube-control-plane.ts';
import {
  differences,
  type PairRequest,
  ServerPair,
  startedPair,
  withCauses,
} from './helpers/parity.ts';

const ROUTES = '/apis/gateway.networking.k8s.io/v1/namespaces/gw-exp/httproutes';

let sim: SimCluster;
let cp: ControlPlane;
let pair: ServerPair | undefined;

async function same(r: PairRequest) {
  const p = await startedPair(pair).both(r);
  expect.soft(differences(p, withCauses)).toEqual([]);
  return p;
}

const route = (name: string, retry: unknown, strict = true): PairRequest => ({
  method: 'POST',
  path: `${ROUTES}${strict ? '?fieldValidation=Strict' : ''}`,
  body: {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name },
    spec: { parentRefs: [{ name: 'gw' }], rules: [{ retry }] },
  },
});

beforeAll(async () => {
  sim = await SimCluster.create({
    name: 'gw-exp',
    host: '127.243.250.1',
    gatewayApiChannel: 'experimental',
  });
  await sim.start();
  cp = await ControlPlane.start();
  pair = new ServerPair({
    sim: { url: sim.url, ca: sim.caCert, token: sim.token },
    real: { url: cp.url, ca: cp.ca, token: cp.token },
  });
  await installGatewayCrds(cp, 'experimental');
  await startedPair(pair).both({
    method: 'POST',
    path: '/api/v1/namespaces',
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'gw-exp' } },
  });
}, 180_000);

afterAll(async () => {
  await sim?.stop();
  await cp?.stop();
});

it('an HTTPRoute rule’s retry is kept under Strict, defaulted and read back alike', async () => {
  const made = await same(route('retries', { codes: [500, 502], attempts: 3, backoff: '100ms' }));
  expect(made.sim.status).toBe(201);
  await same({ path: `${ROUTES}/retries` });
});

// Out of range and off its pattern are not the errors that stop CEL rules: no "rules
// not checked" cause (it comes only with a wrong type, enum, required or size error).
it('retry refusals: duplicate codes, codes out of range, attempts below one, a bad backoff', async () => {
  for (const [name, retry] of [
    ['dup', { codes: [500, 500] }],
    ['range', { codes: [99, 600] }],
    ['attempts', { attempts: -1 }],
    ['backoff', { backoff: 'soon' }],
  ] as const) {
    const p = await same(route(name, retry));
    expect(p.sim.status, name).toBe(422);
  }
});
