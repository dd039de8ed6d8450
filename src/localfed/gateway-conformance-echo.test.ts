// The conformance GrpcEcho beside fedgate's echo on a pod's gRPC port: what the upstream
// cases read from it (the pod's name and namespace, the method, the metadata), EchoThree
// unimplemented, and the pod's failure mode applying to it as to Echo.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CONFORMANCE_ECHO_SERVICE,
  callConformanceEcho,
  conformanceEchoClient,
} from './gateway-conformance-echo.ts';
import { type EchoMode, startGrpcEcho } from './grpc-echo.ts';
import { grpcEchoClient } from './grpc-echo-client.ts';
import { portServing } from './scenario.ts';

const info = {
  cluster: 'alpha',
  region: 'us-east',
  zone: 'us-east-a',
  node: 'alpha-node-1',
  pod: 'grpc-infra-backend-v1-abc-1',
  namespace: 'gateway-conformance-infra',
  service: 'grpc-infra-backend-v1',
};

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(mode: () => EchoMode = () => 'ok') {
  let calls = 0;
  const echo = await startGrpcEcho({
    host: '127.0.0.1',
    port: 0,
    info,
    mode,
    onCall: () => calls++,
  });
  cleanups.push(() => echo.stop());
  const Client = conformanceEchoClient();
  const client = new Client(`127.0.0.1:${echo.port}`, grpc.credentials.createInsecure(), {
    'grpc.default_authority': 'example.com',
  });
  cleanups.push(() => client.close());
  return { echo, client, calls: () => calls };
}

describe('the conformance GrpcEcho on a pod gRPC port', () => {
  it('answers Echo and EchoTwo with the pod, the method and the metadata', async () => {
    const { client, echo, calls } = await serve();
    for (const method of ['Echo', 'EchoTwo'] as const) {
      const r = await callConformanceEcho(client, method, { version: 'one' });
      expect(r.assertions.fullyQualifiedMethod).toBe(`/${CONFORMANCE_ECHO_SERVICE}/${method}`);
      expect(r.assertions.context).toMatchObject({
        namespace: 'gateway-conformance-infra',
        serviceName: 'grpc-infra-backend-v1',
        pod: 'grpc-infra-backend-v1-abc-1',
      });
      expect(r.assertions.authority).toBe('example.com');
      expect(r.assertions.headers).toContainEqual({ key: 'version', value: 'one' });
    }
    expect(calls()).toBe(2);
    // fedgate's own echo service still answers on the same port.
    const own = grpcEchoClient(`127.0.0.1:${echo.port}`);
    cleanups.push(() => own.close());
    expect((await own.unary({ message: 'hi' })).value.message).toBe('hi');
  });

  it('leaves EchoThree unimplemented, as upstream', async () => {
    const { client } = await serve();
    await expect(callConformanceEcho(client, 'EchoThree')).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
    });
  });

  it("fails calls UNAVAILABLE while the pod's mode says 503", async () => {
    const { client } = await serve(() => 'error503');
    await expect(callConformanceEcho(client, 'Echo')).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
  });

  it('serves gRPC on a port whose scenario says serves: grpc, whatever its appProtocol', () => {
    const port = { name: 'grpc', port: 8080, protocol: 'TCP' as const };
    expect(portServing({ ...port, appProtocol: 'kubernetes.io/h2c', serves: 'grpc' })).toEqual({
      protocol: 'grpc',
      tls: 'none',
    });
    expect(portServing({ ...port, appProtocol: 'kubernetes.io/h2c' }).protocol).toBe('http');
    expect(portServing({ ...port, appProtocol: 'grpc' }).protocol).toBe('grpc');
  });
});
