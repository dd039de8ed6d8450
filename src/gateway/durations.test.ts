import { describe, expect, it } from 'vitest';
import { parseGatewayDuration } from './durations.ts';

// The test vectors of GEP-2257 (geps/gep-2257/index.md, "Parsing").
describe('parseGatewayDuration', () => {
  it.each([
    ['0h', 0],
    ['0s', 0],
    ['0h0m0s', 0],
    ['1h', 3_600_000],
    ['30m', 1_800_000],
    ['10s', 10_000],
    ['500ms', 500],
    ['2h30m', 9_000_000],
    ['150m', 9_000_000],
    ['7230s', 7_230_000],
    ['1h30m10s', 5_410_000],
    ['10s30m1h', 5_410_000],
    ['100ms200ms300ms', 600],
    ['1s500ms', 1500],
  ])('%s is %d ms', (text, ms) => {
    expect(parseGatewayDuration(text)).toBe(ms);
  });

  it.each(['1', '1m1', '1d', '1h30m10s20ms50h', '999999h', '1.5h', '-15m', '', '0', ' 1s'])(
    '%j is not a duration',
    (text) => {
      expect(parseGatewayDuration(text)).toBeUndefined();
    },
  );
});
