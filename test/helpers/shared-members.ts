// Member clusters shared by the tests of one file. A real control plane costs seconds
// and a core to start, so a file starts each named member once and lends it to every
// test; what a test wrote is removed when it gives the member back (one object at a
// time: without a namespace controller a deleted namespace never goes, so namespaces
// stay), and any fault it left is lifted. Simulated members cost nothing: every test
// gets fresh ones, so simulator-only tests may reach into a pristine store.
import type { ApiKind, FaultMode, MemberCluster } from '../../src/localfed/member.ts';
import type { KubeObject } from '../../src/localfed/objects.ts';

/** Options a test may ask of a member; one that differs from the shared member's gets its own. */
export interface MemberOptions {
  /** False: a cluster without the MCS ServiceExport CRD. Default true. */
  serviceExportCRD?: boolean;
  /** Simulator only: how often open watches get a BOOKMARK. */
  bookmarkIntervalMs?: number;
}

export type StartMember = (
  api: ApiKind,
  name: string,
  opts: MemberOptions,
) => Promise<MemberCluster>;

interface Written {
  apiVersion: string;
  kind: string;
  namespace: string | undefined;
  name: string;
}

/** A member that remembers what was written through it, so it can be removed again. */
export class TrackedMember implements MemberCluster {
  readonly inner: MemberCluster;
  readonly #written = new Map<string, Written>();

  constructor(inner: MemberCluster) {
    this.inner = inner;
  }

  get name(): string {
    return this.inner.name;
  }
  get api(): ApiKind {
    return this.inner.api;
  }
  get url(): string {
    return this.inner.url;
  }
  get token(): string {
    return this.inner.token;
  }
  get caCert(): string {
    return this.inner.caCert;
  }
  get fault(): FaultMode {
    return this.inner.fault;
  }

  start(): Promise<void> {
    return this.inner.start();
  }
  stop(): Promise<void> {
    return this.inner.stop();
  }
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string) {
    return this.inner.get(apiVersion, kind, namespace, name);
  }
  list(apiVersion: string, kind: string, namespace?: string) {
    return this.inner.list(apiVersion, kind, namespace);
  }
  apply(obj: KubeObject): Promise<KubeObject> {
    const w = {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      namespace: obj.metadata.namespace,
      name: obj.metadata.name,
    };
    this.#written.set(JSON.stringify(w), w);
    return this.inner.apply(obj);
  }
  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string) {
    return this.inner.remove(apiVersion, kind, namespace, name);
  }
  revision(): Promise<string> {
    return this.inner.revision();
  }
  setFault(mode: FaultMode): Promise<void> {
    return this.inner.setFault(mode);
  }
  compact(): Promise<string> {
    return this.inner.compact();
  }
  kubeconfig(): string {
    return this.inner.kubeconfig();
  }
  writeKubeconfig(dir: string): Promise<string> {
    return this.inner.writeKubeconfig(dir);
  }

  /** Lifts any fault and removes, newest first, everything written but namespaces. */
  async reset(): Promise<void> {
    if (this.inner.fault !== 'up') await this.inner.setFault('up');
    const written = [...this.#written.values()].reverse();
    this.#written.clear();
    for (const w of written) {
      if (w.kind === 'Namespace') continue;
      await this.inner.remove(w.apiVersion, w.kind, w.namespace, w.name);
    }
  }
}

/**
 * One file's members: `take` lends a started member, `giveBack` resets a shared one
 * (or stops one of a test's own), `stopAll` (afterAll) stops the shared ones.
 */
export class MemberPool {
  readonly #start: StartMember;
  readonly #shared = new Map<string, Promise<TrackedMember>>();

  constructor(start: StartMember) {
    this.#start = start;
  }

  /**
   * A real member is shared under its name unless it is to lack the ServiceExport CRD
   * (a test installs it); a simulated one is always the test's own (`bookmarkIntervalMs`
   * is the simulator's alone: a real server's interval is its own).
   */
  async take(
    api: ApiKind,
    name: string,
    opts: MemberOptions = {},
  ): Promise<{ member: MemberCluster; shared: boolean }> {
    const own = api === 'sim' || opts.serviceExportCRD === false;
    if (own) return { member: await this.#start(api, name, opts), shared: false };
    let m = this.#shared.get(name);
    if (!m) {
      m = this.#start(api, name, {}).then((inner) => new TrackedMember(inner));
      this.#shared.set(name, m);
      // A failed start is not kept: the next test tries again and fails on its own.
      m.catch(() => this.#shared.delete(name));
    }
    return { member: await m, shared: true };
  }

  async giveBack(member: MemberCluster, shared: boolean): Promise<void> {
    if (shared && member instanceof TrackedMember) await member.reset();
    else await member.stop();
  }

  async stopAll(): Promise<void> {
    const all = [...this.#shared.values()];
    this.#shared.clear();
    for (const m of await Promise.allSettled(all)) {
      if (m.status === 'fulfilled') await m.value.stop();
    }
  }
}
