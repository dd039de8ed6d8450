// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics
// (k8s.io/client-go/tools/leaderelection): a candidate takes the lease when nobody
// holds it, when it is already ours, or when the record has not changed for the
// lease's duration as *this* replica observed it (so clocks need not agree); the
// leader renews every retryPeriod and stops leading when no renewal has succeeded
// within renewDeadline. Every write carries the resourceVersion last read, so two
// candidates racing for one expired lease cannot both win.
import { errorCodeOf } from '../errors.ts';

/** What the Lease's spec says: client-go's LeaderElectionRecord. */
export interface LeaseRecord {
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  /** ms since the epoch. */
  readonly acquireTime: number;
  readonly renewTime: number;
  readonly leaseTransitions: number;
}

/**
 * The Lease object, read and written with optimistic concurrency: `update` sends the
 * resourceVersion of the last `get`, `create` or `update` and fails on a conflict.
 */
export interface LeaseLock {
  /** The record, or undefined when there is no Lease. `raw` compares whole records. */
  get(): Promise<{ record: LeaseRecord; raw: string } | undefined>;
  create(record: LeaseRecord): Promise<void>;
  update(record: LeaseRecord): Promise<void>;
  /** Who writes: the holderIdentity this lock claims. */
  readonly identity: string;
}

/** Time as the elector sees it: injected, so tests run it on a fake clock. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export interface ElectionTiming {
  durationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface ElectionEvents {
  started(): void;
  stopped(reason: string): void;
  /** A try that failed for a reason other than the lease being held by another. */
  failed?(err: unknown): void;
}

/** client-go's JitterFactor for the acquire loop. */
const JITTER = 1.2;

export class LeaderElector {
  readonly #lock: LeaseLock;
  readonly #clock: Clock;
  readonly #timing: ElectionTiming;
  readonly #random: () => number;
  #observed: LeaseRecord | undefined;
  #observedRaw: string | undefined;
  /** When this replica last saw the record change: expiry counts from here. */
  #observedAt = 0;
  #leading = false;
  /** Times this replica started leading. */
  transitions = 0;

  constructor(lock: LeaseLock, clock: Clock, timing: ElectionTiming, random = Math.random) {
    this.#lock = lock;
    this.#clock = clock;
    this.#timing = timing;
    this.#random = random;
  }

  get identity(): string {
    return this.#lock.identity;
  }

  /** Whether this replica leads now (it renewed within renewDeadline). */
  get leading(): boolean {
    return this.#leading;
  }

  /** The holder as last observed ("" when nobody). */
  get observedHolder(): string {
    return this.#observed?.holderIdentity ?? '';
  }

  #isOurs(): boolean {
    return this.#observed?.holderIdentity === this.#lock.identity;
  }

  #valid(now: number): boolean {
    const seconds = this.#observed?.leaseDurationSeconds ?? 0;
    return this.#observedAt + seconds * 1000 > now;
  }

  #observe(record: LeaseRecord, raw?: string): void {
    this.#observed = record;
    this.#observedRaw = raw ?? JSON.stringify(record);
    this.#observedAt = this.#clock.now();
  }

  /** One try: client-go's tryAcquireOrRenew. True when this replica holds the lease now. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.#clock.now();
    const mine: LeaseRecord = {
      holderIdentity: this.#lock.identity,
      leaseDurationSeconds: Math.ceil(this.#timing.durationMs / 1000),
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 0,
    };
    // 1. The leader's fast path: renew assuming the record is as we last wrote it.
    if (this.#isOurs() && this.#valid(now) && this.#observed) {
      const next = {
        ...mine,
        acquireTime: this.#observed.acquireTime,
        leaseTransitions: this.#observed.leaseTransitions,
      };
      try {
        await this.#lock.update(next);
        this.#observe(next);
        return true;
      } catch (e) {
        this.#report(e);
        // Fall through: read what is there.
      }
    }
    // 2. Read it, or create it.
    let got: Awaited<ReturnType<LeaseLock['get']>>;
    try {
      got = await this.#lock.get();
    } catch (e) {
      this.#report(e);
      return false;
    }
    if (!got) {
      try {
        await this.#lock.create(mine);
        this.#observe(mine);
        return true;
      } catch (e) {
        this.#report(e);
        return false;
      }
    }
    // 3. Someone else's and still valid (as we observed it): not ours to take.
    if (got.raw !== this.#observedRaw) this.#observe(got.record, got.raw);
    if (got.record.holderIdentity !== '' && this.#valid(now) && !this.#isOurs()) return false;
    // 4. Ours, free or expired: write it.
    const next = this.#isOurs()
      ? {
          ...mine,
          acquireTime: got.record.acquireTime,
          leaseTransitions: got.record.leaseTransitions,
        }
      : { ...mine, leaseTransitions: got.record.leaseTransitions + 1 };
    try {
      await this.#lock.update(next);
    } catch (e) {
      this.#report(e);
      return false;
    }
    this.#observe(next);
    return true;
  }

  /**
   * Campaigns until `signal` aborts: acquire (every retryPeriod, jittered), lead while
   * renewals succeed, and after losing the lease campaign again. On abort a leader
   * releases the lease (client-go's ReleaseOnCancel), so a successor need not wait.
   */
  async run(events: ElectionEvents, signal: AbortSignal): Promise<void> {
    this.#events = events;
    while (!signal.aborted) {
      if (!(await this.tryAcquireOrRenew())) {
        await this.#clock.sleep(
          this.#timing.retryPeriodMs * (1 + this.#random() * (JITTER - 1)),
          signal,
        );
        continue;
      }
      this.#leading = true;
      this.transitions++;
      events.started();
      const reason = await this.#renewUntilLost(signal);
      this.#leading = false;
      if (signal.aborted) {
        await this.release();
        events.stopped('stopping');
        return;
      }
      events.stopped(reason);
    }
  }

  #events: ElectionEvents | undefined;

  #report(e: unknown): void {
    if (errorCodeOf(e) === 'WRITE_CONFLICT') return; // another replica won the race: routine
    this.#events?.failed?.(e);
  }

  /** Renews every retryPeriod; resolves when a renewal has not succeeded within renewDeadline. */
  async #renewUntilLost(signal: AbortSignal): Promise<string> {
    let lastRenew = this.#clock.now();
    while (!signal.aborted) {
      await this.#clock.sleep(this.#timing.retryPeriodMs, signal);
      if (signal.aborted) break;
      // client-go: PollImmediateUntil(retryPeriod, tryAcquireOrRenew, renewDeadline).
      let renewed = false;
      while (!signal.aborted) {
        if (this.#clock.now() - lastRenew >= this.#timing.renewDeadlineMs) break;
        if (await this.tryAcquireOrRenew()) {
          renewed = true;
          break;
        }
        if (!this.#isOurs()) return `the lease is held by ${this.observedHolder || 'nobody'}`;
        await this.#clock.sleep(this.#timing.retryPeriodMs, signal);
      }
      if (signal.aborted) break;
      if (!renewed) return `no renewal succeeded within ${this.#timing.renewDeadlineMs} ms`;
      lastRenew = this.#clock.now();
    }
    return 'stopping';
  }

  /** Gives the lease up if ours: holder cleared, duration 1 s (client-go's release). */
  async release(): Promise<void> {
    if (!this.#isOurs() || !this.#observed) return;
    const now = this.#clock.now();
    const next: LeaseRecord = {
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: this.#observed.leaseTransitions,
    };
    try {
      await this.#lock.update(next);
      this.#observe(next);
    } catch (e) {
      this.#report(e);
    }
  }
}
