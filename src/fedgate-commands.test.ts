import { describe, expect, it } from 'vitest';
import { UsageError } from './cli-support.ts';
import { MAX_WORKERS, parseWorkers, usableCores } from './fedgate-commands.ts';

describe('--workers', () => {
  it('defaults to one worker per core, within 1 … MAX_WORKERS', () => {
    expect(parseWorkers(undefined, 8)).toBe(8);
    expect(parseWorkers(undefined, 1)).toBe(1);
    expect(parseWorkers(undefined, 0)).toBe(1);
    expect(parseWorkers(undefined, 1024)).toBe(MAX_WORKERS);
  });

  it('takes a whole number from 1 to 256, and nothing else', () => {
    expect(parseWorkers('1')).toBe(1);
    expect(parseWorkers('2')).toBe(2);
    expect(parseWorkers(' 16 ')).toBe(16);
    expect(parseWorkers('256')).toBe(256);
    for (const bad of ['0', '257', '-1', '1.5', '1e2', 'two', '', '0x10', '99999']) {
      expect(() => parseWorkers(bad), bad).toThrow(UsageError);
    }
    expect(() => parseWorkers('0')).toThrow('--workers must be a whole number from 1 to 256');
  });
});

describe('usableCores', () => {
  it('caps the cores by a cgroup v2 CPU limit, rounding up, and ignores no limit', () => {
    expect(usableCores(64, '200000 100000\n')).toBe(2);
    expect(usableCores(64, '150000 100000')).toBe(2);
    expect(usableCores(64, '50000 100000')).toBe(1);
    expect(usableCores(4, '800000 100000')).toBe(4);
    expect(usableCores(8, 'max 100000')).toBe(8);
    expect(usableCores(8, undefined)).toBe(8);
    expect(usableCores(8, 'garbage')).toBe(8);
  });
});
