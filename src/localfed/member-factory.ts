// Makes the member cluster of one scenario cluster on the API server asked for.
import { SimCluster } from './cluster.ts';
import type { ApiKind, MemberCluster } from './member.ts';
import { SimMember } from './sim-member.ts';

export interface MemberOptions {
  name: string;
  /** Loopback address the member's API answers on (kubeconfigs name it). */
  host: string;
  /** 0 picks a free port. */
  port: number;
  serviceExportCRD: boolean;
  bookmarkIntervalMs?: number | undefined;
  minRequestTimeoutSeconds?: number | undefined;
}

/** A member, not yet started. */
export async function createMember(api: ApiKind, opts: MemberOptions): Promise<MemberCluster> {
  if (api === 'real') throw new Error('real API servers are not wired in yet');
  return new SimMember(await SimCluster.create(opts));
}
