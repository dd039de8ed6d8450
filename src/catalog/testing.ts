// Fixtures shared by the catalog's unit tests.
import type { ClusterStatus } from '../watch/cluster-watcher.ts';

/** A member's status: synced, unless overridden. */
export function clusterStatus(cluster: string, over: Partial<ClusterStatus> = {}): ClusterStatus {
  return {
    cluster,
    state: 'synced',
    syncedOnce: true,
    lastSyncAt: 1,
    error: undefined,
    exportMode: 'ServiceExport',
    ...over,
  };
}
