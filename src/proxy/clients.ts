// Each client's share of a service's request slots. A client is its netblock (the
// socket's peer address, an IPv4 /24 or IPv6 /56 by default; never X-Forwarded-For,
// which the client writes), and it may hold at most clientShare of the service's
// slots (endpoints that can take traffic × maxRequestsPerEndpoint), never fewer
// than clientShareFloor, counting its requests in flight and those waiting in the
// pending queue alike. Past that it is answered 429 CLIENT_OVER_SHARE at once: one
// client can neither take every slot nor fill the queue others would wait in.
import { Netblocks } from '../netblock.ts';
import type { Plan } from '../routing/types.ts';

export interface ClientShareSettings {
  /** 0..1; 0 turns the cap off. */
  readonly share: number;
  readonly floor: number;
  /** http.limits.maxRequestsPerEndpoint: a service's slots are this per endpoint. */
  readonly perEndpoint: number;
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
}

/**
 * One request's place in its client's share. Held by the exchange until it is over
 * and by each of its tries until the try lets go of its endpoint slot (a tunnel's
 * slot outlives its request), so the place goes when the last holder drops it.
 */
export class ClientPlace {
  readonly client: string;
  readonly #shares: ClientShares;
  readonly #key: string;
  #holders = 1;

  constructor(shares: ClientShares, key: string, client: string) {
    this.#shares = shares;
    this.#key = key;
    this.client = client;
  }

  hold(): void {
    this.#holders++;
  }

  drop(): void {
    if (this.#holders > 0 && --this.#holders === 0) this.#shares.free(this.#key);
  }
}

export class ClientShares {
  #settings: ClientShareSettings;
  #netblocks: Netblocks;
  /** Places held by `service \n client`; a key leaves at zero, so this stays as small as the traffic. */
  readonly #held = new Map<string, number>();
  /** Endpoints that can take traffic, per plan (plans are cached and immutable). */
  readonly #endpoints = new WeakMap<Plan, number>();

  constructor(settings: ClientShareSettings) {
    this.#settings = settings;
    this.#netblocks = new Netblocks(settings.ipv4Prefix, settings.ipv6Prefix);
  }

  /** A reload: new share and prefixes; places already held keep their keys. */
  reconfigure(settings: ClientShareSettings): void {
    this.#settings = settings;
    this.#netblocks = new Netblocks(settings.ipv4Prefix, settings.ipv6Prefix);
  }

  /** The client (netblock) an address belongs to. */
  clientOf(address: string): string {
    return this.#netblocks.key(address);
  }

  /** Most places one client may hold in a service planned as `plan`; Infinity when off. */
  cap(plan: Plan): number {
    const { share, floor, perEndpoint } = this.#settings;
    if (share <= 0) return Number.POSITIVE_INFINITY;
    return Math.max(floor, Math.floor(share * this.#endpointCount(plan) * perEndpoint));
  }

  /** A place for a request of `address` to `service`, or undefined: the client holds its share. */
  admit(service: string, address: string, plan: Plan): ClientPlace | undefined {
    const client = this.clientOf(address);
    const key = `${service}\n${client}`;
    const held = this.#held.get(key) ?? 0;
    if (held >= this.cap(plan)) return undefined;
    this.#held.set(key, held + 1);
    return new ClientPlace(this, key, client);
  }

  /** Places `address`'s client holds in `service` now. */
  held(service: string, address: string): number {
    return this.#held.get(`${service}\n${this.clientOf(address)}`) ?? 0;
  }

  /** Called by the last holder of a place. */
  free(key: string): void {
    const n = (this.#held.get(key) ?? 0) - 1;
    if (n > 0) this.#held.set(key, n);
    else this.#held.delete(key);
  }

  #endpointCount(plan: Plan): number {
    let n = this.#endpoints.get(plan);
    if (n === undefined) {
      const ids = new Set<string>();
      for (const tier of plan.tiers) for (const t of tier.targets) ids.add(t.id);
      n = ids.size;
      this.#endpoints.set(plan, n);
    }
    return n;
  }
}
