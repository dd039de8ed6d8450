// The one place probes start: a queue ordered by due time, a front lane for
// expedited checks, a cap on probes in flight and a cap on starts per second. Each
// probe holds one socket while in flight, so the in-flight cap bounds the sockets
// health checking can hold whatever the number of targets.

export interface QueueLimits {
  /** Probes running at once; each holds one socket. */
  readonly maxInFlight: number;
  /** Probe starts per second, as a token bucket holding up to 50 ms of starts. */
  readonly maxPerSecond: number;
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const REAL_TIMERS: Timers = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    // The checker never keeps the process alive by itself.
    t.unref();
    return t;
  },
  clear: (t) => clearTimeout(t as NodeJS.Timeout),
};

export interface ProbeQueueOptions<T> {
  limits: QueueLimits;
  /** Runs one probe; the queue holds its slot until the promise settles. */
  run: (item: T) => Promise<void>;
  now?: () => number;
  timers?: Timers;
}

interface Entry<T> {
  readonly at: number;
  readonly seq: number;
  readonly item: T;
}

/** How much the mean probe time follows each new duration. */
const DURATION_WEIGHT = 0.02;
/** The bucket holds this much time's worth of starts, so a timer tick starts several. */
const BURST_MS = 50;

export class ProbeQueue<T> {
  #limits: QueueLimits;
  readonly #run: (item: T) => Promise<void>;
  readonly #now: () => number;
  readonly #timers: Timers;
  /** Min-heap by due time. Entries of cancelled or rescheduled items stay until popped. */
  readonly #heap: Entry<T>[] = [];
  /** Expedited items, first come first served, ahead of every due one. */
  #front: Entry<T>[] = [];
  /** The live entry's seq of each queued item; an entry with another seq is stale. */
  readonly #queued = new Map<T, number>();
  #seq = 0;
  #inFlight = 0;
  #tokens: number;
  #refilledAt: number;
  #timer: unknown;
  #timerAt = Number.POSITIVE_INFINITY;
  #meanMs: number | undefined;
  /** No starts before this time (the clock's): see exhausted(). */
  #pausedUntil = 0;
  /**
   * Probes allowed in flight now: maxInFlight, halved when the process runs out of
   * descriptors and raised by one per probe that finishes after (TCP's congestion
   * window, for sockets the process can have rather than the network can carry).
   */
  #ceiling: number;
  #stopped = false;

  constructor(opts: ProbeQueueOptions<T>) {
    this.#limits = opts.limits;
    this.#run = opts.run;
    this.#now = opts.now ?? Date.now;
    this.#timers = opts.timers ?? REAL_TIMERS;
    this.#tokens = this.#burst();
    this.#refilledAt = this.#now();
    this.#ceiling = opts.limits.maxInFlight;
  }

