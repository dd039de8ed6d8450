// How often a real kube-apiserver sends BOOKMARKs, pinned, because fedgate's silence limit
// on a real member depends on it (src/localfed/README.md, "Bookmarks"): about once a minute,
// and only once its watch cache has seen a newer revision, which RealMember's etcd
// progress notifications (every 2 s) make sure of on a quiet resource.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberCluster } from '../src/localfed/member.ts';
import { MemberWatch } from './helpers/member-http.ts';
import { startMember } from './helpers/members.ts';
import { waitFor } from './helpers/wait.ts';

describe('bookmarks on a real member', () => {
  let m: MemberCluster;
  beforeAll(async () => {
    m = await startMember('real', 'bookmarks');
  }, 120_000);
  afterAll(async () => {
    await m?.stop();
  });

  it('a quiet watch with allowWatchBookmarks gets one within a minute and a half, none at once', async () => {
    const from = await m.revision();
    const opened = Date.now();
    const w = new MemberWatch(
      m,
      `/api/v1/namespaces/default/services?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${from}`,
    );
    await w.opened;
    expect(w.status).toBe(200);
    // Nothing changes Services here: the only events can be bookmarks.
    await waitFor(() => w.events.length > 0, 90_000, 'a BOOKMARK', 200);
    const after = Date.now() - opened;
    w.close();
    expect(w.events[0]).toMatchObject({ type: 'BOOKMARK', object: { kind: 'Service' } });
    expect(Number(w.events[0]?.object.metadata?.resourceVersion)).toBeGreaterThan(Number(from));
    // Not a timing threshold: a bookmark a few seconds in would mean a faster server,
    // and this file and src/localfed/README.md would be wrong.
    expect(after).toBeGreaterThan(30_000);
  }, 120_000);
});
