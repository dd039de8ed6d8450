// The probe queue on a hand-stepped clock: every start is accounted for, so the caps
// are checked exactly rather than by timing.
import { describe, expect, it } from 'vitest';
import { ProbeQueue, type QueueLimits, type Timers } from './queue.ts';

/** A clock and timers moved only by advance(); due timers fire in time order. */
class ManualTime implements Timers {
  now = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #id = 0;
  set(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  /** Moves time forward by ms, firing each due timer at its own time. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.#timers.entries()]
        .filter(([, t]) => t.at <= end)
        .sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.now = Math.max(this.now, due[1].at);
      due[1].fn();
      await flush();
    }
    this.now = end;
    await flush();
  }
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

/** A queue whose probes finish only when the test says so. */
function harness(limits: QueueLimits) {
  const time = new ManualTime();
  const started: string[] = [];
  const finish = new Map<string, () => void>();
  let running = 0;
  let maxRunning = 0;
  const queue = new ProbeQueue<string>({
    limits,
    now: () => time.now,
    timers: time,
    run: (item) => {
      started.push(item);
      running++;
      maxRunning = Math.max(maxRunning, running);
      return new Promise<void>((resolve) =>
        finish.set(item, () => {
          running--;
          finish.delete(item);
          resolve();
        }),
      );
    },
  });
  const finishAll = async () => {
    for (const f of [...finish.values()]) f();
    await flush();
  };
  return {
    time,
    queue,
    started,
    finish,
    finishAll,
    get maxRunning() {
      return maxRunning;
    },
  };
}

describe('ProbeQueue', () => {
  it('starts items in due-time order, each at its time', async () => {
    const h = harness({ maxInFlight: 10, maxPerSecond: 1000 });
    h.queue.schedule('c', 30);
    h.queue.schedule('a', 10);
    h.queue.schedule('b', 20);
    await h.time.advance(9);
    expect(h.started).toEqual([]);
    await h.time.advance(1);
    expect(h.started).toEqual(['a']);
    await h.time.advance(25);
    expect(h.started).toEqual(['a', 'b', 'c']);
  });

  it('never runs more than maxInFlight at once, and starts the next as one finishes', async () => {
    const h = harness({ maxInFlight: 3, maxPerSecond: 1_000_000 });
    for (let i = 0; i < 20; i++) h.queue.schedule(`t${i}`, 0);
    await h.time.advance(1000);
    expect(h.started).toHaveLength(3);
    expect(h.queue.inFlight).toBe(3);
    h.finish.get('t0')!();
    await flush();
    expect(h.started).toHaveLength(4);
    for (let i = 0; i < 10; i++) await h.finishAll();
    expect(h.started).toHaveLength(20);
    expect(h.maxRunning).toBe(3);
  });

  it('starts at most maxPerSecond, with bursts of at most 50 ms worth', async () => {
    const h = harness({ maxInFlight: 10_000, maxPerSecond: 100 });
    for (let i = 0; i < 1000; i++) h.queue.schedule(`t${i}`, 0);
    // The bucket starts full: 5 (50 ms at 100/s) go at once.
    await h.time.advance(0);
    expect(h.started).toHaveLength(5);
    await h.time.advance(1000);
    // One second later: the burst plus one second's worth, never more.
    expect(h.started.length).toBeLessThanOrEqual(105);
    expect(h.started.length).toBeGreaterThanOrEqual(100);
    await h.time.advance(4000);
    expect(h.started.length).toBeLessThanOrEqual(505);
    expect(h.started.length).toBeGreaterThanOrEqual(500);
  });

  it('puts expedited items ahead of every due one, still under the in-flight cap', async () => {
    const h = harness({ maxInFlight: 2, maxPerSecond: 1_000_000 });
    for (let i = 0; i < 5; i++) h.queue.schedule(`t${i}`, 0);
    await h.time.advance(0);
    expect(h.started).toEqual(['t0', 't1']);
    h.queue.expedite('urgent');
    await flush();
    // Both slots are busy: it waits, but goes first when one frees up.
    expect(h.started).toEqual(['t0', 't1']);
    h.finish.get('t1')!();
    await flush();
    expect(h.started).toEqual(['t0', 't1', 'urgent']);
    expect(h.maxRunning).toBe(2);
  });

  it('drops cancelled items, and a rescheduled item runs once, at its new time', async () => {
    const h = harness({ maxInFlight: 10, maxPerSecond: 1000 });
    h.queue.schedule('gone', 5);
    h.queue.schedule('moved', 5);
    h.queue.cancel('gone');
    h.queue.schedule('moved', 50);
    expect(h.queue.queued).toBe(1);
    await h.time.advance(20);
    expect(h.started).toEqual([]);
    await h.time.advance(40);
    expect(h.started).toEqual(['moved']);
    expect(h.queue.queued).toBe(0);
  });

  it('keeps one timer, and none when nothing waits', async () => {
    const h = harness({ maxInFlight: 1000, maxPerSecond: 1000 });
    for (let i = 0; i < 100; i++) h.queue.schedule(`t${i}`, 1000 + i);
    expect(h.time.pending).toBe(1);
    await h.time.advance(2000);
    await h.finishAll();
    expect(h.started).toHaveLength(100);
    expect(h.time.pending).toBe(0);
  });

  it('survives a run that throws, freeing its slot', async () => {
    const time = new ManualTime();
    const seen: string[] = [];
    const queue = new ProbeQueue<string>({
      limits: { maxInFlight: 1, maxPerSecond: 1000 },
      now: () => time.now,
      timers: time,
      run: (item) => {
        seen.push(item);
        if (item === 'bad') throw new Error('boom');
        return Promise.resolve();
      },
    });
    queue.schedule('bad', 0);
    queue.schedule('good', 0);
    await time.advance(10);
    expect(seen).toEqual(['bad', 'good']);
    expect(queue.inFlight).toBe(0);
  });

  it('follows new limits, and stop() empties it', async () => {
    const h = harness({ maxInFlight: 1, maxPerSecond: 1_000_000 });
    for (let i = 0; i < 4; i++) h.queue.schedule(`t${i}`, 0);
    await h.time.advance(0);
    expect(h.started).toHaveLength(1);
    h.queue.setLimits({ maxInFlight: 3, maxPerSecond: 1_000_000 });
    await flush();
    expect(h.started).toHaveLength(3);
    h.queue.stop();
    await h.finishAll();
    expect(h.started).toHaveLength(3);
    expect(h.queue.queued).toBe(0);
  });

  it('out of descriptors: pauses, halves the ceiling once per pause, and grows it back by one per probe', async () => {
    const h = harness({ maxInFlight: 8, maxPerSecond: 1_000_000 });
    for (let i = 0; i < 40; i++) h.queue.schedule(`t${i}`, 0);
    await h.time.advance(0);
    expect(h.started).toHaveLength(8);
    // Three probes fail at once for want of a descriptor: one halving, of what was in flight.
    h.queue.exhausted(1000);
    h.queue.exhausted(1000);
    h.queue.exhausted(1000);
    expect(h.queue.ceiling).toBe(4);
    for (const t of ['t0', 't1', 't2']) h.finish.get(t)!();
    await flush();
    // Paused: nothing starts, and finishing does not grow the ceiling.
    expect(h.started).toHaveLength(8);
    expect(h.queue.ceiling).toBe(4);
    await h.time.advance(1000);
    // Five still running, the ceiling four: still nothing until two finish.
    expect(h.started).toHaveLength(8);
    for (const t of ['t3', 't4']) h.finish.get(t)!();
    await flush();
    // Each finish raised it by one (4 → 6), and 3 run: three more start.
    expect(h.queue.ceiling).toBe(6);
    expect(h.started).toHaveLength(11);
    for (let i = 0; i < 20; i++) await h.finishAll();
    expect(h.queue.ceiling).toBe(8);
    expect(h.maxRunning).toBe(8);
  });

  it('keeps a running mean of how long probes hold their slot', async () => {
    const h = harness({ maxInFlight: 10, maxPerSecond: 1000 });
    expect(h.queue.meanProbeMs).toBeUndefined();
    h.queue.schedule('a', 0);
    await h.time.advance(0);
    await h.time.advance(40);
    h.finish.get('a')!();
    await flush();
    expect(h.queue.meanProbeMs).toBe(40);
  });
});
