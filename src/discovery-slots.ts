// What Discovery's two kinds of watcher share (a member's ClusterWatcher, a config
// cluster's GatewayWatcher): the options one is built with, and when a reload must
// replace one rather than keep it.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ClusterConfig, Config } from './config/schema.ts';
import type { ExhaustionSink } from './observe/exhaustion.ts';
import type { Logger } from './observe/log.ts';
import type { ClusterWatcherOptions } from './watch/cluster-watcher.ts';

/** The injected parts every watcher takes (tests pass a clock and a random source). */
export interface WatcherInjections {
  now?: (() => number) | undefined;
  random?: (() => number) | undefined;
  absentRecheckMs?: number | undefined;
  exhaustion?: ExhaustionSink | undefined;
}

/** A running watcher's slot: what it was built from. */
export interface WatcherSlot {
  readonly config: ClusterConfig;
  /** The kubeconfig file's content hash when its watcher was made: a rotated Secret restarts it. */
  readonly kubeconfigHash: string;
}

export function fileHash(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return '';
  }
}

export function watcherOptions(
  c: ClusterConfig,
  config: Config,
  o: WatcherInjections,
  log: Logger,
): ClusterWatcherOptions {
  return {
    name: c.name,
    kubeconfig: c.kubeconfig,
    context: c.context,
    silenceLimitMs: config.watch.silenceLimit,
    listTimeoutMs: config.watch.listTimeout,
    pageSize: config.watch.pageSize,
    ...(o.absentRecheckMs !== undefined ? { absentRecheckMs: o.absentRecheckMs } : {}),
    ...(o.now ? { now: o.now } : {}),
    ...(o.random ? { random: o.random } : {}),
    log,
    exhaustion: o.exhaustion,
  };
}

function watchKey(c: Config['watch']): string {
  return [c.silenceLimit, c.listTimeout, c.pageSize].join();
}

/** Why a reload to `next` must replace the watcher in `was` for `c`, or undefined to keep it. */
export function restartReason(
  was: WatcherSlot,
  c: ClusterConfig,
  running: Config,
  next: Config,
): string | undefined {
  if (was.config.kubeconfig !== c.kubeconfig) return 'kubeconfig path changed';
  if (was.config.context !== c.context) return 'context changed';
  if (was.kubeconfigHash !== fileHash(c.kubeconfig)) return 'kubeconfig file changed';
  if (watchKey(running.watch) !== watchKey(next.watch)) return 'watch settings changed';
  return undefined;
}

/** A watcher in its slot; `live` is cleared when it is replaced or removed. */
export interface Slot<W> extends WatcherSlot {
  readonly watcher: W;
  readonly live: { current: boolean };
}

/**
 * Builds a watcher whose sink answers to its slot: once the watcher is replaced or
 * removed, anything it still reports (an event already in flight) goes nowhere.
 */
export function buildSlot<W, S extends object>(
  c: ClusterConfig,
  sink: S,
  make: (sink: S) => W,
): Slot<W> {
  const live = { current: false };
  const gated = Object.fromEntries(
    Object.entries(sink).map(([name, fn]) => [
      name,
      (...args: unknown[]) => {
        if (live.current) (fn as (...a: unknown[]) => void)(...args);
      },
    ]),
  ) as S;
  return { config: c, kubeconfigHash: fileHash(c.kubeconfig), watcher: make(gated), live };
}

/** Silences a slot and stops its watcher, tracked in `retiring` until stopped. */
export function retireSlot(
  r: Slot<{ stop(): Promise<void> }>,
  retiring: Set<Promise<void>>,
  log: Logger,
): void {
  r.live.current = false;
  const stopping = r.watcher.stop().catch((err: unknown) => {
    log.warn({ err, cluster: r.config.name }, 'stopping a replaced watcher failed');
  });
  retiring.add(stopping);
  void stopping.finally(() => retiring.delete(stopping));
}
