// The Gateway API routes in force. Whenever the config clusters' objects change, or
// the federated services they may name (a backendRef resolves only to a service
// that exists, with the port it names), or a reload changes the listener mapping,
// the routes are compiled again (gateway/compile.ts, with the cache the feed keeps:
// a route's edit compiles that route): the tables go to serving (every worker's
// proxy) when they changed, the status report to the elected writer.
import type { Snapshot } from './catalog/model.ts';
import { gatewayListenerMappings } from './config/gateway-api.ts';
import type { Config } from './config/schema.ts';
import type { RouteTables } from './gateway/attached.ts';
import { compileGateways, newCompileCache } from './gateway/compile.ts';
import type {
  FederatedServiceLookup,
  FederatedServicePorts,
  GatewayAddress,
} from './gateway/inputs.ts';
import type { StatusReport } from './gateway/status.ts';
import { sameTables } from './gateway/tables.ts';
import type { Logger } from './observe/log.ts';
import type { GatewayObjects } from './watch/gateway-records.ts';

export interface GatewayFeedDeps {
  readonly gateway: {
    current(): { readonly objects: GatewayObjects; readonly version: number };
    subscribe(fn: (objects: GatewayObjects, version: number) => void): () => void;
  };
  readonly catalog: {
    current(): Snapshot;
    subscribe(fn: (snap: Snapshot) => void): () => void;
  };
  readonly serving: { setRoutes(tables: RouteTables): void };
  /** The status report's reader: the current write-back, when one runs. */
  readonly status: (report: StatusReport) => void;
  readonly log: Logger;
}

export class GatewayFeed {
  readonly #deps: GatewayFeedDeps;
  #config: Config;
  #objects: GatewayObjects;
  #services: Snapshot;
  /** The services and ports the last compilation saw: endpoint churn alone compiles nothing. */
  #servicesShape = '';
  /** Backend lookups: the same function while the services' shape holds (the cache keys on it). */
  #lookup: FederatedServiceLookup = () => undefined;
  /** What the last compilation keeps for the next: a change to one route recompiles about one. */
  readonly #cache = newCompileCache();
  /** Tables have been handed on (the first ones are, even when empty). */
  #handed = false;
  #report: StatusReport | undefined;
  #tables: RouteTables = { listeners: [] };
  readonly #stops: (() => void)[] = [];

  constructor(deps: GatewayFeedDeps, config: Config) {
    this.#deps = deps;
    this.#config = config;
    this.#objects = deps.gateway.current().objects;
    this.#services = deps.catalog.current();
  }

  /** Compiles what there is now, then again on every change. */
  start(): void {
    this.#stops.push(
      this.#deps.gateway.subscribe((objects) => {
        this.#objects = objects;
        this.#compile();
      }),
      this.#deps.catalog.subscribe((snap) => {
        this.#services = snap;
        if (servicesShape(snap) !== this.#servicesShape) this.#compile();
      }),
    );
    this.#compile();
  }

  stop(): void {
    for (const stop of this.#stops.splice(0)) stop();
  }

  /** A reload committed: the listener mapping or the addresses may have changed. */
  reconfigure(next: Config): void {
    this.#config = next;
    this.#compile();
  }

  /** The last status report (for a write-back that starts after it was made). */
  get report(): StatusReport | undefined {
    return this.#report;
  }

  /** The tables in force. */
  get tables(): RouteTables {
    return this.#tables;
  }

  #compile(): void {
    const snap = this.#services;
    const shape = servicesShape(snap);
    if (shape !== this.#servicesShape || !this.#handed) {
      this.#servicesShape = shape;
      this.#lookup = portsLookup(snap);
    }
    let compiled: ReturnType<typeof compileGateways>;
    try {
      compiled = compileGateways(
        {
          objects: this.#objects,
          services: this.#lookup,
          listeners: gatewayListenerMappings(this.#config),
          addresses: edgeAddresses(this.#config),
        },
        this.#cache,
      );
    } catch (e) {
      // A bug, not bad input (compilation reports bad objects in their status): the
      // routes in force stay.
      this.#deps.log.error({ err: e }, 'Gateway API: compiling the routes failed');
      return;
    }
    this.#report = compiled.status;
    if (!this.#handed || !sameTables(compiled.tables, this.#tables)) {
      // No routes at start (the Gateway API off, or nothing attached yet): nothing to say.
      const quiet = !this.#handed && compiled.tables.listeners.length === 0;
      this.#handed = true;
      this.#tables = compiled.tables;
      this.#deps.serving.setRoutes(compiled.tables);
      const rules = compiled.tables.listeners.reduce(
        (n, l) => n + l.hosts.reduce((m, h) => m + h.rules.length, 0),
        0,
      );
      if (!quiet) {
        this.#deps.log.info(
          { listeners: compiled.tables.listeners.length, rules },
          'Gateway API routes in force',
        );
      }
    }
    this.#deps.status(compiled.status);
  }
}

/** backendRefs' lookup over the services' ports as they are in `snap`. */
function portsLookup(snap: Snapshot): FederatedServiceLookup {
  const ports = new Map<string, FederatedServicePorts>();
  for (const [key, svc] of snap.services) {
    ports.set(key, { ports: svc.ports.map((p) => ({ name: p.name, port: p.port })) });
  }
  return (namespace, name) => ports.get(`${namespace}/${name}`);
}

/** Which services exist with which ports: what backendRefs resolve against. */
function servicesShape(snap: Snapshot): string {
  const parts: string[] = [];
  for (const [key, svc] of snap.services) {
    parts.push(`${key}=${svc.ports.map((p) => `${p.name}:${p.port}`).join(',')}`);
  }
  return parts.join(' ');
}

/**
 * The addresses a Gateway's status lists for fedgate: its edge addresses for proxy
 * addressing (dns.proxyAddresses), else the hosts its HTTP listeners bind that are
 * not wildcards.
 */
function edgeAddresses(config: Config): GatewayAddress[] {
  const out = new Set<string>();
  for (const p of config.dns.proxyAddresses) for (const a of p.addresses) out.add(a);
  if (out.size === 0) {
    const listens = [...config.http.listen, ...(config.http.tls?.listen ?? [])];
    for (const l of listens) {
      if (l.host !== '0.0.0.0' && l.host !== '::') out.add(l.host);
    }
  }
  return [...out].map((value) => ({ type: 'IPAddress', value }));
}
