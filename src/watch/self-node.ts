// The Node this replica runs on (`self.node`), read once through the member cluster
// that hosts it (`self.cluster`): its locality labels, trimmed here like every Node
// the watchers list, so nothing past watch/ sees the API object. Label changes later
// arrive through that member's own Node watch (Discovery.onNode), not from here.
import { errorCodeOf, FedgateError } from '../errors.ts';
import { ApiClient } from './api-client.ts';
import { loadKubeConfig } from './cluster-watcher.ts';
import type { NodeRecord } from './records.ts';
import { trimNode } from './trim.ts';

export interface SelfNodeSource {
  /** The member cluster whose API has the Node. */
  readonly cluster: string;
  readonly kubeconfig: string;
  readonly context?: string | undefined;
  /** The Node's name: `spec.nodeName` of this replica's pod. */
  readonly node: string;
}

/**
 * GET /api/v1/nodes/NAME, trimmed to its locality labels. Fails with
 * SELF_NODE_UNAVAILABLE, naming the Node, its cluster and why (no such Node,
 * forbidden, unreachable, a malformed object); KUBECONFIG_INVALID as a watcher would.
 */
export async function readSelfNode(src: SelfNodeSource, timeoutMs: number): Promise<NodeRecord> {
  const client = new ApiClient(
    src.cluster,
    loadKubeConfig(src.cluster, src.kubeconfig, src.context),
  );
  const at = `Node "${src.node}" in cluster ${src.cluster}`;
  const session = await client.session().catch((e: unknown) => {
    throw unavailable(`${at}: no credentials: ${(e as Error).message}`, e);
  });
  try {
    const path = `/api/v1/nodes/${encodeURIComponent(src.node)}`;
    const obj = await client.getObject(session, path, AbortSignal.timeout(timeoutMs));
    const record = trimNode(obj);
    if (!record || record.name !== src.node) {
      throw unavailable(`${at}: the API server answered with something that is not that Node`);
    }
    return record;
  } catch (e) {
    if (errorCodeOf(e) === 'SELF_NODE_UNAVAILABLE') throw e;
    if (errorCodeOf(e) === 'CLUSTER_RESOURCE_NOT_SERVED') {
      throw unavailable(`${at}: no such Node (self.node is spec.nodeName of fedgate's pod)`, e);
    }
    throw unavailable(`${at} cannot be read: ${(e as Error).message}`, e);
  } finally {
    session.close();
  }
}

function unavailable(message: string, cause?: unknown): FedgateError {
  return new FedgateError('SELF_NODE_UNAVAILABLE', message, cause ? { cause } : undefined);
}
