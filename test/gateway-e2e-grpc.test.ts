// The Gateway API conformance GRPCRoute cases end to end, as test/gateway-e2e.test.ts
// runs the HTTPRoute ones: the upstream manifests (test/fixtures/gateway-conformance/,
// v1.6.3) applied with kubectl to a local-federation member whose services are the
// conformance gRPC backends (test/fixtures/localfed-gateway-conformance-grpc.yaml: their
// pods serve the suite's GrpcEcho), a real `fedgate start` reading that member, calls
// made with grpc-js through fedgate's plain listener (h2c), the backend that answered
// read from the reply (its pod's name starts with its service's, as the suite checks),
// and the routes' status read back with `kubectl get -o json`. On the simulator and on a
// real kube-apiserver.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ConformanceEchoMethod,
  callConformanceEcho,
  conformanceEchoClient,
} from '../src/localfed/gateway-conformance-echo.ts';
import { API_KINDS } from '../src/localfed/member.ts';
import { ROOT } from './helpers/cli.ts';
import { INFRA, useGatewayE2E } from './helpers/gateway-e2e-env.ts';
import { waitFor } from './helpers/wait.ts';

/** 127.238/16: one member cluster, the simulator's federation first, then the real one. */
const ADDRESS_BLOCK = 238;
const SCENARIO = join(ROOT, 'test/fixtures/localfed-gateway-conformance-grpc.yaml');
const KIND = 'grpcroute';

/** What the case reads of the Gateway's listeners. */
interface ListenerStatuses {
  listeners?: { name: string; attachedRoutes: number; supportedKinds?: { kind: string }[] }[];
}

/** The backend that answered (the service its pod belongs to), or the call's status code. */
type Outcome = string | number;

