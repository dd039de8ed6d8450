import { describe, expect, it } from 'vitest';
import { type StagedChange, stageTogether } from './staged-change.ts';

function part(name: string, log: string[]): StagedChange {
  log.push(`stage ${name}`);
  return {
    commit: () => void log.push(`commit ${name}`),
    abort: async () => void log.push(`abort ${name}`),
  };
}

describe('stageTogether', () => {
  it('commits every part in the order staged, and returns what the body said', async () => {
    const log: string[] = [];
    const staged = await stageTogether(async (add) => {
      await add(part('a', log));
      await add(Promise.resolve(part('b', log)));
      return { opened: ['x'] };
    });
    expect(staged.opened).toEqual(['x']);
    expect(log).toEqual(['stage a', 'stage b']);
    staged.commit();
    expect(log).toEqual(['stage a', 'stage b', 'commit a', 'commit b']);
    // Committed, there is nothing to abort.
    await staged.abort();
    expect(log).toHaveLength(4);
    expect(() => staged.commit()).toThrow(/once/);
  });

  it('aborts the parts staged so far when a later one fails, and rethrows', async () => {
    const log: string[] = [];
    const failure = new Error('cannot bind');
    await expect(
      stageTogether(async (add) => {
        await add(part('a', log));
        await add(part('b', log));
        await add(Promise.reject(failure));
        await add(part('c', log));
        return {};
      }),
    ).rejects.toBe(failure);
    expect(log).toEqual(['stage a', 'stage b', 'abort a', 'abort b']);
  });

  it('aborts what was staged when the body gives up after staging', async () => {
    const log: string[] = [];
    await expect(
      stageTogether(async (add) => {
        await add(part('a', log));
        throw new Error('stopping');
      }),
    ).rejects.toThrow('stopping');
    expect(log).toEqual(['stage a', 'abort a']);
  });

  it('aborts every part once, however often it is asked', async () => {
    const log: string[] = [];
    const staged = await stageTogether(async (add) => {
      await add(part('a', log));
      return {};
    });
    await Promise.all([staged.abort(), staged.abort()]);
    expect(log).toEqual(['stage a', 'abort a']);
    expect(() => staged.commit()).toThrow(/once/);
  });
});
