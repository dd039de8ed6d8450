// compact() on a real member. Compacting etcd alone changes nothing a client sees:
// kube-apiserver serves watches from its watch cache, which still holds the old events
// (observed with 1.37.2). A restarted kube-apiserver's cache starts at etcd's revision
// then, so from then on a watch from any earlier resourceVersion gets 410 Expired, as on
// the simulator. The relay makes the restart look as a graceful one behind a front door:
// open watches end cleanly, requests are held until kube-apiserver is ready again and
// serves watches of every type. A fault set on the relay stays as set.
import type { ApiRelay } from './api-relay.ts';
import type { KubeControlPlane } from './control-plane.ts';
import { etcdCompact, etcdPut, etcdRevision } from './etcd.ts';
import type { KubeRest } from './kube-rest.ts';
import { untilWatchesServed } from './watch-caches.ts';

/** How long to wait, after /readyz, for every watch cache to serve. */
const WATCH_CACHES_TIMEOUT_MS = 30_000;

/** Returns compact()'s line. `rest` talks to kube-apiserver directly, past the relay. */
export async function compactBehindRelay(
  name: string,
  url: string,
  cp: KubeControlPlane,
  relay: ApiRelay,
  rest: KubeRest,
): Promise<string> {
  const started = Date.now();
  await relay.drain();
  let revision: number;
  try {
    revision = await etcdRevision(cp.etcdUrl);
    await etcdCompact(cp.etcdUrl, revision);
    // One write past the compaction, outside kube-apiserver's /registry: the restarted
    // watch cache starts at etcd's revision then, so this makes even a watch from
    // `revision` itself 410, whatever kube-apiserver writes as it starts (README).
    await etcdPut(cp.etcdUrl, '/fedgate/compacted-at', String(revision));
    await cp.restartApiserver();
    await untilWatchesServed(rest, WATCH_CACHES_TIMEOUT_MS);
    // A fresh connection pool: the old one's connections went with the old process.
    relay.setUpstream({ url: cp.url, ca: cp.ca });
  } finally {
    relay.release();
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  return `etcd of ${name} compacted at revision ${revision} and its kube-apiserver restarted so its watch cache starts after it: watches from revision ${revision} or older get 410 Expired, as on the simulator; unlike it, open watches through ${url} were ended (cleanly, as at a graceful restart) and requests held for ${seconds} s until kube-apiserver was ready`;
}
