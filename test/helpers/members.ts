// One started member cluster of either kind, for tests that run on both API servers:
//
//   describe.each(API_KINDS)('%s', (api) => { ... await startMember(api, 'east') ... })
//
// `sim`: a SimCluster (bookmarks every 250 ms, as DiscoveryEnv's) behind SimMember.
// `real`: a RealMember (etcd + kube-apiserver + relay), binaries from FEDGATE_KUBE_TOOLS.
// Both on 127.0.0.1, a free port. The caller stops it (afterAll).
import { SimCluster } from '../../src/localfed/cluster.ts';
import type { ApiKind, MemberCluster } from '../../src/localfed/member.ts';
import { RealMember } from '../../src/localfed/real-member.ts';
import { SimMember } from '../../src/localfed/sim-member.ts';
import { BOOKMARK_INTERVAL_MS } from './discovery-env.ts';
import { requireKubeTools } from './kube-control-plane.ts';

export { API_KINDS, type ApiKind } from '../../src/localfed/member.ts';

export interface StartMemberOptions {
  host?: string;
  port?: number;
  token?: string;
  serviceExportCRD?: boolean;
  minRequestTimeoutSeconds?: number;
  /** sim only (a real kube-apiserver's interval is its own: see src/localfed/README.md). */
  bookmarkIntervalMs?: number;
  /** real only: extra kube-apiserver flags. */
  apiserverArgs?: string[];
}

export async function startMember(
  api: ApiKind,
  name: string,
  opts: StartMemberOptions = {},
): Promise<MemberCluster> {
  const common = {
    name,
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    token: opts.token,
    serviceExportCRD: opts.serviceExportCRD,
    minRequestTimeoutSeconds: opts.minRequestTimeoutSeconds,
  };
  const member =
    api === 'sim'
      ? new SimMember(
          await SimCluster.create({
            ...common,
            bookmarkIntervalMs: opts.bookmarkIntervalMs ?? BOOKMARK_INTERVAL_MS,
          }),
        )
      : await RealMember.create({
          ...common,
          tools: requireKubeTools(),
          apiserverArgs: opts.apiserverArgs,
        });
  await member.start();
  return member;
}
