import { describe, expect, it } from 'vitest';
import { logFormat } from './log.ts';

describe('logFormat', () => {
  it('is readable on a terminal and JSON otherwise, unless FEDGATE_LOG_FORMAT says', () => {
    expect(logFormat({}, true)).toBe('pretty');
    expect(logFormat({}, false)).toBe('json');
    expect(logFormat({ FEDGATE_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat({ FEDGATE_LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
    expect(logFormat({ FEDGATE_LOG_FORMAT: 'xml' }, false)).toBe('json');
  });
});
