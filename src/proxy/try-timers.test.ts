import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { clearTryTimer, setTryTimer } from './try-timers.ts';

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('per-try timers', () => {
  it('expire in the order armed, none before its own time, cleared ones never', async () => {
    const fired: [string, number][] = [];
    const start = performance.now();
    const owner = (name: string) => ({
      expired: () => fired.push([name, performance.now() - start]),
    });
    setTryTimer(40, owner('a'));
    const b = setTryTimer(40, owner('b'));
    await sleep(15);
    setTryTimer(40, owner('c'));
    clearTryTimer(b);
    clearTryTimer(b); // twice: nothing
    await sleep(100);
    expect(fired.map(([n]) => n)).toEqual(['a', 'c']);
    expect(fired[0]![1]).toBeGreaterThanOrEqual(40);
    expect(fired[1]![1]).toBeGreaterThanOrEqual(55);
  });

  it('arm anew from an expiry (a retry): the new timer waits its whole time', async () => {
    const fired: number[] = [];
    const start = performance.now();
    setTryTimer(30, {
      expired: () => {
        fired.push(performance.now() - start);
        setTryTimer(30, { expired: () => fired.push(performance.now() - start) });
      },
    });
    await sleep(120);
    expect(fired).toHaveLength(2);
    expect(fired[1]!).toBeGreaterThanOrEqual(60);
  });

  it('hold no Node timer once every try timer is cleared', () => {
    const before = timeouts();
    const t = [
      setTryTimer(5_000, { expired: () => {} }),
      setTryTimer(5_000, { expired: () => {} }),
    ];
    expect(timeouts()).toBe(before + 1);
    for (const x of t) clearTryTimer(x);
    expect(timeouts()).toBe(before);
  });
});
