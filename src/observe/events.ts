// What fedgate decided lately, for people: cluster state changes, failovers between
// tiers, ejections and returns, and (in the demo) the failures a user injected. A
// bounded ring, newest last; the status page and /debug read it, and listeners
// (the page's live stream) hear each event as it is recorded. Logs carry the same
// events as lines; this is the part a browser can ask for.

export type EventKind = 'cluster' | 'failover' | 'ejection' | 'return' | 'action' | 'reload';

export interface FedgateEvent {
  /** Rises by one per event: lets a reader ask for what it has not seen. */
  readonly seq: number;
  /** Epoch ms. */
  readonly at: number;
  readonly kind: EventKind;
  /** One sentence, e.g. "shop/web for us-east/us-east-a failed over from zone to region". */
  readonly message: string;
  readonly service?: string | undefined;
  readonly cluster?: string | undefined;
  /** Kind-specific fields (tiers, reasons, states), JSON-safe. */
  readonly detail?: Readonly<Record<string, string | number | boolean | null>> | undefined;
}

export type EventInput = Omit<FedgateEvent, 'seq' | 'at'>;

export const DEFAULT_JOURNAL_SIZE = 200;

export class EventJournal {
  readonly #size: number;
  readonly #now: () => number;
  readonly #events: FedgateEvent[] = [];
  readonly #listeners = new Set<(e: FedgateEvent) => void>();
  #seq = 0;

  constructor(opts: { size?: number; now?: () => number } = {}) {
    this.#size = Math.max(1, opts.size ?? DEFAULT_JOURNAL_SIZE);
    this.#now = opts.now ?? Date.now;
  }

  record(input: EventInput): FedgateEvent {
    const event: FedgateEvent = { seq: ++this.#seq, at: this.#now(), ...input };
    this.#events.push(event);
    if (this.#events.length > this.#size) this.#events.shift();
    for (const fn of this.#listeners) fn(event);
    return event;
  }

  /** Events newer than `afterSeq` (all kept ones by default), oldest first; at most `limit`, the newest. */
  recent(
    opts: { afterSeq?: number; limit?: number; kinds?: readonly EventKind[] } = {},
  ): FedgateEvent[] {
    let out = this.#events.filter(
      (e) => e.seq > (opts.afterSeq ?? 0) && (!opts.kinds || opts.kinds.includes(e.kind)),
    );
    if (opts.limit !== undefined && out.length > opts.limit) out = out.slice(-opts.limit);
    return out;
  }

  get lastSeq(): number {
    return this.#seq;
  }

  /** Hears every event from now on; returns the unsubscribe. */
  subscribe(fn: (e: FedgateEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
}
