// The admin listener end to end, against fedgate (Fedgate.start, in-process) on a local
// federation reached through kubeconfigs:
//   - /readyz follows sync (a member whose API is down keeps it 503, naming the member,
//     until it syncs; after watch.startupTimeout it is 200 "ready without") and drain
//     (503 "draining" while a request in flight still completes);
//   - /debug/explain says what the proxy and DNS actually do: the clusters its
//     serving tiers give traffic to are where proxied requests from that client land
//     and where DNS answers for it point, before and after the client's zone fails.
//
// Addresses: the federation's clusters take 127.175–177.0.0/16. Clients are played
// from 127.1.0.0/16 (us-east-a, fedgate's own zone) and 127.2.0.0/16 (eu-west-a), as the
// config's locality table says. Listeners are on 127.0.0.1, ports picked by the kernel.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/load.ts';
import { Fedgate } from '../src/fedgate.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import type { Explanation } from '../src/routing/explain.ts';
import { fedgate as fedgateCli } from './helpers/cli.ts';
import { FAST_HEALTH, GALAXY_WEB, LogCapture, launchFederation } from './helpers/discovery-env.ts';
import { dig } from './helpers/tools.ts';
import { waitFor } from './helpers/wait.ts';

const ADDRESS_BLOCK = 175;
const WAIT_MS = 20_000;
const WEB = 'web.shop.svc.clusterset.local';
/** A client in us-east-a, fedgate's own zone, and one in eu-west-a, by the locality table. */
const EAST_A_CLIENT = '127.1.0.7';
const WEST_CLIENT = '127.2.0.7';

const SCENARIO = GALAXY_WEB;

/** The explanation /debug/explain answers: the router's, plus what the host named. */
type Explained = Explanation & { host: string; service: string };

interface Answer {
  status: number;
  cluster: string;
  zone: string;
  pod: string;
}

