// Live reload of the configuration: what changed between two configurations (said
// in one log line and one journal event), and what starts a reload of `fedgate
// start`: SIGHUP, or a change to the file's content. The file is watched through
// its directory, because editors replace a file by renaming another over it and a
// Kubernetes ConfigMap volume swaps a `..data` symlink: the watched inode of the
// file itself would go quiet either way. Events only wake a debounced check of
// the content's hash, so a touch or a same-content swap reloads nothing.
import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from './config/schema.ts';
import type { ClusterChanges } from './discovery.ts';
import type { Logger } from './observe/log.ts';
import { backendTlsFiles } from './proxy/backend-tls-profiles.ts';

/** How long the directory must be quiet before the file is read: editors write in steps. */
export const RELOAD_DEBOUNCE_MS = 250;

/** What a reload changed. */
export interface ReloadChanges {
  readonly clusters: ClusterChanges;
  /** "dns 127.0.0.1:53", "http 0.0.0.0:80", "https …", "admin …". */
  readonly opened: readonly string[];
  readonly closed: readonly string[];
  /** Settings whose value changed, by path: "dns.ttl", "http.aliases". */
  readonly settings: readonly string[];
}

/** Listener addresses and clusters are told apart (opened, closed, added…), not as settings. */
const NOT_SETTINGS = new Set([
  'clusters',
  'dns.listen',
  'http.listen',
  'http.tls.listen',
  'admin.listen',
]);
/** Compared whole: maps and lists a user edits as one thing. */
const WHOLE = new Set([
  'localities',
  'dns.proxyAddresses',
  'dns.nameServers',
  'dns.reverseZones',
  'http.aliases',
  'http.tls.certificates',
  'routing.backendTLS',
  'routing.failoverOrder',
  'routing.services',
  'health.active.expectedStatuses',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** JSON with object keys sorted: the same value written in another order is the same. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    isObject(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x,
  );
}

/** The paths of settings that differ, clusters and listener addresses aside. */
export function changedSettings(before: Config, after: Config): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (NOT_SETTINGS.has(path)) return;
    if (path !== '' && WHOLE.has(path)) {
      if (canonical(a) !== canonical(b)) out.push(path);
      return;
    }
    if ((isObject(a) || a === undefined) && (isObject(b) || b === undefined) && (a || b)) {
      const x = a ?? {};
      const y = b ?? {};
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
        walk(x[k], y[k], path ? `${path}.${k}` : k);
      }
      return;
    }
    if (canonical(a) !== canonical(b)) out.push(path);
  };
  walk(before, after, '');
  return out;
}

export function hasChanges(c: ReloadChanges): boolean {
  const k = c.clusters;
  return (
    k.added.length + k.removed.length + k.restarted.length + k.updated.length > 0 ||
    c.opened.length + c.closed.length + c.settings.length > 0
  );
}

/** One line for people: "clusters added: gamma; settings changed: dns.ttl". */
export function describeChanges(c: ReloadChanges): string {
  const k = c.clusters;
  const parts = [
    ['clusters added', k.added],
    ['clusters removed', k.removed],
    ['clusters restarted', k.restarted.map((r) => `${r.name} (${r.why})`)],
    ['clusters re-weighted or re-placed', k.updated],
    ['listeners opened', c.opened],
    ['listeners closed', c.closed],
    ['settings changed', c.settings],
  ] as const;
  const said = parts
    .filter(([, list]) => list.length > 0)
    .map(([what, list]) => `${what}: ${list.join(', ')}`);
  return said.length > 0 ? said.join('; ') : 'nothing changed';
}

