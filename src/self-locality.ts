// This replica's locality, resolved from a configuration (src/config/self.ts says
// the order): the Node of `self.node` is read through its member's API at start (a
// Node missing or unreadable stops the start: SELF_NODE_UNAVAILABLE) and at every
// reload (then a failure keeps the last labels read, with a warning), and followed
// through that member's Node watch, so a relabelled Node moves the replica.
import type { Config } from './config/schema.ts';
import {
  describeSelf,
  type ResolvedSelf,
  resolveSelf,
  type SelfLabels,
  selfCluster,
  withSelf,
} from './config/self.ts';
import type { NodeListener } from './discovery.ts';
import type { Logger } from './observe/log.ts';
import { readSelfNode, type SelfNodeSource } from './watch/self-node.ts';

export type ReadNode = (src: SelfNodeSource, timeoutMs: number) => Promise<SelfLabels>;

export interface SelfLocalityOptions {
  readonly log: Logger;
  /** Where FEDGATE_REGION, FEDGATE_ZONE and FEDGATE_SUBZONE are read (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Reads the Node (default: a GET through the member's kubeconfig). */
  readonly readNode?: ReadNode;
}

/** A configuration with self resolved, made current by commit (when the reload applies). */
export interface StagedSelf {
  readonly config: Config;
  readonly resolved: ResolvedSelf;
  commit(): void;
}

export class SelfLocality {
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #readNode: ReadNode;
  /** The configuration as loaded (self unresolved), and what it resolved to. */
  #input: Config | undefined;
  #resolved: ResolvedSelf | undefined;

  constructor(opts: SelfLocalityOptions) {
    this.#log = opts.log;
    this.#env = opts.env ?? process.env;
    this.#readNode = opts.readNode ?? readSelfNode;
  }

  /** Where the environment is read: reloads load the file with the same one. */
  get env(): NodeJS.ProcessEnv {
    return this.#env;
  }

  /** How self was found, once a configuration has been committed. */
  get resolved(): ResolvedSelf | undefined {
    return this.#resolved;
  }

  /**
   * Resolves self for `input`. The first time, a Node that cannot be read throws
   * SELF_NODE_UNAVAILABLE; after that it keeps the labels last read and warns.
   */
  async stage(input: Config): Promise<StagedSelf> {
    const labels = await this.#labels(input);
    return this.#staged(input, resolveSelf(input, labels, this.#env));
  }

  /**
   * The Node's labels as a watch reported them: a staged configuration when they
   * move self (the running input re-resolved), else undefined.
   */
  restage(labels: SelfLabels): StagedSelf | undefined {
    const input = this.#input;
    const before = this.#resolved;
    if (!input || !before?.node || sameLabels(before.node.labels, labels)) return undefined;
    return this.#staged(input, resolveSelf(input, labels, this.#env));
  }

  /** The listener that hears this replica's Node in its member's watch. */
  nodeListener(onLabels: (labels: SelfLabels) => void): NodeListener {
    return (cluster, name, record) => {
      const node = this.#resolved?.node;
      if (!node || node.cluster !== cluster || node.name !== name) return;
      if (!record) {
        this.#log.warn(
          { node: name, cluster },
          `self: Node "${name}" was deleted in cluster ${cluster}; keeping the last known locality (${describeSelf(this.#resolved ?? { locality: {}, from: {} })})`,
        );
        return;
      }
      const { region, zone, subzone } = record;
      const labels: { region?: string; zone?: string; subzone?: string } = {};
      if (region !== undefined) labels.region = region;
      if (zone !== undefined) labels.zone = zone;
      if (subzone !== undefined) labels.subzone = subzone;
      if (!sameLabels(node.labels, labels)) onLabels(labels);
    };
  }

  #staged(input: Config, resolved: ResolvedSelf): StagedSelf {
    return {
      config: withSelf(input, resolved),
      resolved,
      commit: () => {
        const changed =
          this.#resolved === undefined || describeSelf(this.#resolved) !== describeSelf(resolved);
        this.#input = input;
        this.#resolved = resolved;
        if (changed)
          this.#log.info(
            { self: resolved.locality, from: resolved.from },
            `self: ${describeSelf(resolved)}`,
          );
      },
    };
  }

  async #labels(input: Config): Promise<SelfLabels | undefined> {
    const name = input.self.node;
    if (name === undefined) return undefined;
    const member = selfCluster(input);
    // The loader has checked self.cluster; without a member there is no API to ask.
    if (!member) return undefined;
    const src: SelfNodeSource = {
      cluster: member.name,
      kubeconfig: member.kubeconfig,
      context: member.context,
      node: name,
    };
    try {
      return await this.#readNode(src, input.watch.listTimeout);
    } catch (e) {
      const last = this.#resolved?.node;
      if (!last) throw e;
      this.#log.warn(
        { err: (e as Error).message, node: name, cluster: member.name },
        `self: cannot read Node "${name}" in cluster ${member.name}; keeping its last known labels`,
      );
      return last.labels;
    }
  }
}

function sameLabels(a: SelfLabels, b: SelfLabels): boolean {
  return a.region === b.region && a.zone === b.zone && a.subzone === b.subzone;
}
