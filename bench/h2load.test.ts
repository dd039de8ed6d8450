import { describe, expect, it } from 'vitest';
import { h2loadArgs, h2loadReport, parseH2load, requestTimesMs } from './h2load.ts';

// As Debian's h2load 1.52 printed it for a 3 s run of unary gRPC calls.
const OUTPUT = `starting benchmark...
spawning thread #0: 8 total client(s). Timing-based test with 0s of warm-up time and 3s of main duration for measurements.
Application protocol: h2c

finished in 3.00s, 18056.00 req/s, 971.15KB/s
requests: 54168 total, 54232 started, 54168 done, 54100 succeeded, 68 failed, 8 errored, 2 timeout
status codes: 54216 2xx, 0 3xx, 50 4xx, 10 5xx
traffic: 2.85MB (2983376) total, 265.97KB (272352) headers (space savings 96.39%), 1.09MB (1138536) data
                     min         max         mean         sd        +/- sd
time for request:      440us     49.09ms      3.46ms      3.19ms    92.06%
`;

describe('h2load', () => {
  it('reads the summary: rate, requests, failures, status classes, bytes', () => {
    expect(parseH2load(OUTPUT)).toEqual({
      requestsPerSec: 18056,
      requests: 54168,
      durationSec: 3,
      succeeded: 54100,
      failed: 68,
      errored: 8,
      timedOut: 2,
      status: { '2xx': 54216, '3xx': 0, '4xx': 50, '5xx': 10 },
      bytesRead: 2983376,
      dataBytes: 1138536,
    });
  });

  it('takes a run that ended in milliseconds in seconds', () => {
    const out = OUTPUT.replace('finished in 3.00s', 'finished in 812.50ms');
    expect(parseH2load(out).durationSec).toBeCloseTo(0.8125);
  });

  it('says which line is missing when the output has no summary', () => {
    expect(() => parseH2load('starting benchmark...\nNo protocol negotiated. Aborted.\n')).toThrow(
      /no "finished in" line/,
    );
  });

  it('reads the per-request log as sorted milliseconds, skipping what is no entry', () => {
    const log = '1796289040481858\t200\t7462\n1796289040481859\t200\t512\nnot a line\n\n';
    expect(requestTimesMs(log)).toEqual([0.512, 7.462]);
  });

  it('counts every failure it is given, its own and the caller’s', () => {
    const r = { ...parseH2load(OUTPUT), p50Ms: 1, p90Ms: 2, p99Ms: 3, maxMs: 4, raw: '' };
    expect(h2loadReport(r, { noReply: 3 }).errors).toEqual({ failed: 68, noReply: 3 });
  });

  it('sends the body, the headers and the :authority asked for', () => {
    const args = h2loadArgs({
      url: 'http://127.0.0.1:1/p',
      authority: 'web.example.test',
      clients: 8,
      streams: 4,
      durationSec: 10,
      bodyFile: '/tmp/b',
      headers: ['te: trailers'],
      logFile: '/tmp/l',
    });
    expect(args.join(' ')).toBe(
      '-c 8 -m 4 -t 1 -D 10 --log-file=/tmp/l -d /tmp/b -H :authority: web.example.test -H te: trailers http://127.0.0.1:1/p',
    );
  });
});
