import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fedgate } from '../../test/helpers/cli.ts';
import { type GrpcEcho, startGrpcEcho } from './grpc-echo.ts';
import { ECHO_SERVICE } from './grpc-echo-proto.ts';
import { issue, makeCa } from './pki.ts';

const info = {
  cluster: 'beta',
  region: 'us-east',
  zone: 'us-east-c',
  node: 'beta-us-east-c-1',
  pod: 'grpc-echo-1',
  namespace: 'shop',
  service: 'grpc-echo',
  ip: '127.0.0.1',
};

let plain: GrpcEcho;
let mutual: GrpcEcho;
let dir: string;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-grpc-cli-'));
  const ca = await makeCa('beta-backends-ca');
  const server = await issue(ca, {
    name: 'grpc-echo-1',
    hosts: ['grpc-echo.shop.svc'],
    usage: 'server',
  });
  const clients = await makeCa('clients-ca');
  const client = await issue(clients, { name: 'fedgate', usage: 'client' });
  await writeFile(file('ca.pem'), ca.cert);
  await writeFile(file('client.pem'), client.cert);
  await writeFile(file('client-key.pem'), client.key);
  plain = await startGrpcEcho({ host: '127.0.0.1', port: 0, info });
  mutual = await startGrpcEcho({
    host: '127.0.0.1',
    port: 0,
    info,
    tls: { cert: server.cert, key: server.key, clientCa: clients.cert },
  });
});

afterAll(async () => {
  await Promise.all([plain?.stop(), mutual?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

describe('fedgate grpc', () => {
  it('calls the echo service and prints the cluster, zone, pod and address that answered', async () => {
    const r = await fedgate([
      'grpc',
      'call',
      '--host',
      'grpc-echo.shop.svc.clusterset.local',
      '--calls',
      '2',
      `127.0.0.1:${plain.port}`,
      'hello',
    ]);
    expect(r.code).toBe(0);
    const line = `beta/us-east-c grpc-echo-1 127.0.0.1:${plain.port}: hello`;
    expect(r.stdout).toBe(`${line}\n${line}\n`);
  });

  it('prints a status the server answers and exits 1', async () => {
    const r = await fedgate(['grpc', 'call', '--status', '5', `127.0.0.1:${plain.port}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^status 5: status 5 as asked\n$/);
  });

  it('calls over mutual TLS with --ca, --cert and --key, and fails without the certificate', async () => {
    const tls = ['--ca', file('ca.pem'), '--servername', 'grpc-echo.shop.svc'];
    const ok = await fedgate([
      'grpc',
      'call',
      ...tls,
      '--cert',
      file('client.pem'),
      '--key',
      file('client-key.pem'),
      `127.0.0.1:${mutual.port}`,
      'secret',
    ]);
    expect(ok.stdout).toMatch(/^beta\/us-east-c grpc-echo-1 .*: secret\n$/);
    expect(ok.code).toBe(0);
    const refused = await fedgate([
      'grpc',
      'call',
      ...tls,
      '--deadline',
      '3000',
      `127.0.0.1:${mutual.port}`,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/^status 14: /);
  });

  it('reports grpc.health.v1 as the server says it, exiting 1 when not serving', async () => {
    const address = `127.0.0.1:${plain.port}`;
    expect(await fedgate(['grpc', 'health', address, ECHO_SERVICE])).toMatchObject({
      code: 0,
      stdout: 'SERVING\n',
    });
    plain.setHealth(ECHO_SERVICE, 'NOT_SERVING');
    expect(await fedgate(['grpc', 'health', address, ECHO_SERVICE])).toMatchObject({
      code: 1,
      stdout: 'NOT_SERVING\n',
    });
    plain.setHealth(ECHO_SERVICE, 'SERVING');
  });

  it('refuses a command line without an address (exit 2)', async () => {
    const r = await fedgate(['grpc', 'call']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ADDRESS/);
  });
});
