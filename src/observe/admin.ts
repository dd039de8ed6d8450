// The admin listener: liveness, readiness, the catalog as JSON and Prometheus
// metrics. The status page joins it in a later stage.
import { createServer, type Server } from 'node:http';
import type { Catalog } from '../catalog/catalog.ts';
import type { Snapshot } from '../catalog/model.ts';
import type { Config, ListenAddress } from '../config/schema.ts';
import type { HealthMonitor } from '../health/monitor.ts';
import type { Router } from '../routing/router.ts';
import type { EventJournal } from './events.ts';
import type { Metrics } from './metrics.ts';

/** The demo's failure controls: the local federation's actions, run in-process. */
export interface AdminControls {
  readonly actions: readonly {
    readonly name: string;
    readonly args: string;
    readonly help: string;
  }[];
  /** Runs one action; rejects with a message for people when it cannot. */
  run(name: string, args: readonly string[]): Promise<string>;
  /** What is running and what is broken (the local federation's description). */
  status(): unknown;
}

/** Everything the admin listener reads. */
export interface AdminContext {
  readonly catalog: Catalog;
  readonly router: Router;
  readonly health: HealthMonitor;
  readonly journal: EventJournal;
  readonly metrics: Metrics;
  readonly config: Config;
  /** /readyz: false until startup is done and while draining. */
  readiness(): { ready: boolean; reason: string };
  readonly controls?: AdminControls;
  readonly now?: () => number;
}

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

export async function startAdmin(listen: ListenAddress, ctx: AdminContext): Promise<AdminServer> {
  const { catalog, metrics } = ctx;
  const now = ctx.now ?? Date.now;
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
      const r = ctx.readiness();
      return r.ready ? send(200, r.reason) : send(503, `not ready: ${r.reason}`);
    }
    if (path === '/catalog') return send(200, snapshotJson(catalog.current(), now()));
    if (path === '/metrics') {
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
