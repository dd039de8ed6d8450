// The simulator as a MemberCluster: SimCluster's in-process calls behind the async
// interface localfed and the tests share with real API servers. `sim` stays reachable
// for what only a simulator can do (write a creation time, count open watches).
import type { SimCluster } from './cluster.ts';
import type { FaultMode, MemberCluster } from './member.ts';
import type { KubeObject } from './objects.ts';
import { Registry } from './registry.ts';
import { servedAs, typeOfKind } from './resources.ts';

export class SimMember implements MemberCluster {
  readonly api = 'sim';
  readonly sim: SimCluster;

  constructor(sim: SimCluster) {
    this.sim = sim;
  }

  get name(): string {
    return this.sim.name;
  }
  get url(): string {
    return this.sim.url;
  }
  get token(): string {
    return this.sim.token;
  }
  get caCert(): string {
    return this.sim.caCert;
  }
  get fault(): FaultMode {
    return this.sim.api.mode;
  }

  start(): Promise<void> {
    return this.sim.start();
  }
  stop(): Promise<void> {
    return this.sim.stop();
  }

  async get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<KubeObject | undefined> {
    return this.sim.get(apiVersion, kind, namespace, name);
  }

  async list(apiVersion: string, kind: string, namespace?: string): Promise<KubeObject[]> {
    const t = typeOfKind(apiVersion, kind);
    if (!t) throw new Error(`localfed does not serve ${kind} in ${apiVersion}`);
    return this.sim.store.list(Registry.keyOf(t), namespace).map((o) => servedAs(t, o));
  }

  async apply(obj: KubeObject): Promise<KubeObject> {
    return this.sim.apply(obj);
  }

  async remove(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<boolean> {
    return this.sim.remove(apiVersion, kind, namespace, name);
  }

  async revision(): Promise<string> {
    return String(this.sim.store.revision);
  }

  setFault(mode: FaultMode): Promise<void> {
    return this.sim.setFault(mode);
  }

  async compact(): Promise<string> {
    this.sim.compact();
    return `history of ${this.name} compacted at revision ${this.sim.store.revision}: watches from older revisions get 410 Expired`;
  }

  kubeconfig(): string {
    return this.sim.kubeconfig();
  }

  writeKubeconfig(dir: string): Promise<string> {
    return this.sim.writeKubeconfig(dir);
  }
}

/** The simulator behind a member, for what only a simulator can do; throws on a real one. */
export function simOf(member: MemberCluster): SimCluster {
  if (member instanceof SimMember) return member.sim;
  throw new Error(`member ${member.name} runs a ${member.api} API server, not the simulator`);
}
