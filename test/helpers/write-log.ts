// Counts writes to member API servers from the members' own watches: every ADDED,
// MODIFIED and DELETED is one write (a new resourceVersion), by cluster, resource,
// namespace and name.
import { ApiClient } from '../../src/watch/api-client.ts';
import { loadKubeConfig } from '../../src/watch/cluster-watcher.ts';

/** Every ADDED/MODIFIED/DELETED a member's watch reports, by cluster/resource/namespace/name. */
export class WriteLog {
  readonly events: { key: string; type: string; rv: string; object: Record<string, unknown> }[] =
    [];
  readonly #stop = new AbortController();
  readonly #runs: Promise<void>[] = [];

  /** Watches that ended before stop(): their counts would be short. */
  readonly broken: string[] = [];

  /** Watches `path` in `cluster`, reached through `kubeconfig`; resolves once it is open. */
  watch(cluster: string, kubeconfig: string, resource: string, path: string): Promise<void> {
    const client = new ApiClient(cluster, loadKubeConfig(cluster, kubeconfig));
    let opened: () => void = () => {};
    const open = new Promise<void>((resolve) => {
      opened = resolve;
    });
    const loop = async () => {
      const session = await client.session();
      const list = await client.listPage(session, path, {}, this.#stop.signal);
      await client
        .watch(
          session,
          path,
          { resourceVersion: list.resourceVersion },
          60_000,
          () => opened(),
          (e) => {
            if (e.type === 'BOOKMARK') return;
            const m = e.object.metadata as {
              namespace: string;
              name: string;
              resourceVersion: string;
            };
            this.events.push({
              key: `${cluster}/${resource}/${m.namespace}/${m.name}`,
              type: e.type,
              rv: m.resourceVersion,
              object: e.object,
            });
          },
          this.#stop.signal,
        )
        .catch(() => {});
      if (!this.#stop.signal.aborted) this.broken.push(`${cluster}/${resource}`);
      session.close();
    };
    const run = loop();
    this.#runs.push(run);
    return Promise.race([open, run]);
  }

  count(key: string): number {
    return this.events.filter((e) => e.key === key).length;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#runs);
  }
}
