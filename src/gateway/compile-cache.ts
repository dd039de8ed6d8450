// What one compilation keeps for the next, so a change to one route costs about one
// route. Everything a route's compiled rules, attachments and status depend on
// besides the route itself is the shared context: the GatewayClasses, Gateways,
// ReferenceGrants, Namespaces and TLS Secrets (each record the same object: the
// watch store hands an unchanged record on as the same object), the services
// lookup (the same function: its owner makes a new one when the services' shape
// changes), the listener mappings and the addresses (equal). While the context
// holds, a route record seen before gives what it gave then; when any of it
// changes, every route is compiled again. Pure: no clock, no I/O, only memory.
import type { GatewayObjects } from '../watch/gateway-records.ts';
import type { AttachedRule, HostRules } from './attached.ts';
import type { CompileInput } from './inputs.ts';

/** The parts of the input the shared context is made of, as they were last time. */
interface ContextKey {
  readonly lists: readonly (readonly object[])[];
  readonly services: CompileInput['services'];
  readonly mappings: string;
}

const contextLists = (o: GatewayObjects): readonly (readonly object[])[] => [
  o.gatewayClasses,
  o.gateways,
  o.referenceGrants,
  o.namespaces,
  o.secrets,
];

function keyOfInput(input: CompileInput): ContextKey {
  return {
    lists: contextLists(input.objects),
    services: input.services,
    mappings: JSON.stringify([input.listeners, input.addresses]),
  };
}

function sameKey(a: ContextKey, b: ContextKey): boolean {
  return (
    a.services === b.services &&
    a.mappings === b.mappings &&
    a.lists.length === b.lists.length &&
    a.lists.every((list, i) => sameElements(list, b.lists[i] ?? []))
  );
}

function sameElements(a: readonly object[], b: readonly object[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A host's table entry, and the routes' rule lists it was made of, in the order they came. */
interface HostEntry {
  readonly from: readonly (readonly AttachedRule[])[];
  readonly host: HostRules;
}

/**
 * Held by whoever compiles again and again (GatewayFeed, through GatewayCompiler);
 * compileGateways without one compiles everything. `S` is the shared context,
 * `R` what a route gives.
 */
export class CompileCache<S, R> {
  #key: ContextKey | undefined;
  #shared: S | undefined;
  #routes = new WeakMap<object, R>();
  #hosts = new Map<string, HostEntry>();
  #nextHosts = new Map<string, HostEntry>();

  /** The shared context: last time's when its inputs are the same, else `make()`'s. */
  shared(input: CompileInput, make: () => S): S {
    this.#nextHosts = new Map();
    const key = keyOfInput(input);
    if (this.#key !== undefined && this.#shared !== undefined && sameKey(this.#key, key)) {
      return this.#shared;
    }
    this.#key = key;
    this.#shared = make();
    this.#routes = new WeakMap();
    return this.#shared;
  }

  /** What a route record gives under the current shared context. */
  route(record: object, make: () => R): R {
    let r = this.#routes.get(record);
    if (r === undefined) {
      r = make();
      this.#routes.set(record, r);
    }
    return r;
  }

  /**
   * A host's rules: last time's object when the same rule lists (same objects, same
   * order) make it, else `make()`'s. Hosts not asked for between two `hostsDone`
   * calls are forgotten.
   */
  host(key: string, from: readonly (readonly AttachedRule[])[], make: () => HostRules): HostRules {
    const before = this.#hosts.get(key);
    const host = before !== undefined && sameElements(before.from, from) ? before.host : make();
    this.#nextHosts.set(key, { from, host });
    return host;
  }

  /** The tables are built: the hosts asked for this time are the ones kept. */
  hostsDone(): void {
    this.#hosts = this.#nextHosts;
    this.#nextHosts = new Map();
  }
}
