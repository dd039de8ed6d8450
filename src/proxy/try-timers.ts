// Per-try timers, many tries to one Node timer. Every try arms one and nearly every
// try clears it again (the answer comes in time), and a Node Timeout per try (an
// object with its async id, a list insert, a clear) cost more than the rest of the
// try's bookkeeping. Tries with the same timeout expire in the order they were
// armed, so they wait in one linked list per timeout length, and one Node timer is
// set for the oldest: arming and clearing are a link and an unlink. A try expires
// no earlier than its own timeout after it was armed, as with its own setTimeout.

/** What expires: told once, when its time is up and it was not cleared first. */
export interface Expiring {
  expired(): void;
}

/** One armed timer; clear it with clearTryTimer. */
export interface TryTimer {
  readonly deadline: number;
  readonly owner: Expiring;
  prev: TryTimer | undefined;
  next: TryTimer | undefined;
  /** The list it waits in; undefined once cleared or expired. */
  list: TimerList | undefined;
}

class TimerList {
  readonly #ms: number;
  #head: TryTimer | undefined;
  #tail: TryTimer | undefined;
  /** Set for the oldest timer's deadline (or earlier) while any waits. */
  #timer: NodeJS.Timeout | undefined;
  #firing = false;

  constructor(ms: number) {
    this.#ms = ms;
  }

  add(owner: Expiring): TryTimer {
    const t: TryTimer = {
      deadline: performance.now() + this.#ms,
      owner,
      prev: this.#tail,
      next: undefined,
      list: this,
    };
    if (this.#tail) this.#tail.next = t;
    else this.#head = t;
    this.#tail = t;
    // While firing, the loop below sets the timer for whichever is oldest when it ends.
    if (this.#timer === undefined && !this.#firing) this.#timer = setTimeout(this.#fire, this.#ms);
    return t;
  }

  remove(t: TryTimer): void {
    this.#unlink(t);
    // Nothing waits: no timer left to keep the process up.
    if (this.#head === undefined && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #unlink(t: TryTimer): void {
    t.list = undefined;
    if (t.prev) t.prev.next = t.next;
    else this.#head = t.next;
    if (t.next) t.next.prev = t.prev;
    else this.#tail = t.prev;
    t.prev = undefined;
    t.next = undefined;
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#firing = true;
    const now = performance.now();
    try {
      // An expiring try may retry at once and arm anew: it goes to the tail.
      for (let t = this.#head; t !== undefined && t.deadline <= now; t = this.#head) {
        this.#unlink(t);
        t.owner.expired();
      }
    } finally {
      this.#firing = false;
      const head = this.#head;
      if (head !== undefined && this.#timer === undefined) {
        this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(head.deadline - now)));
      }
    }
  };
}

/** One list per timeout length: a reload may change it while older tries still wait. */
const lists = new Map<number, TimerList>();

/** Calls owner.expired() after `ms` (> 0) unless cleared first. */
export function setTryTimer(ms: number, owner: Expiring): TryTimer {
  let list = lists.get(ms);
  if (!list) {
    list = new TimerList(ms);
    lists.set(ms, list);
  }
  return list.add(owner);
}

/** Clears a timer; nothing happens if it already expired or was cleared. */
export function clearTryTimer(t: TryTimer): void {
  t.list?.remove(t);
}
