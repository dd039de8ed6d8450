// gatewayAPI.clusters changed by a reload: a cluster named joins (its Gateway API
// objects arrive), one dropped leaves (its objects go), one whose kubeconfig changes
// gets a new watcher whose objects replace the old ones only once it has synced; the
// member's own endpoint watcher is left alone throughout. On the simulator (its
// Namespaces are the objects followed here).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import type { MemberCluster } from '../src/localfed/member.ts';
import { DiscoveryEnv, FAST_WATCH } from './helpers/discovery-env.ts';
import { waitFor } from './helpers/wait.ts';

let env: DiscoveryEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

async function configWith(
  e: DiscoveryEnv,
  members: MemberCluster[],
  gatewayClusters: string[],
  kubeconfigs: Record<string, string>,
): Promise<Config> {
  const dir = await e.dir();
  return parseConfig(
    stringify({
      federation: { name: 'testfed', domain: 'example.test' },
      clusters: members.map((m) => ({ name: m.name, kubeconfig: kubeconfigs[m.name] })),
      watch: FAST_WATCH,
      gatewayAPI: { clusters: gatewayClusters },
    }),
    join(dir, 'fedgate.yaml'),
  );
}

describe('gatewayAPI.clusters on reload', () => {
  it('adds, restarts and removes Gateway API watchers apart from the member watchers', async () => {
    env = new DiscoveryEnv('sim');
    const alpha = await env.cluster('alpha');
    const beta = await env.cluster('beta');
    const dir = await env.dir();
    // DiscoveryEnv writes each member's kubeconfig as localfed does: DIR/NAME.kubeconfig.
    const kubeconfigs = {
      alpha: join(dir, 'alpha.kubeconfig'),
      beta: join(dir, 'beta.kubeconfig'),
    };
    await alpha.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'routes-a' },
    });
    await beta.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'routes-b' },
    });
    const d = await env.startSynced(await configWith(env, [alpha, beta], [], kubeconfigs));
    expect(d.gateway.statuses().size).toBe(0);
    expect(d.gateway.current().objects.namespaces).toEqual([]);
    const memberWatchers = [...d.watchers];

    const routes = (o = d.gateway.current().objects) =>
      o.namespaces.filter((n) => n.name.startsWith('routes-')).map((n) => `${n.cluster}:${n.name}`);

    // Joins: alpha's objects arrive; the member watchers are the same objects.
    let staged = d.stage(await configWith(env, [alpha, beta], ['alpha'], kubeconfigs));
    expect(staged.gatewayChanges).toEqual({ added: ['alpha'], removed: [], restarted: [] });
    await staged.commit();
    await waitFor(() => routes().join() === 'alpha:routes-a', 5000, "alpha's namespace");
    await waitFor(
      () => d.gateway.statuses().get('alpha')?.state === 'synced',
      5000,
      'alpha synced',
    );
    // The simulator serves every Gateway API kind, and Secrets.
    expect(d.gateway.statuses().get('alpha')?.absent).toEqual([]);
    expect([...d.watchers]).toEqual(memberWatchers);

    // Both, then alpha's kubeconfig rewritten to reach beta's API server: a new
    // watcher, whose objects replace alpha's old ones whole once it has synced (what it
    // does not list goes), and until then the old ones stay published.
    staged = d.stage(await configWith(env, [alpha, beta], ['alpha', 'beta'], kubeconfigs));
    await staged.commit();
    await waitFor(
      () => routes().join() === 'alpha:routes-a,beta:routes-b',
      5000,
      "beta's namespace too",
    );
    const seen: string[] = [];
    const unsubscribe = d.gateway.subscribe((o) => seen.push(routes(o).join()));
    await writeFile(kubeconfigs.alpha, await readFile(kubeconfigs.beta, 'utf8'));
    staged = d.stage(await configWith(env, [alpha, beta], ['alpha', 'beta'], kubeconfigs));
    expect(staged.gatewayChanges.restarted).toEqual([
      { name: 'alpha', why: 'kubeconfig file changed' },
    ]);
    await staged.commit();
    await waitFor(
      () => routes().join() === 'alpha:routes-b,beta:routes-b',
      5000,
      "alpha's records replaced by what its new watcher reads",
    );
    expect(seen).toEqual(['alpha:routes-b,beta:routes-b']);
    unsubscribe();

    // Leaves: alpha's objects go, beta's stay.
    staged = d.stage(await configWith(env, [alpha, beta], ['beta'], kubeconfigs));
    expect(staged.gatewayChanges).toEqual({ added: [], removed: ['alpha'], restarted: [] });
    await staged.commit();
    await waitFor(() => routes().join() === 'beta:routes-b', 5000, "only beta's namespace");
    expect([...d.gateway.statuses().keys()]).toEqual(['beta']);
  });

  it('refuses a name that is no member cluster', async () => {
    env = new DiscoveryEnv('sim');
    const alpha = await env.cluster('alpha');
    const dir = await env.dir();
    await expect(
      configWith(env, [alpha], ['gamma'], { alpha: join(dir, 'alpha.kubeconfig') }),
    ).rejects.toThrow(/gatewayAPI\.clusters\[0\]: "gamma" is not a member cluster/);
  });
});
