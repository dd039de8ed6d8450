// Makes the member cluster of one scenario cluster on the API server asked for.
import { SimCluster } from './cluster.ts';
import type { GatewayApiChannel } from './gateway-schema.ts';
import type { KubeTools } from './kube-tools.ts';
import type { ApiKind, MemberCluster } from './member.ts';
import { SimMember } from './sim-member.ts';

export interface MemberOptions {
  name: string;
  /** Loopback address the member's API answers on (kubeconfigs name it). */
  host: string;
  /** 0 picks a free port. */
  port: number;
  serviceExportCRD: boolean;
  /** The Gateway API CRDs' release channel the member serves. */
  gatewayApiChannel: GatewayApiChannel;
  /** The simulator's bookmark interval (kube-apiserver keeps its own). */
  bookmarkIntervalMs?: number | undefined;
  minRequestTimeoutSeconds?: number | undefined;
  /** The binaries of a real member (found once for all members). */
  tools?: KubeTools | undefined;
}

/** A member, not yet started. */
export async function createMember(api: ApiKind, opts: MemberOptions): Promise<MemberCluster> {
  if (api === 'real') {
    // Loaded only when asked for, so the simulator's start (npm start) pays nothing for it.
    const { RealMember } = await import('./real-member.ts');
    return RealMember.create(opts);
  }
  return new SimMember(await SimCluster.create(opts));
}
