// WorkerPool with real node:cluster workers that are stand-ins: small scripts that
// speak the protocol (hello, listening or failed, answers, drained) and nothing else,
// so the pool's lifecycle is checked without listeners: start, a start that fails, a
// worker replaced, restarts bounded, the catalog and health handed over, drain.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service } from '../../test/fixtures/services.ts';
import type { Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import { HealthStore } from '../health/store.ts';
import { WorkerPool } from './pool.ts';
import { ListenError } from './serving.ts';

/**
 * A stand-in worker; MODE: serve, fail (cannot listen), crash (exits once it is
 * listening and the file `go` exists: the test makes it after the pool has started,
 * so no worker dies while the others still start, however slow the machine), echo
 * (listens on the DNS port its config names, and says it).
 */
const FAKE = (mode: string, go: string) => `
import { existsSync } from 'node:fs';
const mode = ${JSON.stringify(mode)};
const go = ${JSON.stringify(go)};
let snapshots = 0;
let health = 0;
let routes = 0;
process.on('message', (m) => {
  if (m.type === 'init') {
    snapshots = m.snapshot.version;
    health = m.health.length;
    if (mode === 'echo') {
      // Says which DNS port it was told to bind, and how.
      const port = m.config.dns.listen[0].port;
      process.send({ type: 'listening', addresses: { udp: [{ address: '127.0.0.1', family: 'IPv4', port }], http: [], https: [] } });
      process.send({ type: 'used', service: 'port ' + port + ' reusePort ' + m.reusePort });
      return;
    }
    if (mode === 'fail') {
      process.send({ type: 'failed', setting: 'dns.listen', message: 'EADDRINUSE' }, () => process.exit(1));
      return;
    }
    process.send({ type: 'listening', addresses: { udp: [{ address: '127.0.0.1', family: 'IPv4', port: 5353 }], http: [], https: [] } });
    process.send({ type: 'reports', reports: [['shop/web', 'alpha/127.10.0.1', { origin: 'local', failure: 'connect' }]] });
    process.send({ type: 'used', service: 'shop/web', locality: { region: 'us-east', zone: 'a' } });
    if (mode === 'crash') {
      const exitOnGo = () => (existsSync(go) ? process.exit(3) : setTimeout(exitOnGo, 10));
      exitOnGo();
    }
  } else if (m.type === 'snapshot') {
    snapshots = m.delta.version;
  } else if (m.type === 'health') {
    health += m.entries.length;
  } else if (m.type === 'routes') {
    routes = m.delta.listeners.length;
  } else if (m.type === 'ask') {
    const metrics = [{ name: 'seen', help: 'what this worker was told', type: 'counter', aggregator: 'sum',
      values: [{ labels: { what: 'snapshot' }, value: snapshots }, { labels: { what: 'health' }, value: health }, { labels: { what: 'routes' }, value: routes }] }];
    process.send({ type: 'answer', id: m.id, answer: { ok: true, metrics } });
  } else if (m.type === 'drain') {
    process.send({ type: 'drained', proxyCut: 0, dnsCut: 1 }, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'hello' });
`;

const CONFIG = { http: { drainTimeout: 1000 } } as unknown as Config;
const quiet = pino({ level: 'silent' });

function discovery() {
  let snapshot: Snapshot = { version: 1, createdAt: 0, services: new Map(), clusters: new Map() };
  const subscribers = new Set<(s: Snapshot) => void>();
  const store = new HealthStore();
  const reports: string[] = [];
  const used: string[] = [];
  return {
    reports,
    used,
    store,
    publish(s: Snapshot) {
      snapshot = s;
      for (const fn of subscribers) fn(s);
    },
    pool: {
      catalog: {
        current: () => snapshot,
        subscribe: (fn: (s: Snapshot) => void) => {
          subscribers.add(fn);
          return () => subscribers.delete(fn);
        },
      },
      health: {
        store,
        report: (svc: string, id: string) => reports.push(`${svc} ${id}`),
      },
      planUsed: (svc: string, locality: unknown) => used.push(`${svc} ${JSON.stringify(locality)}`),
    },
  };
}

async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('WorkerPool', () => {
  let dir: string;
  const exec = (mode: string) => join(dir, `${mode}.mjs`);
  const go = () => join(dir, 'go');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-pool-'));
    for (const mode of ['serve', 'fail', 'crash', 'echo'])
      await writeFile(exec(mode), FAKE(mode, go()));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts every worker, hands them the catalog and health, hears them, and drains them', async () => {
    const d = discovery();
    d.store.setCheck('shop/web', 'alpha/127.10.0.1', 'unhealthy', 'down');
    const pool = await WorkerPool.start({
      workers: 2,
      config: CONFIG,
      discovery: d.pool,
      log: quiet,
      exec: exec('serve'),
    });
    try {
      expect(pool.readiness()).toEqual({ ready: true, reason: '2 workers listening' });
      expect(pool.states()).toEqual(new Map([['listening', 2]]));
      expect(pool.addresses().udp[0]?.port).toBe(5353);
      // What the workers send back reaches discovery.
      await until(
        'outcome reports and plan notes',
        () => d.reports.length === 2 && d.used.length === 2,
      );
      expect(d.reports[0]).toBe('shop/web alpha/127.10.0.1');
      expect(d.used[0]).toBe('shop/web {"region":"us-east","zone":"a"}');
      // New snapshots and health changes go to every worker.
      d.publish({
        version: 2,
        createdAt: 0,
        services: new Map([['shop/web', service([])]]),
        clusters: new Map(),
      });
      d.store.setCheck('shop/web', 'alpha/127.10.0.1', 'healthy');
      // So do Gateway API routes.
      pool.setRoutes({ listeners: [{ address: '127.0.0.1:80', tls: false, hosts: [] }] });
      const seen = async () => {
        const json = await pool.collect();
        return json.map((m) => m[0]!.values.map((v) => v.value).join('/'));
      };
      // Each worker says what it holds: snapshot version 2, the two health entries, the one listener's routes.
      let last: string[] = [];
      await until('the workers to hold the new snapshot, health and routes', async () => {
        last = await seen();
        return last.join() === '2/2/1,2/2/1';
      }).catch(() => expect(last).toEqual(['2/2/1', '2/2/1']));
      const cut = await pool.drain(1000);
      expect(cut).toEqual({ proxyCut: 0, dnsCut: 2 });
      expect(pool.readiness().ready).toBe(false);
    } finally {
      await pool.stop();
    }
    expect(pool.states()).toEqual(new Map([['down', 2]]));
  });

  it('pins dns.listen port 0 to one port for every worker (each binds its own socket), kept by reloads', async () => {
    const d = discovery();
    const withDns = (port: number) =>
      ({
        http: { drainTimeout: 1000, listen: [] },
        dns: { listen: [{ host: '127.0.0.1', port }] },
      }) as unknown as Config;
    const pool = await WorkerPool.start({
      workers: 2,
      config: withDns(0),
      discovery: d.pool,
      log: quiet,
      exec: exec('echo'),
      reusePort: true,
    });
    try {
      const port = pool.addresses().udp[0]!.port;
      expect(port).toBeGreaterThan(0);
      await until('both workers to say their port', () => d.used.length === 2);
      expect(d.used).toEqual([0, 1].map(() => `port ${port} reusePort true undefined`));
      // The same address again keeps its port: nothing opens or closes.
      const same = await pool.stage(withDns(0));
      expect([same.opened, same.closed]).toEqual([[], []]);
      same.commit();
      // Another address: the pinned port closes, and is forgotten.
      const moved = await pool.stage(withDns(5353));
      expect([moved.opened, moved.closed]).toEqual([
        ['dns 127.0.0.1:5353'],
        [`dns 127.0.0.1:${port}`],
      ]);
      moved.commit();
    } finally {
      await pool.drain(0);
      await pool.stop();
    }
  });

  it('fails to start when a worker cannot listen, naming the setting, and leaves nothing running', async () => {
    const d = discovery();
    const started = WorkerPool.start({
      workers: 2,
      config: CONFIG,
      discovery: d.pool,
      log: quiet,
      exec: exec('fail'),
    });
    await expect(started).rejects.toBeInstanceOf(ListenError);
    await expect(started).rejects.toMatchObject({ setting: 'dns.listen', message: 'EADDRINUSE' });
  });

  it('replaces workers that exit, and gives up past the restart bound', async () => {
    const d = discovery();
    let fatal: string | undefined;
    const pool = await WorkerPool.start({
      workers: 2,
      config: CONFIG,
      discovery: d.pool,
      log: quiet,
      exec: exec('crash'),
      onFatal: (problem) => {
        fatal = problem;
      },
      restarts: { limit: 3, windowMs: 60_000, delayMs: 10, maxDelayMs: 20 },
    });
    await writeFile(go(), '');
    try {
      const problem = await until('the pool to give up', () => fatal);
      expect(problem).toMatch(
        /^workers exited 4 times within 60 s \(last: worker \d, exit code 3\): giving up$/,
      );
      expect(pool.restarts).toBe(3);
    } finally {
      await pool.drain(0);
      await pool.stop();
    }
  });
});
