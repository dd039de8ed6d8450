// What one probe is sent with, by check type: an undici agent for HTTP (keep-alive
// off), one more per backend TLS profile, and one gRPC client per target for gRPC
// checks; a TCP check opens its own socket. Kept apart from the checker's
// scheduling (active.ts): a reload replaces what its settings changed, and probes
// in flight finish on what they started with.
import { Agent, type buildConnector } from 'undici';
import { GrpcHealthClients } from './grpc-probe.ts';
import { httpProbe, type ProbeTls, tcpProbe } from './probes.ts';
import type { ActiveCheckConfig, ProbeTarget } from './targets.ts';

export class Probers {
  /** type grpc: one client per target, closed when it leaves. */
  readonly #grpc = new GrpcHealthClients();
  // Keep-alive off (each request says reset): probes open one connection each and
  // close it, so thousands of targets never hold idle sockets.
  #agent: Agent;
  /** Over TLS, one agent per profile key (keep-alive off too). */
  #tlsAgents = new Map<string, Agent>();
  #timeout: number;

  constructor(timeoutMs: number) {
    this.#timeout = timeoutMs;
    this.#agent = new Agent({ connect: { timeout: timeoutMs } });
  }

  /** undefined when the target passes `check`, else why not; throws when it could not be reached. */
  probe(
    check: ActiveCheckConfig,
    t: ProbeTarget,
    tls: ProbeTls | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    if (check.type === 'http') {
      return httpProbe(tls ? this.#tlsAgent(tls) : this.#agent, t, check, signal, tls);
    }
    if (check.type === 'grpc') {
      return this.#grpc.check(t, check.grpcService, check.timeout, signal, tls?.options);
    }
    return tcpProbe(t, signal, tls);
  }

  /**
   * A reload: new TLS profiles or connect timeout replace the agents, a new kind of
   * check the gRPC clients (made again at the next probe). Probes in flight finish
   * on what they started with.
   */
  reconfigure(timeoutMs: number, tlsChanged: boolean, checksChanged: boolean): void {
    if (tlsChanged || timeoutMs !== this.#timeout) {
      for (const a of this.#tlsAgents.values()) void a.close().catch(() => {});
      this.#tlsAgents = new Map();
    }
    if (checksChanged) this.#grpc.closeAll();
    if (timeoutMs !== this.#timeout) {
      const old = this.#agent;
      this.#agent = new Agent({ connect: { timeout: timeoutMs } });
      void old.close().catch(() => {});
    }
    this.#timeout = timeoutMs;
  }

  /** A target left: its gRPC client closes. */
  forget(t: ProbeTarget): void {
    this.#grpc.close(t);
  }

  /** gRPC clients open now (one per target checked by gRPC). */
  get grpcClients(): number {
    return this.#grpc.size;
  }

  async stop(): Promise<void> {
    this.#grpc.closeAll();
    await this.#agent.destroy().catch(() => {});
    for (const a of this.#tlsAgents.values()) await a.destroy().catch(() => {});
  }

  /** The agent that probes over TLS with `tls`'s options. */
  #tlsAgent(tls: ProbeTls): Agent {
    let a = this.#tlsAgents.get(tls.key);
    if (!a) {
      const connect = { ...tls.options, timeout: this.#timeout };
      a = new Agent({ connect: connect as buildConnector.BuildOptions });
      this.#tlsAgents.set(tls.key, a);
    }
    return a;
  }
}
