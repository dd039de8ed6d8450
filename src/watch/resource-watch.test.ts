import { describe, expect, it } from 'vitest';
import { errorCodeOf, FedgateError } from '../errors.ts';
import type { ExhaustedResource } from '../observe/exhaustion.ts';
import type { ApiClient, ListPage } from './api-client.ts';
import type { Backoff } from './backoff.ts';
import { ResourceWatch } from './resource-watch.ts';

/** What ApiClient makes of a connect that failed for lack of descriptors. */
function exhaustedConnect(): Error {
  const emfile = Object.assign(new Error('connect EMFILE 127.0.0.1:6443'), {
    code: 'EMFILE',
    syscall: 'connect',
  });
  return new FedgateError(
    'CLUSTER_UNREACHABLE',
    'cluster alpha: list /api/v1/nodes at https://127.0.0.1:6443 failed: connect EMFILE',
    { cause: new TypeError('fetch failed', { cause: emfile }) },
  );
}

interface Recorded {
  readonly failures: Error[];
  readonly noted: [ExhaustedResource, unknown][];
  listed: number;
  backoffs: number;
}

/** A watch of nodes on `client`, recording what it reports, with a 1 ms backoff. */
function recordedWatch(client: ApiClient): { watch: ResourceWatch<'nodes'>; seen: Recorded } {
  const seen: Recorded = { failures: [], noted: [], listed: 0, backoffs: 0 };
  const backoff = {
    next: () => {
      seen.backoffs++;
      return 1;
    },
  } as unknown as Backoff;
  const watch = new ResourceWatch(
    'nodes',
    client,
    {
      change: () => {},
      listed: () => {
        seen.listed++;
      },
      contact: () => {},
      failed: (err) => seen.failures.push(err),
      absent: () => {},
    },
    {
      silenceLimitMs: 10_000,
      listTimeoutMs: 10_000,
      pageSize: 500,
      absentRecheckMs: 60_000,
      random: () => 0,
      exhaustion: { note: (resource, err) => seen.noted.push([resource, err]) },
    },
    backoff,
  );
  return { watch, seen };
}

/**
 * An API client of cluster alpha whose n-th list (from 1) does what `list(n)` says,
 * and whose watches stay open until the watch stops.
 */
function fakeClient(list: (n: number) => ListPage): { client: ApiClient; lists: () => number } {
  let lists = 0;
  const client = {
    cluster: 'alpha',
    session: async () => ({ headers: {}, dispatcher: undefined, close: () => {} }),
    listPage: async () => list(++lists),
    watch: (...args: unknown[]) =>
      new Promise<void>((resolve) => {
        (args[4] as () => void)();
        (args[6] as AbortSignal).addEventListener('abort', () => resolve(), { once: true });
      }),
  } as unknown as ApiClient;
  return { client, lists: () => lists };
}

/** Waits, at most 5 s, for `done`. */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

describe('ResourceWatch out of descriptors', () => {
  it('reports RESOURCE_EXHAUSTED, notes "watch", backs off as after any failure, then lists again', async () => {
    const { client, lists } = fakeClient((n) => {
      if (n <= 2) throw exhaustedConnect();
      return { items: [], resourceVersion: '7', continueToken: undefined };
    });
    const { watch: w, seen } = recordedWatch(client);
    w.start();
    await until(() => seen.listed > 0);
    await w.stop();
    expect(seen.listed).toBe(1);
    expect(lists()).toBe(3);
    expect(seen.backoffs).toBe(2);
    expect(seen.noted.map(([r]) => r)).toEqual(['watch', 'watch']);
    expect(seen.failures).toHaveLength(2);
    for (const f of seen.failures) {
      // fedgate's own trouble, said as such in the cluster's status.
      expect(errorCodeOf(f)).toBe('RESOURCE_EXHAUSTED');
      expect(f.message).toMatch(
        /^cluster alpha: nodes: fedgate is out of file descriptors \(EMFILE\)/,
      );
    }
  });

  it('leaves every other failure as it was', async () => {
    const { client, lists } = fakeClient(() => {
      throw new FedgateError('CLUSTER_UNREACHABLE', 'cluster alpha: connect ECONNREFUSED');
    });
    const { watch: w, seen } = recordedWatch(client);
    w.start();
    await until(() => lists() >= 3);
    await w.stop();
    expect(seen.noted).toEqual([]);
    expect(seen.failures.length).toBeGreaterThan(0);
    expect(errorCodeOf(seen.failures[0])).toBe('CLUSTER_UNREACHABLE');
  });
});
