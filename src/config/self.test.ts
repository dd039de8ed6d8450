// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} references as users write them
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.ts';
import type { Config } from './schema.ts';
import { describeSelf, resolveSelf, withSelf } from './self.ts';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: c1, cluster: { server: https://127.0.0.1:6443 } }]
contexts: [{ name: one, context: { cluster: c1, user: u1 } }]
current-context: one
users: [{ name: u1, user: { token: abc } }]
`;

let source: string;
beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'fedgate-self-'));
  writeFileSync(join(dir, 'a.kubeconfig'), KUBECONFIG);
  source = join(dir, 'fedgate.yaml');
});

/** A config with two members (alpha has a region, beta none) and `self` as given. */
function config(self: string, env: NodeJS.ProcessEnv = {}): Config {
  return parseConfig(
    `federation: { name: galaxy, domain: example.test }
clusters:
  - { name: alpha, kubeconfig: a.kubeconfig, region: us-east }
  - { name: beta, kubeconfig: a.kubeconfig }
self: ${self}
`,
    source,
    env,
  );
}

function problems(self: string, env: NodeJS.ProcessEnv = {}): readonly string[] {
  try {
    config(self, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

describe('self.node in the file', () => {
  it('fills ${VAR} from the environment', () => {
    const c = config('{ node: "${NODE_NAME}", cluster: alpha }', { NODE_NAME: 'n-1' });
    expect(c.self.node).toBe('n-1');
    expect(config('{ node: "pre-${A}-${B}", cluster: alpha }', { A: 'x', B: 'y' }).self.node).toBe(
      'pre-x-y',
    );
  });

  it('an unset or empty variable is a problem naming it and the downward API', () => {
    const unset =
      'self.node: environment variable NODE_NAME is not set (in Kubernetes: env NODE_NAME from fieldRef spec.nodeName)';
    expect(problems('{ node: "${NODE_NAME}", cluster: alpha }')).toEqual([unset]);
    expect(problems('{ node: "${NODE_NAME}", cluster: alpha }', { NODE_NAME: '' })).toEqual([
      unset,
    ]);
  });

  it('needs self.cluster with more than one member, and a member there', () => {
    expect(problems('{ node: n-1 }')).toEqual([
      'self.cluster: required when self.node is set and there is more than one member',
    ]);
    expect(problems('{ node: n-1, cluster: gamma }')).toEqual([
      'self.cluster: "gamma" is not a member cluster (clusters[].name: alpha, beta)',
    ]);
  });

  it('is taken without self.cluster when there is one member', () => {
    const c = parseConfig(
      `federation: { name: galaxy, domain: example.test }
clusters: [{ name: alpha, kubeconfig: a.kubeconfig }]
self: { node: n-1 }
`,
      source,
      {},
    );
    expect(c.self.node).toBe('n-1');
  });
});

describe('resolveSelf: env, then the Node, then the member’s region, then the config', () => {
  const file = () =>
    config('{ node: n-1, cluster: alpha, region: eu-west, zone: eu-west-b, subzone: rack-1 }');

  it('the Node’s labels win over the config’s keys; a field the Node lacks falls through', () => {
    const r = resolveSelf(file(), { region: 'us-east', zone: 'us-east-a' }, {});
    expect(r.locality).toEqual({ region: 'us-east', zone: 'us-east-a', subzone: 'rack-1' });
    expect(r.from).toEqual({ region: 'node', zone: 'node', subzone: 'config' });
    expect(r.node).toEqual({
      cluster: 'alpha',
      name: 'n-1',
      labels: { region: 'us-east', zone: 'us-east-a' },
    });
  });

  it('a Node without a region label takes its member’s region, as endpoints on it do', () => {
    const r = resolveSelf(file(), { zone: 'us-east-a' }, {});
    expect(r.locality.region).toBe('us-east');
    expect(r.from.region).toBe('cluster');
  });

  it('FEDGATE_REGION, FEDGATE_ZONE and FEDGATE_SUBZONE win over everything', () => {
    const env = { FEDGATE_ZONE: 'us-east-c', FEDGATE_SUBZONE: 'rack-9' };
    const r = resolveSelf(file(), { region: 'us-east', zone: 'us-east-a', subzone: 'rack-2' }, env);
    expect(r.locality).toEqual({ region: 'us-east', zone: 'us-east-c', subzone: 'rack-9' });
    expect(r.from).toEqual({ region: 'node', zone: 'env', subzone: 'env' });
    expect(describeSelf(r)).toBe(
      'us-east/us-east-c/rack-9 (region from node alpha/n-1, zone from FEDGATE_ZONE, subzone from FEDGATE_SUBZONE)',
    );
  });

  it('without self.node: env over the config keys; an empty variable counts as unset', () => {
    const c = config('{ region: eu-west, zone: eu-west-b }');
    const r = resolveSelf(c, undefined, { FEDGATE_REGION: 'ap-south', FEDGATE_ZONE: '' });
    expect(r.locality).toEqual({ region: 'ap-south', zone: 'eu-west-b' });
    expect(r.from).toEqual({ region: 'env', zone: 'config' });
    expect(r.node).toBeUndefined();
    // Nothing anywhere: no locality, as before self.node.
    expect(resolveSelf(config('{}'), undefined, {}).locality).toEqual({});
  });

  it('refuses an environment value that is not a DNS label, and a zone without a region', () => {
    expect(() => resolveSelf(file(), undefined, { FEDGATE_ZONE: 'Zone A' })).toThrow(
      'FEDGATE_ZONE: "Zone A" is not a DNS label',
    );
    // beta has no region: a Node there with a zone label only has nowhere to take one from.
    const beta = config('{ node: n-1, cluster: beta }');
    expect(() => resolveSelf(beta, { zone: 'z-a' }, {})).toThrow(
      'self: zone "z-a" (from node) has no region',
    );
  });

  it('withSelf replaces the locality and keeps self.node and self.cluster, frozen', () => {
    const c = file();
    const out = withSelf(c, resolveSelf(c, { region: 'us-east', zone: 'us-east-a' }, {}));
    expect(out.self).toEqual({
      node: 'n-1',
      cluster: 'alpha',
      region: 'us-east',
      zone: 'us-east-a',
      subzone: 'rack-1',
    });
    expect(Object.isFrozen(out) && Object.isFrozen(out.self)).toBe(true);
    expect(out.clusters).toBe(c.clusters);
  });
});
