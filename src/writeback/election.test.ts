import { describe, expect, it } from 'vitest';
import { FedgateError } from '../errors.ts';
import { type Clock, LeaderElector, type LeaseLock, type LeaseRecord } from './election.ts';

const TIMING = { durationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** A shared Lease with a resourceVersion: an update from a stale read is a conflict. */
class LeaseStore {
  record: LeaseRecord | undefined;
  version = 0;
  writes = 0;
  /** While set, every request fails (the API server is unreachable). */
  down = false;
}

class MemoryLock implements LeaseLock {
  readonly identity: string;
  readonly #store: LeaseStore;
  #seen = -1;
  constructor(store: LeaseStore, identity: string) {
    this.#store = store;
    this.identity = identity;
  }
  #check(): void {
    if (this.#store.down) throw new FedgateError('CLUSTER_UNREACHABLE', 'down');
  }
  async get() {
    this.#check();
    this.#seen = this.#store.version;
    const r = this.#store.record;
    return r ? { record: r, raw: JSON.stringify(r) } : undefined;
  }
  async create(record: LeaseRecord) {
    this.#check();
    if (this.#store.record) throw new FedgateError('WRITE_CONFLICT', 'exists');
    this.#write(record);
  }
  async update(record: LeaseRecord) {
    this.#check();
    if (this.#seen !== this.#store.version) throw new FedgateError('WRITE_CONFLICT', 'stale');
    this.#write(record);
  }
  #write(record: LeaseRecord) {
    this.#store.record = record;
    this.#store.version++;
    this.#store.writes++;
    this.#seen = this.#store.version;
  }
}

/** Time moves only when told, or when the one running elector sleeps. */
class FakeClock implements Clock {
  t = 1_000_000;
  now() {
    return this.t;
  }
  async sleep(ms: number, signal: AbortSignal) {
    await Promise.resolve();
    if (!signal.aborted) this.t += ms;
  }
}

function pair() {
  const store = new LeaseStore();
  const clock = new FakeClock();
  const a = new LeaderElector(new MemoryLock(store, 'a'), clock, TIMING, () => 0);
  const b = new LeaderElector(new MemoryLock(store, 'b'), clock, TIMING, () => 0);
  return { store, clock, a, b };
}

describe('LeaderElector.tryAcquireOrRenew', () => {
  it('acquires a missing lease by creating it, with its identity, times and duration', async () => {
    const { store, clock, a } = pair();
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(store.record).toEqual({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: clock.t,
      renewTime: clock.t,
      leaseTransitions: 0,
    });
  });

  it('renews its own lease: renewTime moves, acquireTime and leaseTransitions stay', async () => {
    const { store, clock, a } = pair();
    await a.tryAcquireOrRenew();
    const acquired = clock.t;
    clock.t += 2_000;
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(store.record).toMatchObject({
      holderIdentity: 'a',
      acquireTime: acquired,
      renewTime: clock.t,
      leaseTransitions: 0,
    });
  });

  it('does not take a lease another holds until it has seen it unchanged for the duration', async () => {
    const { store, clock, a, b } = pair();
    await a.tryAcquireOrRenew();
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock.t += 14_999;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    expect(store.record?.holderIdentity).toBe('a');
    clock.t += 1;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(store.record).toMatchObject({
      holderIdentity: 'b',
      acquireTime: clock.t,
      leaseTransitions: 1,
    });
    // a's fast path fails on the stale version; it reads b's lease and backs off.
    expect(await a.tryAcquireOrRenew()).toBe(false);
    expect(store.record?.holderIdentity).toBe('b');
  });

  it('counts expiry from when it saw the record change, not from renewTime (clock skew)', async () => {
    const { store, clock, a, b } = pair();
    await a.tryAcquireOrRenew();
    // a's clock is far behind: its renewTime is long past by b's clock.
    store.record = { ...(store.record as LeaseRecord), renewTime: clock.t - 3_600_000 };
    store.version++;
    expect(await b.tryAcquireOrRenew()).toBe(false);
  });

  it('of two candidates for an expired lease, one wins: the other conflicts on resourceVersion', async () => {
    const { store, clock, a, b } = pair();
    const c = new LeaderElector(new MemoryLock(store, 'c'), clock, TIMING, () => 0);
    await a.tryAcquireOrRenew();
    await b.tryAcquireOrRenew();
    await c.tryAcquireOrRenew();
    clock.t += 15_000;
    const both = await Promise.all([b.tryAcquireOrRenew(), c.tryAcquireOrRenew()]);
    expect(both.filter(Boolean).length).toBe(1);
    expect(store.record?.leaseTransitions).toBe(1);
  });

  it('takes a released lease (holder cleared) at once', async () => {
    const { store, a, b } = pair();
    await a.tryAcquireOrRenew();
    await b.tryAcquireOrRenew();
    await a.release();
    expect(store.record).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(store.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });
});

describe('LeaderElector.run', () => {
  it('leads, renews every retryPeriod, and stops leading once no renewal succeeded within renewDeadline', async () => {
    const { store, clock, a } = pair();
    const log: string[] = [];
    const stop = new AbortController();
    let renewalsAtOutage = 0;
    const events = {
      started: () => {
        log.push(`started at ${clock.t}`);
      },
      stopped: (why: string) => {
        log.push(`stopped at ${clock.t}: ${why}`);
        stop.abort();
      },
    };
    const outageAt = clock.t + 6_000;
    // The API goes away 6 s in: renewals at 2, 4 and 6 s succeed; none after.
    const origSleep = clock.sleep.bind(clock);
    clock.sleep = async (ms, signal) => {
      await origSleep(ms, signal);
      if (clock.t > outageAt && !store.down) {
        store.down = true;
        renewalsAtOutage = store.writes;
      }
    };
    await a.run(events, stop.signal);
    expect(log[0]).toBe(`started at ${outageAt - 6_000}`);
    expect(renewalsAtOutage).toBe(4); // create + 3 renewals
    // Last renewal at +6 s; the tries at +8, +10, +12, +14 s fail; +16 s is past the deadline.
    expect(log[1]).toBe(`stopped at ${outageAt + 10_000}: no renewal succeeded within 10000 ms`);
    expect(a.leading).toBe(false);
  });

  it('stops leading as soon as it reads that another holds the lease', async () => {
    const { store, clock, a } = pair();
    const stop = new AbortController();
    const log: string[] = [];
    const origSleep = clock.sleep.bind(clock);
    clock.sleep = async (ms, signal) => {
      await origSleep(ms, signal);
      // Someone overwrote the lease (e.g. an operator): a's next update conflicts.
      if (store.writes === 2 && store.record?.holderIdentity === 'a') {
        store.record = { ...store.record, holderIdentity: 'z' };
        store.version++;
      }
    };
    await a.run(
      {
        started: () => log.push('started'),
        stopped: (why) => {
          log.push(why);
          stop.abort();
        },
      },
      stop.signal,
    );
    expect(log).toEqual(['started', 'the lease is held by z']);
  });

  it('releases the lease when stopped, so a standby takes over without waiting', async () => {
    const { store, a, b } = pair();
    const stop = new AbortController();
    const running = a.run({ started: () => stop.abort(), stopped: () => {} }, stop.signal);
    await running;
    expect(store.record?.holderIdentity).toBe('');
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(a.transitions).toBe(1);
  });
});
