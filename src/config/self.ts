// This replica's locality (`self`), field by field, from the first of: the
// environment (FEDGATE_REGION, FEDGATE_ZONE, FEDGATE_SUBZONE: for runs outside
// Kubernetes, or to pin one replica by hand), the labels of the Node it runs on
// (`self.node`, read in `self.cluster`), that member's `region` for a Node without a
// region label (the rule endpoints on that Node follow), and the config's own keys.
// Pure: the Node's labels are given, read by src/watch/self-node.ts.
import { FedgateError } from '../errors.ts';
import { type ClusterConfig, type Config, dnsLabel } from './schema.ts';

export type SelfField = 'region' | 'zone' | 'subzone';
export const SELF_FIELDS: readonly SelfField[] = ['region', 'zone', 'subzone'];

/** The environment variables that win over everything else. */
export const SELF_ENV: Readonly<Record<SelfField, string>> = {
  region: 'FEDGATE_REGION',
  zone: 'FEDGATE_ZONE',
  subzone: 'FEDGATE_SUBZONE',
};

/** Where one field of self came from. */
export type SelfSource = 'env' | 'node' | 'cluster' | 'config';

export type SelfLabels = { readonly [F in SelfField]?: string };

export interface ResolvedSelf {
  readonly locality: SelfLabels;
  /** Each field that has a value, and where it came from. */
  readonly from: { readonly [F in SelfField]?: SelfSource };
  /** The Node read, when self.node is set (its labels may be the last known ones). */
  readonly node?: { readonly cluster: string; readonly name: string; readonly labels: SelfLabels };
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Fills `${VAR}` in `self.node` of the raw document from `env`, in place. Returns a
 * problem for each variable unset or empty: a pod whose downward API env is missing
 * must not start as if it had no Node.
 */
export function expandSelfNode(raw: unknown, env: NodeJS.ProcessEnv): string[] {
  const self = (raw as { self?: unknown } | null)?.self;
  if (self === null || typeof self !== 'object') return [];
  const holder = self as { node?: unknown };
  if (typeof holder.node !== 'string') return [];
  const problems: string[] = [];
  holder.node = holder.node.replace(VAR, (_, name: string) => {
    const value = env[name];
    if (value === undefined || value === '') {
      problems.push(
        `self.node: environment variable ${name} is not set (in Kubernetes: env ${name} from fieldRef spec.nodeName)`,
      );
      return '';
    }
    return value;
  });
  return problems;
}

/** The member self.node is read in: self.cluster, or the only member. */
export function selfCluster(config: Config): ClusterConfig | undefined {
  const name = config.self.cluster;
  if (name !== undefined) return config.clusters.find((c) => c.name === name);
  return config.clusters.length === 1 ? config.clusters[0] : undefined;
}

export function selfClusterProblems(config: Config): string[] {
  const { node, cluster } = config.self;
  if (cluster !== undefined && !config.clusters.some((c) => c.name === cluster)) {
    const names = config.clusters.map((c) => c.name).join(', ');
    return [`self.cluster: "${cluster}" is not a member cluster (clusters[].name: ${names})`];
  }
  if (node !== undefined && cluster === undefined && config.clusters.length > 1) {
    return ['self.cluster: required when self.node is set and there is more than one member'];
  }
  return [];
}

/**
 * Each field from the first source that has it. `node` is the Node's labels (undefined
 * without self.node). Throws CONFIG_INVALID for an environment value that is not a
 * DNS label, or a result with a zone but no region.
 */
export function resolveSelf(
  config: Config,
  node: SelfLabels | undefined,
  env: NodeJS.ProcessEnv,
): ResolvedSelf {
  const locality: { [F in SelfField]?: string } = {};
  const from: { [F in SelfField]?: SelfSource } = {};
  const member = node ? selfCluster(config) : undefined;
  for (const f of SELF_FIELDS) {
    const given = env[SELF_ENV[f]];
    if (given !== undefined && given !== '') {
      if (!dnsLabel.safeParse(given).success) {
        throw new FedgateError(
          'CONFIG_INVALID',
          `${SELF_ENV[f]}: "${given}" is not a DNS label (lower-case letters, digits and -, at most 63)`,
        );
      }
      locality[f] = given;
      from[f] = 'env';
      continue;
    }
    const labelled = node?.[f];
    const fromMember = f === 'region' ? member?.region : undefined;
    const configured = config.self[f];
    if (labelled !== undefined) {
      locality[f] = labelled;
      from[f] = 'node';
    } else if (fromMember !== undefined) {
      locality[f] = fromMember;
      from[f] = 'cluster';
    } else if (configured !== undefined) {
      locality[f] = configured;
      from[f] = 'config';
    }
  }
  if (locality.zone !== undefined && locality.region === undefined) {
    throw new FedgateError(
      'CONFIG_INVALID',
      `self: zone "${locality.zone}" (from ${from.zone}) has no region: label the Node topology.kubernetes.io/region, or set the member's clusters[].region, self.region or FEDGATE_REGION`,
    );
  }
  const name = config.self.node;
  const cluster = member?.name;
  return {
    locality,
    from,
    ...(node && name !== undefined && cluster !== undefined
      ? { node: { cluster, name, labels: node } }
      : {}),
  };
}

/** `config` with self's region, zone and subzone replaced by the resolved ones; frozen. */
export function withSelf(config: Config, resolved: ResolvedSelf): Config {
  const { node, cluster } = config.self;
  const self = Object.freeze({
    ...(node !== undefined ? { node } : {}),
    ...(cluster !== undefined ? { cluster } : {}),
    ...resolved.locality,
  });
  return Object.freeze({ ...config, self });
}

/** One line for logs and the status page: `us-east/us-east-a (zone from node alpha/n1, …)`. */
export function describeSelf(resolved: ResolvedSelf): string {
  const l = resolved.locality;
  const where = [l.region, l.zone, l.subzone].filter((x) => x !== undefined).join('/') || 'none';
  const parts = SELF_FIELDS.flatMap((f) => {
    const src = resolved.from[f];
    if (src === undefined) return [];
    const n = resolved.node;
    const named = src === 'node' && n ? `node ${n.cluster}/${n.name}` : src;
    return [`${f} from ${named === 'env' ? SELF_ENV[f] : named}`];
  });
  return parts.length > 0 ? `${where} (${parts.join(', ')})` : where;
}
