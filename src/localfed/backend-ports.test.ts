// A pod whose Service ports ask for gRPC, HTTPS and mutual TLS beside plain HTTP:
// each port serves what it was asked, health and failure modes reach all of them.
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getTls } from '../../test/helpers/localfed-checks.ts';
import { BackendPki } from './backend-pki.ts';
import { Backend } from './backends.ts';
import { type EchoClient, grpcEchoClient } from './grpc-echo-client.ts';
import { ECHO_SERVICE } from './grpc-echo-proto.ts';

const IP = '127.208.0.1';
const [HTTP, GRPC, HTTPS, MTLS] = [18080, 18051, 18443, 18444];

let pki: BackendPki;
let b: Backend;
let client: EchoClient;

beforeAll(async () => {
  pki = await BackendPki.create(['alpha', 'beta']);
  b = new Backend(
    {
      cluster: 'alpha',
      region: 'us-east',
      zone: 'us-east-a',
      node: 'alpha-node-1',
      pod: 'mixed-1',
      namespace: 'shop',
      service: 'mixed',
      ip: IP,
      ports: [HTTP, GRPC, HTTPS, MTLS],
      serving: {
        [GRPC]: { protocol: 'grpc', tls: 'none' },
        [HTTPS]: { protocol: 'http', tls: 'server' },
        [MTLS]: { protocol: 'http', tls: 'mutual' },
      },
    },
    pki.forCluster('alpha'),
  );
  await b.start();
  client = grpcEchoClient(`${IP}:${GRPC}`);
});
afterEach(() => {
  b.mode = 'ok';
  b.healthy = true;
});
afterAll(async () => {
  client?.close();
  await b?.stop();
});

const tls = () => ({ ca: pki.clusterCa('alpha'), servername: 'mixed.shop.svc' });

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: IP, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('a pod with gRPC and TLS ports', () => {
  it('serves each port as asked: plain HTTP, the gRPC echo, HTTPS, HTTPS with client certificates', async () => {
    expect((await fetch(`http://${IP}:${HTTP}/`)).status).toBe(200);
    const { value } = await client.unary({ message: 'x' });
    expect(value.where).toMatchObject({ pod: 'mixed-1', address: `${IP}:${GRPC}` });
    expect(await getTls(IP, HTTPS, tls())).toMatchObject({
      status: 200,
      body: { pod: 'mixed-1', address: `${IP}:${HTTPS}` },
    });
    // The certificate names the pod's address too, and every name of its service.
    for (const servername of [
      IP,
      'mixed.shop',
      'mixed.shop.svc.cluster.local',
      'mixed.shop.svc.clusterset.local',
    ]) {
      expect(await getTls(IP, HTTPS, { ...tls(), servername })).toMatchObject({ status: 200 });
    }
    expect(await getTls(IP, HTTPS, { ...tls(), servername: 'web.shop.svc' })).toEqual({
      error: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    expect(await getTls(IP, HTTPS, { ...tls(), ca: pki.clusterCa('beta') })).toEqual({
      error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    expect(await getTls(IP, MTLS, tls())).toEqual({
      error: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    });
    expect(await getTls(IP, MTLS, { ...tls(), ...pki.client })).toMatchObject({ status: 200 });
  });

  it('flips gRPC health with the health endpoint', async () => {
    b.healthy = false;
    expect(await client.health(ECHO_SERVICE)).toBe('NOT_SERVING');
    expect(await client.health()).toBe('NOT_SERVING');
    expect(await getTls(IP, HTTPS, tls())).toMatchObject({ status: 200 });
    expect((await fetch(`http://${IP}:${HTTP}/healthz`)).status).toBe(503);
    b.healthy = true;
    expect(await client.health(ECHO_SERVICE)).toBe('SERVING');
  });

  it('fails gRPC calls UNAVAILABLE in error503 mode and cuts HTTPS and gRPC in reset mode, counting each', async () => {
    b.mode = 'error503';
    const before = b.requests;
    await expect(client.unary({})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(await getTls(IP, HTTPS, tls())).toMatchObject({ status: 503 });
    b.mode = 'reset';
    expect(await getTls(IP, HTTPS, tls())).toEqual({ error: 'ECONNRESET' });
    await expect(client.unary({})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(b.requests).toBe(before + 4);
    // Health checks are answered whatever the mode, on a connection of their own.
    const fresh = grpcEchoClient(`${IP}:${GRPC}`);
    try {
      expect(await fresh.health()).toBe('SERVING');
    } finally {
      fresh.close();
    }
  });

  it('stops every port, and starts them again with the health it had', async () => {
    b.healthy = false;
    await b.stop();
    for (const port of [HTTP, GRPC, HTTPS, MTLS]) expect(await refuses(port)).toBe(true);
    await b.start();
    const fresh = grpcEchoClient(`${IP}:${GRPC}`);
    try {
      expect(await fresh.health(ECHO_SERVICE)).toBe('NOT_SERVING');
    } finally {
      fresh.close();
    }
    expect(await getTls(IP, HTTPS, tls())).toMatchObject({ status: 200 });
  });
});
