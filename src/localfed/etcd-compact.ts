// Compaction of a real member's history. Placeholder until the behaviour is measured.
import type { KubeControlPlane } from './control-plane.ts';

export async function compactEtcd(name: string, cp: KubeControlPlane): Promise<string> {
  return `${name}: not compacted (${cp.etcdUrl})`;
}
