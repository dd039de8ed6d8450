// The admin listener: liveness, readiness, the catalog as JSON and Prometheus
// metrics. The status page joins it in a later stage.
import { createServer, type Server } from 'node:http';
import type { Catalog } from '../catalog/catalog.ts';
import type { Snapshot } from '../catalog/model.ts';
import type { ListenAddress } from '../config/schema.ts';

export interface AdminServer {
  readonly server: Server;
  readonly address: ListenAddress;
  close(): Promise<void>;
}

/** The snapshot as JSON: Maps become objects, stale clusters say how old their data is. */
export function snapshotJson(s: Snapshot, now: number): unknown {
  return {
    version: s.version,
    createdAt: new Date(s.createdAt).toISOString(),
    clusters: Object.fromEntries(
      [...s.clusters].map(([name, c]) => [
        name,
        {
          ...c,
          lastSyncAt: c.lastSyncAt ? new Date(c.lastSyncAt).toISOString() : null,
          staleForMs: c.state === 'stale' && c.lastSyncAt ? now - c.lastSyncAt : null,
        },
      ]),
    ),
    services: [...s.services.values()].map((svc) => ({
      ...svc,
      clusters: svc.clusters.map((m) => ({ ...m, sync: m.sync.state })),
    })),
  };
}

export async function startAdmin(
  listen: ListenAddress,
  catalog: Catalog,
  startupDone: () => { done: boolean; missing: readonly string[] },
  metrics?: { scrape(): Promise<{ contentType: string; text: string }> },
): Promise<AdminServer> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    const send = (status: number, body: unknown) => {
      const text = typeof body === 'string' ? `${body}\n` : `${JSON.stringify(body, null, 2)}\n`;
      res.writeHead(status, {
        'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
      });
      res.end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    if (path === '/healthz') return send(200, 'ok');
    if (path === '/readyz') {
      const r = startupDone();
      if (!r.done)
        return send(503, `not ready: waiting for ${catalog.readiness().missing.join(', ')}`);
      return send(200, r.missing.length ? `ready without: ${r.missing.join(', ')}` : 'ready');
    }
    if (path === '/catalog') return send(200, snapshotJson(catalog.current(), Date.now()));
    if (path === '/metrics' && metrics) {
      metrics.scrape().then(
        ({ contentType, text }) => {
          res.writeHead(200, { 'Content-Type': contentType });
          res.end(text);
        },
        (e: unknown) => send(500, `metrics failed: ${(e as Error).message}`),
      );
      return;
    }
    return send(404, 'not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  return {
    server,
    address: { host: listen.host, port },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
