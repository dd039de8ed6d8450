// A service's pending queue (requests waiting for an endpoint slot), fair between
// clients: a freed slot goes to the clients in turn, not to whoever queued most, so
// one client's queued requests never stand in front of everyone else's. When the
// queue is full, a newcomer from a client with fewer waiting takes the place of the
// newest waiter of the client with the most, who is refused at once.

export interface Waiter {
  /** The client's netblock (clients.ts). */
  readonly client: string;
  /** true: a slot is free, try again; false: refused (queue full, timeout, cancelled). */
  settle(ok: boolean): void;
}

export class PendingQueue {
  /** By client, in turn order: the first key is served next, then goes to the back. */
  readonly #byClient = new Map<string, Waiter[]>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Queues `w`; false when the queue is full and no other client has more waiting than `w`'s would. */
  push(w: Waiter, max: number): boolean {
    if (this.#size >= max && !this.#evictForNewcomer(w.client)) return false;
    const list = this.#byClient.get(w.client);
    if (list) list.push(w);
    else this.#byClient.set(w.client, [w]);
    this.#size++;
    return true;
  }

  /** The next waiter, taking the clients in turn. */
  shift(): Waiter | undefined {
    const first = this.#byClient.entries().next();
    if (first.done) return undefined;
    const [client, list] = first.value;
    const w = list.shift();
    this.#byClient.delete(client);
    if (list.length > 0) this.#byClient.set(client, list);
    if (w) this.#size--;
    return w;
  }

  /** Takes `w` out (it gave up); nothing when it is no longer queued. */
  remove(w: Waiter): void {
    const list = this.#byClient.get(w.client);
    const at = list?.indexOf(w) ?? -1;
    if (!list || at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.#byClient.delete(w.client);
    this.#size--;
  }

  /** Every waiter, for closing. */
  all(): Waiter[] {
    return [...this.#byClient.values()].flat();
  }

  #evictForNewcomer(client: string): boolean {
    let fattest: [string, Waiter[]] | undefined;
    for (const entry of this.#byClient) {
      if (!fattest || entry[1].length > fattest[1].length) fattest = entry;
    }
    const own = this.#byClient.get(client)?.length ?? 0;
    if (!fattest || fattest[0] === client || fattest[1].length <= own + 1) return false;
    const evicted = fattest[1].pop();
    if (fattest[1].length === 0) this.#byClient.delete(fattest[0]);
    this.#size--;
    evicted?.settle(false);
    return true;
  }
}
