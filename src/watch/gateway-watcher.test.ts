import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayRecordOf, GatewayResourceKind } from './gateway-records.ts';
import { type GatewayClusterStatus, GatewayWatcher } from './gateway-watcher.ts';

/**
 * An API server on loopback that serves Namespaces and TLS Secrets but not the
 * Gateway API group (404, as kube-apiserver without the CRDs), and holds every watch open.
 */
async function apiWithoutGatewayApi(
  forbidden = '',
): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push(`${url.pathname}?${url.searchParams}`);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (forbidden && url.pathname === forbidden) {
      json(403, { kind: 'Status', code: 403, message: `cannot list ${forbidden}` });
      return;
    }
    if (url.pathname.startsWith('/apis/gateway.networking.k8s.io/')) {
      json(404, {
        kind: 'Status',
        code: 404,
        message: 'the server could not find the requested resource',
      });
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('');
      return; // held open until the client goes
    }
    const items =
      url.pathname === '/api/v1/namespaces'
        ? [{ metadata: { name: 'shop', uid: 'u1', labels: { team: 'web' } } }]
        : [];
    json(200, { items, metadata: { resourceVersion: '5' } });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, seen };
}

function kubeconfig(server: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedgate-gwwatch-'));
  const file = join(dir, 'kubeconfig');
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "${server}", insecure-skip-tls-verify: true } }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
current-context: c
users: [{ name: u, user: { token: t } }]
`,
  );
  return file;
}

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

/** A GatewayWatcher of cluster alpha on `api`, recording what it reports and logs. */
function watcherOf(api: { server: Server; url: string }) {
  const logs: { level: number; msg: string }[] = [];
  const log = pino(
    { level: 'debug', base: null },
    { write: (l: string) => void logs.push(JSON.parse(l)) },
  );
  const statuses: GatewayClusterStatus[] = [];
  const records = new Map<string, unknown>();
  const w = new GatewayWatcher(
    {
      name: 'alpha',
      kubeconfig: kubeconfig(api.url),
      silenceLimitMs: 10_000,
      listTimeoutMs: 5_000,
      pageSize: 500,
      absentRecheckMs: 60_000,
      log,
    },
    {
      change<K extends GatewayResourceKind>(
        cluster: string,
        kind: K,
        key: string,
        record: GatewayRecordOf[K] | undefined,
      ) {
        records.set(`${cluster}/${kind}/${key}`, record);
      },
      status: (s) => statuses.push(s),
    },
  );
  cleanup = async () => {
    await w.stop();
    api.server.closeAllConnections();
    api.server.close();
  };
  return { w, logs, records, statuses };
}

describe('GatewayWatcher', () => {
  it('a cluster without the Gateway API CRDs syncs with those kinds absent, says so once, and still reads Namespaces; Secrets are asked for by type', async () => {
    const api = await apiWithoutGatewayApi();
    const { w, logs, records, statuses } = watcherOf(api);
    w.start();
    const deadline = Date.now() + 5000;
    while (w.status.state !== 'synced' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));

    expect(w.status).toEqual({
      cluster: 'alpha',
      state: 'synced',
      absent: ['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants'],
      error: undefined,
    });
    expect(statuses.some((s) => s.state === 'stale' || s.error !== undefined)).toBe(false);
    expect(records.get('alpha/namespaces/shop')).toMatchObject({
      cluster: 'alpha',
      name: 'shop',
      labels: { team: 'web' },
    });
    expect(api.seen).toContain(
      '/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Ftls&limit=500',
    );
    // One line, naming what is not served; no failure, no loop.
    expect(logs.filter((l) => l.level >= 40).map((l) => l.msg)).toEqual([
      'Gateway API objects synced, but this cluster does not serve gatewayclasses, gateways, httproutes, grpcroutes, referencegrants (no Gateway API CRDs?): none are read from it; looking again every 60 s',
    ]);
  });

  it('a kind it may not read (403) keeps the cluster failing, named, while the others still arrive', async () => {
    const api = await apiWithoutGatewayApi('/api/v1/secrets');
    const { w, records } = watcherOf(api);
    w.start();
    const deadline = Date.now() + 5000;
    while (!(w.status.error && records.has('alpha/namespaces/shop')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(w.status.state).toBe('syncing');
    expect(w.status.error?.code).toBe('CLUSTER_FORBIDDEN');
    expect(records.get('alpha/namespaces/shop')).toMatchObject({ labels: { team: 'web' } });
  });
});