/** GET through the proxy from a chosen source address (node:http binds it; undici cannot). */
function get(port: number, path: string, localAddress = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: { host: WEB },
        localAddress,
        agent: false,
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => {
          try {
            const body = JSON.parse(text) as Omit<Answer, 'status'>;
            resolve({ status: res.statusCode ?? 0, ...body });
          } catch {
            reject(new Error(`GET ${path} from ${localAddress}: ${res.statusCode} ${text}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** An admin GET: its status and body text (JSON parsed when it is JSON). */
async function admin(url: string): Promise<{ status: number; text: string; json?: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const json = String(res.headers.get('content-type')).startsWith('application/json')
    ? (JSON.parse(text) as unknown)
    : undefined;
  return { status: res.status, text, ...(json !== undefined ? { json } : {}) };
}

describe('the admin listener', () => {
  const log = new LogCapture('warn');
  let fed: LocalFederation;
  let dir: string;
  const kubeconfigs: Record<string, string> = {};
  let running: Fedgate | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-observe-admin-'));
    const launched = await launchFederation(SCENARIO, ADDRESS_BLOCK, dir);
    fed = launched.fed;
    Object.assign(kubeconfigs, launched.kubeconfigs);
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
    // Whatever a test broke, the next one starts from a whole federation.
    for (const c of ['alpha', 'beta', 'gamma']) await fed.apiUp(c);
    for (const z of (await fed.describe()).failedZones) await fed.restoreZone(z);
  });
  afterAll(async () => {
    await running?.stop();
    await fed?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  let configs = 0;
  /** Writes a config file for this federation (the test's settings over the base) and returns its path. */
  async function writeConfig(opts: { startupTimeout: string; drainTimeout?: string }) {
    const file = join(dir, `fedgate-${++configs}.yaml`);
    const config = {
      federation: { name: 'galaxy', domain: 'example.test' },
      self: { region: 'us-east', zone: 'us-east-a' },
      clusters: (await fed.describe()).clusters.map((c) => ({
        name: c.name,
        kubeconfig: kubeconfigs[c.name],
        region: c.region,
      })),
      localities: [
        { cidr: '127.1.0.0/16', region: 'us-east', zone: 'us-east-a' },
        { cidr: '127.2.0.0/16', region: 'eu-west', zone: 'eu-west-a' },
      ],
      dns: { listen: ['127.0.0.1:0'], rrl: { responsesPerSecond: 1000 } },
      http: {
        listen: ['127.0.0.1:0'],
        locality: 'client',
        drainTimeout: opts.drainTimeout ?? '5s',
      },
      admin: { listen: '127.0.0.1:0' },
      health: FAST_HEALTH,
      watch: { silenceLimit: '2s', listTimeout: '2s', startupTimeout: opts.startupTimeout },
    };
    await writeFile(file, stringify(config));
    return file;
  }

  async function start(file: string): Promise<{ f: Fedgate; adminUrl: string }> {
    running = await Fedgate.start(loadConfig(file), log.logger);
    return { f: running, adminUrl: running.addresses().admin };
  }

  it('writes a config that fedgate check-config accepts', async () => {
    const file = await writeConfig({ startupTimeout: '10s' });
    const check = await fedgateCli(['check-config', file]);
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('127.1.0.0/16');
  });

  it('/readyz is 503 naming a member whose API is down, and 200 once it is back and synced', async () => {
    await fed.apiDown('beta', 'refuse');
    const { adminUrl } = await start(await writeConfig({ startupTimeout: '2m' }));
    // Not ready while beta has never synced; the others sync meanwhile.
    const seen: string[] = [];
    await waitFor(
      async () => {
        const r = await admin(`${adminUrl}/readyz`);
        seen.push(`${r.status} ${r.text.trim()}`);
        return r.text === 'not ready: waiting for beta\n';
      },
      WAIT_MS,
      'readyz to wait for beta alone',
      100,
    );
    for (const s of new Set(seen)) expect(s).toMatch(/^503 not ready: waiting for [a-z, ]*beta/);
    // Alive all along.
    expect((await admin(`${adminUrl}/healthz`)).status).toBe(200);
    expect((await admin(`${adminUrl}/readyz`)).status).toBe(503);

    await fed.apiUp('beta');
    const ready = await waitFor(
      async () => {
        const r = await admin(`${adminUrl}/readyz`);
        return r.status === 200 ? r : undefined;
      },
      WAIT_MS,
      'readyz to turn 200 once beta syncs',
      100,
    );
    expect(ready.text).toBe('ready\n');
  });

  it('/readyz is 200 "ready without" the missing member once watch.startupTimeout has passed', async () => {
    await fed.apiDown('beta', 'refuse');
    const { adminUrl } = await start(await writeConfig({ startupTimeout: '1s' }));
    const r = await waitFor(
      async () => {
        const x = await admin(`${adminUrl}/readyz`);
        return x.status === 200 ? x : undefined;
      },
      WAIT_MS,
      'readyz to turn 200 after startupTimeout',
      100,
    );
    expect(r.text).toBe('ready without: beta\n');
  });

  it('/readyz answers 503 draining while a request in flight still completes 200', async () => {
    const { f, adminUrl } = await start(
      await writeConfig({ startupTimeout: '10s', drainTimeout: '30s' }),
    );
    await waitFor(
      async () => (await admin(`${adminUrl}/readyz`)).status === 200,
      WAIT_MS,
      'ready',
      100,
    );
    const port = f.proxy.addresses().http[0]!.port;
    const before = fed.backends().reduce((n, b) => n + b.requests, 0);
    // Held at the backend for 4 s: long enough to ask /readyz during the drain.
    const held = get(port, '/delay/4000');
    await waitFor(
      () => fed.backends().reduce((n, b) => n + b.requests, 0) > before,
      WAIT_MS,
      'the held request to reach a backend',
      10,
    );
    const stopped = f.stop();
    running = undefined;
    const during = await admin(`${adminUrl}/readyz`);
    expect({ status: during.status, text: during.text }).toEqual({
      status: 503,
      text: 'not ready: draining\n',
    });
    expect((await admin(`${adminUrl}/healthz`)).status).toBe(200);
    const answer = await held;
    expect(answer.status).toBe(200);
    expect(answer.cluster).toBe('alpha');
    await stopped;
  });

  describe('/debug/explain agrees with the proxy and DNS', () => {
    /** Where the local federation put each pod address: its cluster and zone. */
    const podAt = async () =>
      new Map(
        (await fed.describe()).clusters.flatMap((c) =>
          c.pods.map((p) => [p.ip, { cluster: c.name, zone: p.zone }]),
        ),
      );

    async function explainFor(adminUrl: string, client: string): Promise<Explained> {
      const r = await admin(
        `${adminUrl}/debug/explain?host=${encodeURIComponent(WEB)}&client=${client}`,
      );
      expect({ status: r.status, text: r.status === 200 ? '' : r.text }).toEqual({
        status: 200,
        text: '',
      });
      return r.json as Explained;
    }

    /** Share of traffic by cluster over the serving tiers, and the zones those tiers cover. */
    function servingShares(x: Explained): Record<string, number> {
      const shares: Record<string, number> = {};
      for (const t of x.tiers)
        if (t.verdict === 'serves')
          for (const [c, s] of Object.entries(t.clusters)) shares[c] = (shares[c] ?? 0) + s;
      return shares;
    }

    /** Clusters (and zones) where N requests from `client` through the proxy land. */
    async function proxied(port: number, client: string, n: number) {
      const clusters: Record<string, number> = {};
      const zones = new Set<string>();
      for (let i = 0; i < n; i++) {
        const a = await get(port, `/where?i=${i}`, client);
        expect(a.status).toBe(200);
        clusters[a.cluster] = (clusters[a.cluster] ?? 0) + 1;
        zones.add(a.zone);
      }
      return { clusters, zones };
    }

    /** Clusters and zones the A records DNS gives `client` point at. */
    async function answered(server: { host: string; port: number }, client: string) {
      const r = await dig(server, ['-b', client, WEB, 'A']);
      expect(r.status).toBe('NOERROR');
      const at = await podAt();
      const places = r.answers
        .filter((a) => a.type === 'A')
        .map((a) => at.get(a.data) ?? { cluster: `unknown address ${a.data}`, zone: '?' });
      return {
        clusters: new Set(places.map((p) => p.cluster)),
        zones: new Set(places.map((p) => p.zone)),
        count: places.length,
      };
    }

    it('for a client in the proxy’s zone and one elsewhere, then after that zone fails', async () => {
      const { f, adminUrl } = await start(await writeConfig({ startupTimeout: '10s' }));
      const port = f.proxy.addresses().http[0]!.port;
      const udp = f.dns.addresses().udp[0]!;
      const dnsServer = { host: udp.address, port: udp.port };

      // Healthy: the client in us-east-a is served by its own zone, all of it alpha's.
      const healthy = await waitFor(
        async () => {
          const x = await explainFor(adminUrl, EAST_A_CLIENT);
          const t0 = x.tiers[0];
          return t0?.scope === 'zone' && t0.verdict === 'serves' && t0.load === 1 ? x : undefined;
        },
        WAIT_MS,
        'us-east-a to serve all of its clients’ traffic',
        100,
      );
      expect(healthy).toMatchObject({
        host: WEB,
        service: 'shop/web',
        client: {
          address: EAST_A_CLIENT,
          source: 'table',
          locality: { region: 'us-east', zone: 'us-east-a' },
        },
        panic: false,
      });
      expect(servingShares(healthy)).toEqual({ alpha: 1 });
      expect(healthy.tiers[0]!.locality).toMatchObject({ zone: 'us-east-a' });
      const p1 = await proxied(port, EAST_A_CLIENT, 20);
      expect(p1.clusters).toEqual({ alpha: 20 });
      expect([...p1.zones]).toEqual(['us-east-a']);
      const d1 = await answered(dnsServer, EAST_A_CLIENT);
      expect(d1).toEqual({ clusters: new Set(['alpha']), zones: new Set(['us-east-a']), count: 2 });

      // A client elsewhere gets its own zone, in another cluster, from all three.
      const west = await explainFor(adminUrl, WEST_CLIENT);
      expect(west.client).toMatchObject({ source: 'table', locality: { zone: 'eu-west-a' } });
      expect(servingShares(west)).toEqual({ gamma: 1 });
      const pw = await proxied(port, WEST_CLIENT, 10);
      expect(pw.clusters).toEqual({ gamma: 10 });
      expect(await answered(dnsServer, WEST_CLIENT)).toMatchObject({
        clusters: new Set(['gamma']),
        zones: new Set(['eu-west-a']),
      });

      // us-east-a fails: its tier is skipped, the region (alpha's us-east-b, beta's
      // us-east-c) serves, and traffic and answers follow.
      await fed.failZone('us-east-a');
      const failed = await waitFor(
        async () => {
          const x = await explainFor(adminUrl, EAST_A_CLIENT);
          return x.tiers[0]?.verdict === 'skipped' ? x : undefined;
        },
        WAIT_MS,
        'the explanation to skip the failed zone',
        100,
      );
      expect(failed.tiers[0]).toMatchObject({
        scope: 'zone',
        verdict: 'skipped',
        load: 0,
        eligible: 0,
      });
      expect(failed.tiers[0]!.reason).toMatch(/^skipped: no eligible endpoint/);
      const region = failed.tiers.find((t) => t.verdict === 'serves')!;
      expect(region).toMatchObject({ scope: 'region', load: 1 });
      const shares = servingShares(failed);
      expect(Object.keys(shares).sort()).toEqual(['alpha', 'beta']);
      expect(shares.alpha! + shares.beta!).toBeCloseTo(1, 9);
      expect(failed.summary).toContain('region');

      const p2 = await proxied(port, EAST_A_CLIENT, 40);
      // Every request lands where the explanation sends traffic, and each serving
      // cluster (half the traffic each) gets some of 40.
      expect(Object.keys(p2.clusters).sort()).toEqual(['alpha', 'beta']);
      expect([...p2.zones].sort()).toEqual(['us-east-b', 'us-east-c']);
      const d2 = await waitFor(
        async () => {
          const d = await answered(dnsServer, EAST_A_CLIENT);
          return d.zones.has('us-east-a') ? undefined : d;
        },
        WAIT_MS,
        'DNS to stop answering with us-east-a',
        100,
      );
      expect(d2).toEqual({
        clusters: new Set(['alpha', 'beta']),
        zones: new Set(['us-east-b', 'us-east-c']),
        count: 4,
      });
      // The client elsewhere is not moved.
      expect(servingShares(await explainFor(adminUrl, WEST_CLIENT))).toEqual({ gamma: 1 });

      // Restored: back to the zone, in the explanation and in traffic.
      await fed.restoreZone('us-east-a');
      await waitFor(
        async () => {
          const x = await explainFor(adminUrl, EAST_A_CLIENT);
          return x.tiers[0]?.verdict === 'serves' && x.tiers[0].load === 1;
        },
        WAIT_MS,
        'us-east-a to serve again',
        100,
      );
      expect((await proxied(port, EAST_A_CLIENT, 10)).clusters).toEqual({ alpha: 10 });
    });
  });
});
