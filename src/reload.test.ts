import { mkdir, mkdtemp, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from './config/schema.ts';
import {
  certificateFiles,
  changedSettings,
  describeChanges,
  reloadTriggers,
  watchConfigFile,
} from './reload.ts';

const base = {
  federation: { name: 'galaxy', domain: 'example.test' },
  clusters: [{ name: 'a', kubeconfig: 'a.kubeconfig' }],
};
const parse = (over: Record<string, unknown>) => configSchema.parse({ ...base, ...over });

describe('changedSettings', () => {
  it('names each changed setting by path, leaving clusters and listener addresses out', () => {
    const a = parse({ dns: { ttl: '5s', listen: ['127.0.0.1:53'] } });
    const b = parse({
      dns: { ttl: '30s', listen: ['127.0.0.1:54'] },
      http: { aliases: { 'www.example.test': 'shop/web' } },
      clusters: [{ name: 'b', kubeconfig: 'b.kubeconfig' }],
      admin: { listen: '127.0.0.1:1' },
      health: { active: { expectedStatuses: '200' } },
    });
    expect(changedSettings(a, b).sort()).toEqual([
      'dns.ttl',
      'health.active.expectedStatuses',
      'http.aliases',
    ]);
    expect(changedSettings(a, a)).toEqual([]);
  });

  it('sees TLS appear as its certificates, and a map written in another order as unchanged', () => {
    const a = parse({ routing: { failoverOrder: { x: ['y'], y: ['x'] } } });
    const b = parse({
      routing: { failoverOrder: { y: ['x'], x: ['y'] } },
      http: { tls: { listen: ['127.0.0.1:8443'], certificates: [{ cert: 'c', key: 'k' }] } },
    });
    expect(changedSettings(a, b)).toEqual(['http.tls.certificates']);
  });
});

describe('describeChanges', () => {
  it('says what changed in one line, or that nothing did', () => {
    const none = { added: [], removed: [], restarted: [], updated: [] };
    expect(describeChanges({ clusters: none, opened: [], closed: [], settings: [] })).toBe(
      'nothing changed',
    );
    expect(
      describeChanges({
        clusters: { ...none, added: ['c'], restarted: [{ name: 'a', why: 'context changed' }] },
        opened: ['dns 127.0.0.1:54'],
        closed: ['dns 127.0.0.1:53'],
        settings: ['dns.ttl'],
      }),
    ).toBe(
      'clusters added: c; clusters restarted: a (context changed); listeners opened: dns 127.0.0.1:54; listeners closed: dns 127.0.0.1:53; settings changed: dns.ttl',
    );
  });
});

describe('watchConfigFile', () => {
  let dir: string;
  let close: (() => void) | undefined;
  const log = pino({ level: 'silent' });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-reload-'));
  });
  afterEach(async () => {
    close?.();
    await rm(dir, { recursive: true, force: true });
  });

  /** Counts onChange calls; `settle` waits for the debounce to pass at least twice. */
  function watchFile(file: string, since?: string) {
    let changes = 0;
    const w = watchConfigFile(file, {
      log,
      debounceMs: 50,
      onChange: () => {
        changes++;
      },
      ...(since !== undefined ? { since } : {}),
    });
    close = w.close;
    return { count: () => changes, seen: w.seen };
  }
  const until = async (check: () => boolean) => {
    for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
    return check();
  };
  const settle = () => new Promise((r) => setTimeout(r, 300));

  it('sees a write, a file renamed over it, and ignores a touch that changes nothing', async () => {
    const file = join(dir, 'fedgate.yaml');
    await writeFile(file, 'one');
    const w = watchFile(file);
    await writeFile(file, 'two');
    expect(await until(() => w.count() === 1)).toBe(true);
    // An editor's save: write elsewhere, rename over.
    await writeFile(join(dir, '.fedgate.yaml.swp'), 'three');
    await rename(join(dir, '.fedgate.yaml.swp'), file);
    expect(await until(() => w.count() === 2)).toBe(true);
    await utimes(file, new Date(), new Date());
    await writeFile(file, 'three');
    await settle();
    expect(w.count()).toBe(2);
  });

  it("follows a ConfigMap volume's ..data symlink swap", async () => {
    // kubelet's layout: fedgate.yaml → ..data/fedgate.yaml, ..data → ..<timestamp>
    const v1 = join(dir, '..2026_01_01_v1');
    await mkdir(v1);
    await writeFile(join(v1, 'fedgate.yaml'), 'one');
    await symlink('..2026_01_01_v1', join(dir, '..data'));
    await symlink('..data/fedgate.yaml', join(dir, 'fedgate.yaml'));
    const w = watchFile(join(dir, 'fedgate.yaml'));
    const v2 = join(dir, '..2026_01_01_v2');
    await mkdir(v2);
    await writeFile(join(v2, 'fedgate.yaml'), 'two');
    await symlink('..2026_01_01_v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(v1, { recursive: true });
    expect(await until(() => w.count() === 1)).toBe(true);
    await settle();
    expect(w.count()).toBe(1);
  });

  it('does not reload content already seen, and catches a change made before it began', async () => {
    const file = join(dir, 'fedgate.yaml');
    await writeFile(file, 'one');
    const w = watchFile(file, 'hash of what was loaded earlier');
    expect(await until(() => w.count() === 1)).toBe(true);
    await writeFile(file, 'two');
    w.seen();
    await settle();
    expect(w.count()).toBe(1);
  });
});

describe('reloadTriggers', () => {
  it("follows the listeners' certificates and the backend TLS profiles' files, each once", () => {
    const config = parse({
      http: { tls: { listen: ['127.0.0.1:0'], certificates: [{ cert: '/e.crt', key: '/e.key' }] } },
      routing: {
        backendTLS: {
          a: {
            caFiles: ['/ca.pem'],
            hostname: 'h',
            clientCertificate: { certFile: '/c.crt', keyFile: '/c.key' },
          },
          b: { caFiles: ['/ca.pem'], hostname: 'h' },
        },
      },
    });
    expect(certificateFiles(config)).toEqual(['/e.crt', '/e.key', '/ca.pem', '/c.crt', '/c.key']);
  });

  it("reloads when a backend TLS profile's file changes, and follows the files the new configuration names", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedgate-reload-'));
    const [ca1, ca2] = [join(dir, 'ca1.pem'), join(dir, 'ca2.pem')];
    await writeFile(ca1, 'one');
    await writeFile(ca2, 'one');
    const withCa = (ca: string) =>
      parse({ routing: { backendTLS: { p: { caFiles: [ca], hostname: 'h' } } } });
    const triggers: string[] = [];
    const target = {
      config: withCa(ca1),
      reloadFile: async (_file: string, trigger: string) => {
        triggers.push(trigger);
        // The reload took a configuration naming the other CA file.
        target.config = withCa(ca2);
      },
    };
    const t = reloadTriggers(join(dir, 'fedgate.yaml'), target, pino({ level: 'silent' }));
    const until = async (check: () => boolean) => {
      for (let i = 0; i < 150 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
      return check();
    };
    try {
      await writeFile(ca1, 'two');
      expect(await until(() => triggers.length === 1)).toBe(true);
      expect(triggers).toEqual(['certificate file change']);
      // ca2 is watched now, ca1 no longer.
      await new Promise((r) => setTimeout(r, 100));
      await writeFile(ca1, 'three');
      await writeFile(ca2, 'two');
      expect(await until(() => triggers.length === 2)).toBe(true);
      await new Promise((r) => setTimeout(r, 600));
      expect(triggers).toHaveLength(2);
    } finally {
      t.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
