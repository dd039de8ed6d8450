// What the primary and its worker processes say to each other over node:cluster's
// IPC channel, with V8 serialization (`serialization: 'advanced'`), so Maps inside
// snapshots and configs cross as they are. The primary owns discovery; a worker
// owns its DNS and proxy listeners and routes with its own Router on mirrors of
// the primary's catalog and health:
//
//   primary → worker: init (config, the whole snapshot, all health), snapshot
//     deltas, health entries, asks (metrics, reload stage/commit/abort), drain
//   worker → primary: hello, listening (its addresses), failed, outcome reports
//     (outlier detection, expedited checks), plans first used (failover notes),
//     answers to asks, drained
//
// A snapshot crosses as a delta against the one sent before it: the services that
// changed (a snapshot hands out the same object for an unchanged service) and the
// keys removed. The worker rebuilds each snapshot from its previous one, keeping
// unchanged services as the same objects, so its router's plan cache and DNS's
// answer cache work exactly as in one process.

import type { AddressInfo } from 'node:net';
import type { ClusterStatus, FederatedService, Snapshot } from '../catalog/model.ts';
import type { Config } from '../config/schema.ts';
import type { ErrorCode } from '../errors.ts';
import type { Outcome } from '../health/outlier.ts';
import type { ServiceHealthEntry } from '../health/store.ts';
import type { MetricsJson } from '../observe/metrics-merge.ts';
import type { TrafficJson } from '../observe/traffic.ts';
import type { Locality } from '../routing/types.ts';
import type { RoutesDelta } from './routes-delta.ts';

/** One snapshot, as the services that changed since `base` (undefined: all of them). */
export interface SnapshotDelta {
  readonly base: number | undefined;
  readonly version: number;
  readonly createdAt: number;
  readonly clusters: ReadonlyMap<string, ClusterStatus>;
  readonly changed: readonly FederatedService[];
  readonly removed: readonly string[];
}

/** `next` as a delta against `prev` (the snapshot the receiver holds); whole without one. */
export function snapshotDelta(prev: Snapshot | undefined, next: Snapshot): SnapshotDelta {
  const changed: FederatedService[] = [];
  const removed: string[] = [];
  if (!prev) {
    changed.push(...next.services.values());
  } else if (prev.services !== next.services) {
    for (const [key, svc] of next.services) if (prev.services.get(key) !== svc) changed.push(svc);
    for (const key of prev.services.keys()) if (!next.services.has(key)) removed.push(key);
  }
  return {
    base: prev?.version,
    version: next.version,
    createdAt: next.createdAt,
    clusters: next.clusters,
    changed,
    removed,
  };
}

/**
 * The snapshot a delta describes, built on `prev` (unchanged services stay the same
 * objects); undefined when the delta is not against `prev` (the receiver missed
 * one, and asks for the whole snapshot again).
 */
export function applyDelta(prev: Snapshot | undefined, delta: SnapshotDelta): Snapshot | undefined {
  if (delta.base !== undefined && delta.base !== prev?.version) return undefined;
  let services: ReadonlyMap<string, FederatedService>;
  if (delta.base === undefined) {
    services = new Map(delta.changed.map((s) => [s.key, s]));
  } else if (delta.changed.length === 0 && delta.removed.length === 0) {
    services = prev!.services;
  } else {
    const next = new Map(prev!.services);
    for (const key of delta.removed) next.delete(key);
    for (const svc of delta.changed) next.set(svc.key, svc);
    services = next;
  }
  return { version: delta.version, createdAt: delta.createdAt, services, clusters: delta.clusters };
}

/** Where a worker's listeners are (port 0 in the config gets a real one, the same in every worker). */
export interface ServingAddresses {
  readonly udp: readonly AddressInfo[];
  readonly http: readonly AddressInfo[];
  readonly https: readonly AddressInfo[];
}

/** What a reload's serving part opens, closes and reads anew, as a worker staged it. */
export interface ServingChanges {
  /** "dns host:port", "http host:port", "https host:port". */
  readonly opened: readonly string[];
  readonly closed: readonly string[];
  /** The certificate files differ from the running ones (paths or content). */
  readonly certificatesChanged: boolean;
}

export type Ask =
  | { readonly op: 'metrics' }
  /** The worker's traffic ring (the status page's picture). */
  | { readonly op: 'traffic' }
  /** Answered once everything sent before it has been taken in (messages keep their order). */
  | { readonly op: 'ping' }
  | { readonly op: 'stage'; readonly reload: number; readonly config: Config }
  | { readonly op: 'commit'; readonly reload: number }
  | { readonly op: 'abort'; readonly reload: number };

export type ToWorker =
  | {
      readonly type: 'init';
      /** The worker's slot, 0 … N−1 (a replacement takes the slot of the one it replaces). */
      readonly slot: number;
      readonly config: Config;
      /** The SOA serial's base, the same in every worker: seconds at the primary's start. */
      readonly serialBase: number;
      /**
       * DNS over UDP: each worker binds its own socket with SO_REUSEPORT (true), or
       * all read one socket the primary binds (false: platforms without it).
       */
      readonly reusePort: boolean;
      readonly snapshot: SnapshotDelta;
      readonly health: readonly ServiceHealthEntry[];
    }
  | { readonly type: 'snapshot'; readonly delta: SnapshotDelta }
  | { readonly type: 'health'; readonly entries: readonly ServiceHealthEntry[] }
  | { readonly type: 'ask'; readonly id: number; readonly ask: Ask }
  | { readonly type: 'drain'; readonly graceMs: number }
  /**
   * The Gateway API routes in force: every worker's proxy takes them (ProxyServer.setRoutes);
   * hosts the worker holds from the tables sent before go by name (routes-delta.ts).
   */
  | { readonly type: 'routes'; readonly delta: RoutesDelta };

/** One proxied request's outcome at an endpoint: HealthMonitor.report's arguments. */
export type Report = readonly [service: string, id: string, outcome: Outcome];

export type Answer =
  | {
      readonly ok: true;
      readonly metrics?: MetricsJson;
      readonly traffic?: TrafficJson;
      readonly staged?: ServingChanges;
    }
  | { readonly ok: false; readonly code: ErrorCode; readonly problem: string };

export type FromWorker =
  | { readonly type: 'hello' }
  | { readonly type: 'listening'; readonly addresses: ServingAddresses }
  | { readonly type: 'failed'; readonly setting: string; readonly message: string }
  | { readonly type: 'reports'; readonly reports: readonly Report[] }
  | {
      readonly type: 'used';
      readonly service: string;
      readonly locality: Locality | undefined;
    }
  | { readonly type: 'resync' }
  | { readonly type: 'answer'; readonly id: number; readonly answer: Answer }
  | { readonly type: 'drained'; readonly proxyCut: number; readonly dnsCut: number };

const TO_WORKER = new Set(['init', 'snapshot', 'health', 'ask', 'drain', 'routes']);
const FROM_WORKER = new Set([
  'hello',
  'listening',
  'failed',
  'reports',
  'used',
  'resync',
  'answer',
  'drained',
]);

function typed(m: unknown): string | undefined {
  if (m === null || typeof m !== 'object') return undefined;
  const t = (m as { type?: unknown }).type;
  return typeof t === 'string' ? t : undefined;
}

/** One of ours (other users of the channel, such as prom-client's, are ignored). */
export function isToWorker(m: unknown): m is ToWorker {
  return TO_WORKER.has(typed(m) ?? '');
}

export function isFromWorker(m: unknown): m is FromWorker {
  return FROM_WORKER.has(typed(m) ?? '');
}