describe.each(API_KINDS)(
  'Gateway API GRPCRoute conformance end to end on %s API servers',
  (api) => {
    const e2e = useGatewayE2E(api, { addressBlock: ADDRESS_BLOCK, scenario: SCENARIO });
    const { apply, remove, accepted, routeConditions, status } = e2e;
    let client: grpc.Client | undefined;
    /** One channel to fedgate's plain listener for the whole file: h2c with prior knowledge. */
    const channel = (): grpc.Client => {
      if (client === undefined) {
        const Client = conformanceEchoClient();
        client = new Client(`127.0.0.1:${e2e.httpPort}`, grpc.credentials.createInsecure(), {
          'grpc.default_authority': 'example.com',
        });
      }
      return client;
    };

    const call = async (
      method: ConformanceEchoMethod,
      metadata: Record<string, string> = {},
    ): Promise<Outcome> => {
      try {
        const r = await callConformanceEcho(channel(), method, metadata);
        const { namespace, serviceName, pod } = r.assertions.context;
        // What the suite checks: the namespace, and the pod's name starting with the backend's.
        expect(namespace).toBe(INFRA);
        expect(pod.startsWith(serviceName), `${pod} of ${serviceName}`).toBe(true);
        return serviceName;
      } catch (e) {
        const { code, metadata: trailers } = e as Partial<grpc.ServiceError>;
        if (typeof code !== 'number') throw e;
        // fedgate's own answer, not a backend's (EchoThree is unimplemented there too).
        if (code === grpc.status.UNIMPLEMENTED) {
          expect(trailers?.get('x-fedgate-error'), method).toEqual(['HOST_UNKNOWN']);
        }
        return code;
      }
    };
    /** Waits until the call has the outcome (the tables follow the objects asynchronously). */
    const eventually = (
      method: ConformanceEchoMethod,
      metadata: Record<string, string>,
      want: Outcome,
    ) =>
      waitFor(
        async () => (await call(method, metadata)) === want,
        30_000,
        `${method} ${JSON.stringify(metadata)} to give ${want}`,
        100,
      );
    /** Removes the case's objects and waits until no route is left (UNIMPLEMENTED). */
    const removeAndForget = async (name: string) => {
      await remove(name);
      await eventually('Echo', {}, grpc.status.UNIMPLEMENTED);
    };
    /** The same-namespace Gateway's `http` listener as fedgate wrote its status. */
    const listener = async () =>
      (await status<ListenerStatuses>('gateway', 'same-namespace'))?.listeners?.find(
        (l) => l.name === 'http',
      );

    it('GRPCExactMethodMatching', async () => {
      await apply('grpcroute-exact-method-matching');
      await accepted('exact-matching', KIND);
      await waitFor(
        async () => (await listener())?.attachedRoutes === 1,
        30_000,
        'the listener to count the route',
        200,
      );
      // An HTTP listener takes GRPCRoutes, and says so.
      expect((await listener())?.supportedKinds?.map((k) => k.kind)).toContain('GRPCRoute');
      await eventually('EchoTwo', {}, 'grpc-infra-backend-v2');
      for (const [method, want] of [
        ['Echo', 'grpc-infra-backend-v1'],
        ['EchoTwo', 'grpc-infra-backend-v2'],
        // No rule matches: the GRPCRoute spec's UNIMPLEMENTED, from fedgate.
        ['EchoThree', grpc.status.UNIMPLEMENTED],
      ] as const) {
        expect(await call(method), method).toBe(want);
      }
      await removeAndForget('grpcroute-exact-method-matching');
    });

    it('GRPCRouteHeaderMatching', async () => {
      const name = 'grpc-header-matching';
      await apply('grpcroute-header-matching');
      await accepted(name, KIND);
      const generation = (await e2e.kubectl(['get', KIND, name, '-n', INFRA, '-o', 'json'])).stdout;
      const observed = (JSON.parse(generation) as { metadata: { generation: number } }).metadata
        .generation;
      for (const c of await routeConditions(name, KIND)) {
        expect(c.observedGeneration, c.type).toBe(observed);
      }
      await eventually('Echo', { version: 'two' }, 'grpc-infra-backend-v2');
      // The upstream case's metadata and expectations, in its order (keys as it writes them).
      for (const [metadata, want] of [
        [{ Version: 'one' }, 'grpc-infra-backend-v1'],
        [{ Version: 'two' }, 'grpc-infra-backend-v2'],
        [{ Version: 'two', Color: 'orange' }, 'grpc-infra-backend-v1'],
        [{ Version: 'two', Color: 'blue' }, 'grpc-infra-backend-v2'],
        [{ Color: 'orange' }, grpc.status.UNIMPLEMENTED],
        [{ 'Some-Other-Header': 'one' }, grpc.status.UNIMPLEMENTED],
        [{ Color: 'blue' }, 'grpc-infra-backend-v1'],
        [{ Color: 'green' }, 'grpc-infra-backend-v1'],
        [{ Color: 'red' }, 'grpc-infra-backend-v2'],
        [{ Color: 'yellow' }, 'grpc-infra-backend-v2'],
        [{ Color: 'purple' }, grpc.status.UNIMPLEMENTED],
      ] as const) {
        expect(await call('Echo', metadata), JSON.stringify(metadata)).toBe(want);
      }
      await removeAndForget('grpcroute-header-matching');
    });

    it('GRPCRouteWeight', async () => {
      await apply('grpcroute-weight');
      await accepted('weighted-backends', KIND);
      await eventually('Echo', {}, 'grpc-infra-backend-v2');
      const counts: Record<string, number> = {};
      const total = 300;
      for (let i = 0; i < total; i++) {
        // Entropy as the suite adds it: a random metadata value per call.
        const s = await call('Echo', { 'x-jitter': String(Math.random()) });
        counts[s] = (counts[s] ?? 0) + 1;
      }
      // 70/30/0, as HTTPRouteWeight asks it here: 10 points over 300 calls (the suite allows
      // 5 over 500), so chance alone practically never fails it; weight 0 is never chosen.
      expect(Object.keys(counts).sort()).toEqual([
        'grpc-infra-backend-v1',
        'grpc-infra-backend-v2',
      ]);
      expect((counts['grpc-infra-backend-v1'] ?? 0) / total).toBeGreaterThan(0.6);
      expect((counts['grpc-infra-backend-v1'] ?? 0) / total).toBeLessThan(0.8);
      await removeAndForget('grpcroute-weight');
    });

    afterAll(() => {
      client?.close();
      client = undefined;
    });
  },
);
