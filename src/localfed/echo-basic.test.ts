import { describe, expect, it } from 'vitest';
import { echoDelayMs, echoSetHeaders, MAX_ECHO_DELAY_MS, RetrySimulation } from './echo-basic.ts';

describe('echoDelayMs', () => {
  it('reads the Go durations the conformance cases send', () => {
    expect(echoDelayMs('1s')).toBe(1000);
    expect(echoDelayMs('500ms')).toBe(500);
    expect(echoDelayMs('1.5s')).toBe(1500);
    expect(echoDelayMs('2m')).toBe(MAX_ECHO_DELAY_MS);
  });
  it('refuses what is not one number and unit', () => {
    for (const t of ['', '1', 's', '1x', '-1s', '1s2ms']) expect(echoDelayMs(t), t).toBeUndefined();
  });
});

describe('echoSetHeaders', () => {
  it('name:value pairs, a repeated name joined with a comma, case kept', () => {
    expect(echoSetHeaders('X-Header-Set: one, x-header-set:two,Other:v')).toEqual({
      'X-Header-Set': 'one,two',
      Other: 'v',
    });
    expect(echoSetHeaders(['A:1', 'B:2'])).toEqual({ A: '1', B: '2' });
    expect(echoSetHeaders(undefined)).toEqual({});
  });
  it('drops names Node could not send', () => {
    expect(echoSetHeaders('bad name:1,ok:2')).toEqual({ ok: '2' });
  });
});

describe('RetrySimulation', () => {
  const q = (s: string) => new URLSearchParams(s);
  it('fails the first succeedAfter attempts of a uuid, then echoes', () => {
    const r = new RetrySimulation();
    const ask = () => r.attempt('ns/v3', q('uuid=a&succeedAfter=2&responseCode=503'));
    expect(ask()).toEqual({ kind: 'fail', status: 503 });
    expect(ask()).toEqual({ kind: 'fail', status: 503 });
    expect(ask()).toEqual({ kind: 'echo' });
    // Another uuid, or another service, counts apart.
    expect(r.attempt('ns/v3', q('uuid=b&succeedAfter=1'))).toEqual({
      kind: 'fail',
      status: undefined,
    });
    expect(r.attempt('ns/v2', q('uuid=a&succeedAfter=1&responseCode=500'))).toEqual({
      kind: 'fail',
      status: 500,
    });
  });
  it('needs a uuid and succeedAfter', () => {
    const r = new RetrySimulation();
    expect(r.attempt('s', q('succeedAfter=1'))).toMatchObject({ kind: 'bad' });
    expect(r.attempt('s', q('uuid=x'))).toMatchObject({ kind: 'bad' });
  });
});
