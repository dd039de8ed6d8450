import { describe, expect, it } from 'vitest';
import { PendingQueue, type Waiter } from './pending.ts';

function waiter(client: string, settled: string[], name: string): Waiter {
  return { client, settle: (ok) => settled.push(`${name}:${ok}`) };
}

describe('PendingQueue', () => {
  it('serves clients in turn, not in arrival order', () => {
    const q = new PendingQueue();
    const log: string[] = [];
    for (let i = 0; i < 3; i++) q.push(waiter('hog', log, `h${i}`), 10);
    q.push(waiter('other', log, 'o0'), 10);
    const order: string[] = [];
    for (let w = q.shift(); w; w = q.shift()) w.settle(true);
    order.push(...log);
    expect(order).toEqual(['h0:true', 'o0:true', 'h1:true', 'h2:true']);
    expect(q.size).toBe(0);
  });

  it('when full, a client with fewer waiting takes the newest place of the one with the most', () => {
    const q = new PendingQueue();
    const log: string[] = [];
    for (let i = 0; i < 3; i++) expect(q.push(waiter('hog', log, `h${i}`), 3)).toBe(true);
    // The hog itself gets no room.
    expect(q.push(waiter('hog', log, 'h3'), 3)).toBe(false);
    expect(q.push(waiter('other', log, 'o0'), 3)).toBe(true);
    expect(log).toEqual(['h2:false']);
    expect(q.size).toBe(3);
    // Now 2 against 1: no one is bumped for a third client's second.
    expect(q.push(waiter('third', log, 't0'), 3)).toBe(true);
    expect(q.push(waiter('third', log, 't1'), 3)).toBe(false);
    expect(log).toEqual(['h2:false', 'h1:false']);
  });

  it('takes a waiter out when it gives up', () => {
    const q = new PendingQueue();
    const log: string[] = [];
    const a = waiter('a', log, 'a');
    q.push(a, 5);
    q.push(waiter('b', log, 'b'), 5);
    q.remove(a);
    q.remove(a);
    expect(q.size).toBe(1);
    expect(q.all().map((w) => w.client)).toEqual(['b']);
    expect(q.push(waiter('a', log, 'a2'), 0)).toBe(false);
  });
});
