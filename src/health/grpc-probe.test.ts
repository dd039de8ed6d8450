// The gRPC active check against a real grpc-js server serving grpc.health.v1 through
// grpc-health-check's HealthImplementation, on loopback (127.202.x.x is this file's).
import { checkServerIdentity } from 'node:tls';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import { CountingServer, checkerFactory, snapshot } from '../../test/helpers/health.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { makeClusterPki } from '../localfed/pki.ts';
import { GrpcHealthClients } from './grpc-probe.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const checker = checkerFactory(cleanups);

/** A gRPC server with the health service; its statuses are flipped by the test. */
async function healthServer(
  host: string,
  statuses: Record<string, ServingStatus>,
  creds = ServerCredentials.createInsecure(),
) {
  const health = new HealthImplementation(statuses);
  const server = new Server();
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  cleanups.push(() => new Promise((resolve) => server.tryShutdown(() => resolve())));
  return { health, port, server };
}

function signal(): AbortSignal {
  return new AbortController().signal;
}

describe('gRPC health check', () => {
  it('passes SERVING, fails NOT_SERVING and UNKNOWN with the status, and throws on an unknown service or no server', async () => {
    const host = '127.202.0.1';
    const { port } = await healthServer(host, {
      '': 'SERVING',
      'pkg.Down': 'NOT_SERVING',
      'pkg.Maybe': 'UNKNOWN',
    });
    const clients = new GrpcHealthClients();
    cleanups.push(async () => clients.closeAll());
    const t = { service: 'ns/g', id: 'a/127.202.0.1', cluster: 'a', host, port };
    expect(await clients.check(t, '', 1000, signal())).toBeUndefined();
    expect(await clients.check(t, 'pkg.Down', 1000, signal())).toBe('gRPC NOT_SERVING');
    expect(await clients.check(t, 'pkg.Maybe', 1000, signal())).toBe('gRPC UNKNOWN');
    // The health service answers NOT_FOUND for a service it does not know.
    await expect(clients.check(t, 'pkg.Nope', 1000, signal())).rejects.toThrow(/NOT_FOUND/);
    expect(clients.size).toBe(1); // one client for the target, reused
    const gone = { ...t, id: 'a/127.202.0.2', host: '127.202.0.2' };
    await expect(clients.check(gone, '', 1000, signal())).rejects.toThrow(/UNAVAILABLE|DEADLINE/);
    clients.close(gone);
    expect(clients.size).toBe(1);
  });

  it('dials TLS with the backend TLS options: verified against their CA under their servername, refused otherwise', async () => {
    const host = '127.202.0.4';
    const name = 'echo.backend.test';
    const pki = await makeClusterPki('backend', [name]);
    const other = await makeClusterPki('other', [name]);
    const creds = ServerCredentials.createSsl(null, [
      { private_key: Buffer.from(pki.serverKey), cert_chain: Buffer.from(pki.serverCert) },
    ]);
    const { port } = await healthServer(host, { '': 'SERVING' }, creds);
    const clients = new GrpcHealthClients();
    cleanups.push(async () => clients.closeAll());
    const t = { service: 'ns/g', id: `a/${host}`, cluster: 'a', host, port };
    const names: string[] = [];
    const tls = {
      ca: pki.caCert,
      servername: name,
      checkServerIdentity: (h: string, cert: Parameters<typeof checkServerIdentity>[1]) => {
        names.push(h);
        return checkServerIdentity(h, cert);
      },
    };
    expect(await clients.check(t, '', 2000, signal(), tls)).toBeUndefined();
    expect(names).toContain(name);
    // Another CA (new options: a new client): the handshake fails, the check throws.
    await expect(
      clients.check(t, '', 2000, signal(), { ca: other.caCert, servername: name }),
    ).rejects.toThrow(/UNAVAILABLE/);
    // Plaintext against a TLS server fails too.
    await expect(clients.check(t, '', 2000, signal())).rejects.toThrow();
    expect(clients.size).toBe(1);
  });

  it('gives up at the abort signal (the checker timeout) without waiting for the RPC', async () => {
    const clients = new GrpcHealthClients();
    cleanups.push(async () => clients.closeAll());
    const abort = new AbortController();
    // A port nothing listens on, with a deadline far away: only the abort ends it.
    const t = { service: 'ns/g', id: 'a/127.202.0.3', cluster: 'a', host: '127.202.0.3', port: 9 };
    const p = clients.check(t, '', 60_000, abort.signal);
    abort.abort(new Error('timeout'));
    await expect(p).rejects.toThrow('timeout');
  });

  it('takes an endpoint out of the plan when it stops SERVING and back when it serves again; its client closes when it leaves', async () => {
    const host = '127.202.1.1';
    const { health, port } = await healthServer(host, { 'pkg.Echo': 'SERVING' });
    const { checker: c, store } = checker({ type: 'grpc', grpcService: 'pkg.Echo' });
    const snap = snapshot({ g: [{ cluster: 'a', ip: host, port }] });
    c.update(snap);
    const id = `a/${host}`;
    await waitFor(() => store.endpoint('ns/g', id)?.check === 'healthy', 5000, 'healthy');
    expect(c.grpcClients).toBe(1);
    health.setStatus('pkg.Echo', 'NOT_SERVING');
    await waitFor(() => store.endpoint('ns/g', id)?.check === 'unhealthy', 5000, 'unhealthy');
    expect(store.endpoint('ns/g', id)?.checkDetail).toBe('gRPC NOT_SERVING');
    health.setStatus('pkg.Echo', 'SERVING');
    await waitFor(() => store.endpoint('ns/g', id)?.check === 'healthy', 5000, 'healthy again');
    c.update(snapshot({ g: [] }));
    expect(c.grpcClients).toBe(0);
  });
  it('checks one service by gRPC among services checked by HTTP (health.active.services)', async () => {
    const host = '127.202.2.1';
    const { health, port } = await healthServer(host, { 'pkg.Echo': 'SERVING' });
    const web = await new CountingServer().start('127.202.2.2');
    cleanups.push(() => web.stop());
    const { checker: c, store } = checker({
      type: 'http',
      services: { 'ns/g': { type: 'grpc', grpcService: 'pkg.Echo' } },
    });
    c.update(
      snapshot({
        g: [{ cluster: 'a', ip: host, port }],
        web: [{ cluster: 'a', ip: '127.202.2.2', port: web.port }],
      }),
    );
    await waitFor(() => store.endpoint('ns/g', `a/${host}`)?.check === 'healthy', 5000, 'g');
    await waitFor(
      () => store.endpoint('ns/web', 'a/127.202.2.2')?.check === 'healthy',
      5000,
      'web',
    );
    expect(c.grpcClients).toBe(1);
    expect(web.requests).toBeGreaterThan(0);
    health.setStatus('pkg.Echo', 'NOT_SERVING');
    await waitFor(() => store.endpoint('ns/g', `a/${host}`)?.check === 'unhealthy', 5000, 'down');
    expect(store.endpoint('ns/web', 'a/127.202.2.2')?.check).toBe('healthy');
  });
});