  /** Queues the item to start at `at` (ms, the clock's time), replacing any earlier place. */
  schedule(item: T, at: number): void {
    if (this.#stopped) return;
    const entry = { at, seq: ++this.#seq, item };
    this.#queued.set(item, entry.seq);
    heapPush(this.#heap, entry);
    this.#pump();
  }

  /** Queues the item ahead of every due one; it still waits for a slot and a token. */
  expedite(item: T): void {
    if (this.#stopped) return;
    const entry = { at: this.#now(), seq: ++this.#seq, item };
    this.#queued.set(item, entry.seq);
    this.#front.push(entry);
    this.#pump();
  }

  /** Takes the item out of the queue; a probe of it already running finishes. */
  cancel(item: T): void {
    this.#queued.delete(item);
  }

  isQueued(item: T): boolean {
    return this.#queued.has(item);
  }

  /**
   * A probe found the process out of descriptors. Starts nothing for `pauseMs` (each
   * would fail the same way, and take what the proxy frees), and halves the probes
   * allowed in flight to what got a socket, once per pause however many failed at
   * once; they grow back by one per probe that finishes.
   */
  exhausted(pauseMs: number): void {
    const now = this.#now();
    if (now >= this.#pausedUntil) {
      this.#ceiling = Math.max(1, Math.floor(Math.min(this.#ceiling, this.#inFlight) / 2));
    }
    this.#pausedUntil = Math.max(this.#pausedUntil, now + pauseMs);
    this.#pump();
  }

  setLimits(limits: QueueLimits): void {
    this.#limits = limits;
    this.#ceiling = Math.min(this.#ceiling, limits.maxInFlight);
    if (this.#pausedUntil <= this.#now()) this.#ceiling = limits.maxInFlight;
    this.#tokens = Math.min(this.#tokens, this.#burst());
    this.#pump();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Probes allowed in flight now: maxInFlight, or less after running out of descriptors. */
  get ceiling(): number {
    return this.#ceiling;
  }

  get queued(): number {
    return this.#queued.size;
  }

  /** The running mean of how long a probe holds its slot, ms; undefined before the first. */
  get meanProbeMs(): number | undefined {
    return this.#meanMs;
  }

  stop(): void {
    this.#stopped = true;
    this.#queued.clear();
    this.#heap.length = 0;
    this.#front = [];
    this.#clearTimer();
  }

  #burst(): number {
    return Math.max(1, (this.#limits.maxPerSecond * BURST_MS) / 1000);
  }

  #refill(now: number): void {
    const elapsed = now - this.#refilledAt;
    this.#refilledAt = now;
    if (elapsed > 0) {
      this.#tokens = Math.min(
        this.#burst(),
        this.#tokens + (elapsed * this.#limits.maxPerSecond) / 1000,
      );
    }
  }

  /** Starts what may start now, then sets one timer for the next thing that may. */
  #pump(): void {
    if (this.#stopped) return;
    const now = this.#now();
    this.#refill(now);
    while (this.#inFlight < this.#ceiling && now >= this.#pausedUntil) {
      const entry = this.#next(now);
      if (entry === undefined) break;
      if (this.#tokens < 1) break;
      this.#take(entry);
      this.#tokens -= 1;
      this.#start(entry.item);
    }
    this.#arm(now);
  }

  /** The live entry that may start now, dropping stale ones on the way; not removed. */
  #next(now: number): Entry<T> | undefined {
    for (let e = this.#front[0]; e !== undefined; e = this.#front[0]) {
      if (this.#queued.get(e.item) === e.seq) return e;
      this.#front.shift();
    }
    for (let e = this.#heap[0]; e !== undefined; e = this.#heap[0]) {
      if (this.#queued.get(e.item) !== e.seq) {
        heapPop(this.#heap);
        continue;
      }
      return e.at <= now ? e : undefined;
    }
    return undefined;
  }

  #take(entry: Entry<T>): void {
    if (this.#front[0] === entry) this.#front.shift();
    else heapPop(this.#heap);
    this.#queued.delete(entry.item);
  }

  #start(item: T): void {
    this.#inFlight++;
    const started = this.#now();
    let settled: Promise<void>;
    try {
      settled = this.#run(item);
    } catch (err) {
      settled = Promise.reject(err);
    }
    settled
      .catch(() => {})
      .finally(() => {
        this.#inFlight--;
        if (this.#now() >= this.#pausedUntil) {
          this.#ceiling = Math.min(this.#limits.maxInFlight, this.#ceiling + 1);
        }
        const ms = this.#now() - started;
        this.#meanMs =
          this.#meanMs === undefined ? ms : this.#meanMs + DURATION_WEIGHT * (ms - this.#meanMs);
        this.#pump();
      });
  }

  /** One timer: for the next token when work waits on the rate, else for the next due item. */
  #arm(now: number): void {
    let at = Number.POSITIVE_INFINITY;
    if (this.#inFlight < this.#ceiling) {
      const waiting = this.#front.length > 0 || this.#heap.length > 0;
      const ready = this.#next(now);
      if (ready !== undefined && now < this.#pausedUntil) {
        at = this.#pausedUntil;
      } else if (ready !== undefined && this.#tokens < 1) {
        at = now + Math.ceil(((1 - this.#tokens) * 1000) / this.#limits.maxPerSecond);
      } else if (ready === undefined && waiting) {
        at = this.#heap[0]?.at ?? at;
      }
    }
    // A slot freeing up pumps by itself; nothing to wait for otherwise.
    if (at === this.#timerAt) return;
    this.#clearTimer();
    if (at === Number.POSITIVE_INFINITY) return;
    this.#timerAt = at;
    this.#timer = this.#timers.set(
      () => {
        this.#timer = undefined;
        this.#timerAt = Number.POSITIVE_INFINITY;
        this.#pump();
      },
      Math.max(0, at - now),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }
}

// Both sift a hole rather than swapping pairs: entries move into the hole, and the
// moving entry is written once where the hole stops.
function heapPush<T>(heap: Entry<T>[], e: Entry<T>): void {
  let i = heap.length;
  heap.push(e);
  while (i > 0) {
    const up = (i - 1) >> 1;
    const parent = heap[up];
    if (parent === undefined || !before(e, parent)) break;
    heap[i] = parent;
    i = up;
  }
  heap[i] = e;
}

function heapPop<T>(heap: Entry<T>[]): void {
  const last = heap.pop();
  if (last === undefined || heap.length === 0) return;
  let i = 0;
  for (;;) {
    let c = 2 * i + 1;
    let child = heap[c];
    const right = heap[c + 1];
    if (child === undefined) break;
    if (right !== undefined && before(right, child)) {
      child = right;
      c++;
    }
    if (!before(child, last)) break;
    heap[i] = child;
    i = c;
  }
  heap[i] = last;
}

/** Earlier due first; equal times in the order they were queued. */
function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
