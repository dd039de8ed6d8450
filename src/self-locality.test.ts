import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import type { SelfLabels } from './config/self.ts';
import { FedgateError } from './errors.ts';
import { SelfLocality } from './self-locality.ts';

let config: Config;
beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'fedgate-selfloc-'));
  writeFileSync(
    join(dir, 'a.kubeconfig'),
    `apiVersion: v1
kind: Config
clusters: [{ name: c1, cluster: { server: https://127.0.0.1:6443 } }]
contexts: [{ name: one, context: { cluster: c1, user: u1 } }]
current-context: one
users: [{ name: u1, user: { token: abc } }]
`,
  );
  config = parseConfig(
    `federation: { name: galaxy, domain: example.test }
clusters:
  - { name: alpha, kubeconfig: a.kubeconfig, region: us-east }
  - { name: beta, kubeconfig: a.kubeconfig }
self: { node: n-1, cluster: alpha }
`,
    join(dir, 'fedgate.yaml'),
    {},
  );
});

/** A SelfLocality whose Node reads answer from `answers` in turn (an Error: the read fails). */
function selfWith(answers: Array<SelfLabels | Error>) {
  const logs: { level: number; msg: string }[] = [];
  const log = pino({ base: null }, { write: (l: string) => void logs.push(JSON.parse(l)) });
  const asked: string[] = [];
  const self = new SelfLocality({
    log,
    env: {},
    readNode: async (src) => {
      asked.push(`${src.cluster}/${src.node}`);
      const next = answers.shift();
      if (next === undefined || next instanceof Error) throw next ?? new Error('no answer');
      return next;
    },
  });
  return { self, logs, asked };
}

const unavailable = () =>
  new FedgateError('SELF_NODE_UNAVAILABLE', 'Node "n-1" in cluster alpha: no such Node');

describe('SelfLocality', () => {
  it('at start, reads the Node in self.cluster and routes from its labels; commit makes it current', async () => {
    const { self, asked, logs } = selfWith([{ region: 'us-east', zone: 'us-east-a' }]);
    const staged = await self.stage(config);
    expect(asked).toEqual(['alpha/n-1']);
    expect(staged.config.self).toMatchObject({ region: 'us-east', zone: 'us-east-a' });
    expect(self.resolved).toBeUndefined();
    staged.commit();
    expect(self.resolved?.from).toEqual({ region: 'node', zone: 'node' });
    expect(logs.map((l) => l.msg)).toEqual([
      'self: us-east/us-east-a (region from node alpha/n-1, zone from node alpha/n-1)',
    ]);
  });

  it('at start, a Node that cannot be read is an error (no guessed locality)', async () => {
    const { self } = selfWith([unavailable()]);
    await expect(self.stage(config)).rejects.toMatchObject({ code: 'SELF_NODE_UNAVAILABLE' });
  });

  it('at reload, a Node that cannot be read keeps the last labels read, with a warning', async () => {
    const { self, logs } = selfWith([{ region: 'us-east', zone: 'us-east-a' }, unavailable()]);
    (await self.stage(config)).commit();
    const again = await self.stage(config);
    expect(again.config.self).toMatchObject({ region: 'us-east', zone: 'us-east-a' });
    expect(logs.at(-1)).toMatchObject({
      level: 40,
      msg: 'self: cannot read Node "n-1" in cluster alpha; keeping its last known labels',
    });
  });

  it('follows its own Node in the watch: new labels restage, other Nodes and equal labels do not', async () => {
    const { self, logs } = selfWith([{ region: 'us-east', zone: 'us-east-a' }]);
    (await self.stage(config)).commit();
    const heard: SelfLabels[] = [];
    const listener = self.nodeListener((labels) => heard.push(labels));
    listener('beta', 'n-1', { name: 'n-1', region: 'us-east', zone: 'us-east-b' });
    listener('alpha', 'n-2', { name: 'n-2', region: 'us-east', zone: 'us-east-b' });
    listener('alpha', 'n-1', { name: 'n-1', region: 'us-east', zone: 'us-east-a' });
    expect(heard).toEqual([]);
    listener('alpha', 'n-1', { name: 'n-1', region: 'us-east', zone: 'us-east-b' });
    expect(heard).toEqual([{ region: 'us-east', zone: 'us-east-b' }]);
    const moved = self.restage({ region: 'us-east', zone: 'us-east-b' });
    expect(moved?.config.self).toMatchObject({ node: 'n-1', region: 'us-east', zone: 'us-east-b' });
    moved?.commit();
    expect(self.resolved?.locality.zone).toBe('us-east-b');
    // Told again with what is now current: nothing to do.
    expect(self.restage({ region: 'us-east', zone: 'us-east-b' })).toBeUndefined();
    // Deleted: the locality stays, and a warning says so.
    listener('alpha', 'n-1', undefined);
    expect(heard).toHaveLength(1);
    expect(logs.at(-1)?.msg).toContain(
      'self: Node "n-1" was deleted in cluster alpha; keeping the last known locality',
    );
  });

  it('without self.node nothing is read, and the environment still wins', async () => {
    const plain = { ...config, self: { region: 'eu-west' } } as Config;
    const logs: string[] = [];
    const self = new SelfLocality({
      log: pino({ base: null }, { write: (l: string) => void logs.push(l) }),
      env: { FEDGATE_ZONE: 'eu-west-c' },
      readNode: () => Promise.reject(new Error('not asked')),
    });
    const staged = await self.stage(plain);
    expect(staged.config.self).toEqual({ region: 'eu-west', zone: 'eu-west-c' });
    expect(staged.resolved.from).toEqual({ region: 'config', zone: 'env' });
  });
});