/** The file's content hash, or why it cannot be read (a missing file is a change too). */
export function contentHash(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch (e) {
    return `unreadable: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
  }
}

export interface ConfigFileWatch {
  /** The content as it is now has been seen (SIGHUP reloaded it): no reload for it. */
  seen(): void;
  close(): void;
}

/**
 * Calls `onChange` when the file's content differs from the last content seen,
 * `debounceMs` after its directory went quiet. If the directory cannot be watched,
 * says so once: SIGHUP still reloads. `since`: the hash of the content that was
 * loaded, so a change made before the watch began is not missed.
 */
export function watchConfigFile(
  file: string,
  opts: {
    log: Logger;
    onChange: () => void;
    debounceMs?: number;
    since?: string;
    /** What the file is, for the warning when it cannot be watched. */
    what?: string;
  },
): ConfigFileWatch {
  const abs = resolve(file);
  const debounceMs = opts.debounceMs ?? RELOAD_DEBOUNCE_MS;
  let last = opts.since ?? contentHash(abs);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  const check = () => {
    timer = undefined;
    const now = contentHash(abs);
    if (now === last) return;
    last = now;
    opts.onChange();
  };
  const stopped = (err: unknown) => {
    opts.log.warn(
      { err, dir: dirname(abs) },
      `cannot watch the ${opts.what ?? 'configuration file'} for changes; SIGHUP still reloads it`,
    );
    watcher?.close();
    watcher = undefined;
  };
  if (opts.since !== undefined && opts.since !== contentHash(abs)) {
    timer = setTimeout(check, debounceMs);
    timer.unref();
  }
  try {
    // Not persistent: the listeners keep the process alive, not this.
    watcher = watch(dirname(abs), { persistent: false }, () => {
      clearTimeout(timer);
      timer = setTimeout(check, debounceMs);
      timer.unref();
    });
    watcher.on('error', stopped);
  } catch (err) {
    stopped(err);
  }
  return {
    seen: () => {
      last = contentHash(abs);
    },
    close: () => {
      clearTimeout(timer);
      watcher?.close();
      watcher = undefined;
    },
  };
}

export interface ReloadTriggers {
  /** Reloads now, as SIGHUP does. */
  reload(trigger: string): void;
  /** Stops listening for SIGHUP and watching the file. */
  close(): void;
}

/**
 * The certificate and key files a configuration names (the listeners' and the
 * backend TLS profiles'): a change to one reloads, as the configuration's own does,
 * so a rotation (cert-manager rewriting a Secret volume) needs no SIGHUP.
 */
export function certificateFiles(config: Config): string[] {
  const listener = (config.http.tls?.certificates ?? []).flatMap((c) => [c.cert, c.key]);
  return [...new Set([...listener, ...backendTlsFiles(config)])];
}

/**
 * Reloads `file` into `target` on SIGHUP and when the file's content changes, or
 * the content of a certificate file the running configuration names
 * (certificateFiles; the set is read again after every reload). `since`: the hash
 * of the content `target` was started with (contentHash).
 */
export function reloadTriggers(
  file: string,
  target: {
    reloadFile(file: string, trigger: string): Promise<unknown>;
    readonly config?: Config;
  },
  log: Logger,
  since?: string,
): ReloadTriggers {
  let closed = false;
  const certs = new Map<string, ConfigFileWatch>();
  const reloadAndFollow = (trigger: string) => {
    void target.reloadFile(file, trigger).then(followCertificates);
  };
  const followCertificates = () => {
    if (closed || !target.config) return;
    const now = new Set(certificateFiles(target.config));
    for (const [path, w] of certs) {
      if (now.has(path)) continue;
      w.close();
      certs.delete(path);
    }
    for (const path of now) {
      if (certs.has(path)) continue;
      const onChange = () => {
        if (!closed) reloadAndFollow('certificate file change');
      };
      certs.set(path, watchConfigFile(path, { log, onChange, what: `certificate file ${path}` }));
    }
  };
  followCertificates();
  const watch = watchConfigFile(file, {
    log,
    ...(since !== undefined ? { since } : {}),
    onChange: () => {
      if (!closed) reloadAndFollow('file change');
    },
  });
  const reload = (trigger: string) => {
    if (closed) return;
    // What SIGHUP loads counts as seen: the watch does not load it a second time.
    watch.seen();
    reloadAndFollow(trigger);
  };
  const onHup = () => reload('SIGHUP');
  process.on('SIGHUP', onHup);
  return {
    reload,
    close: () => {
      closed = true;
      watch.close();
      for (const w of certs.values()) w.close();
      certs.clear();
      process.off('SIGHUP', onHup);
    },
  };
}
