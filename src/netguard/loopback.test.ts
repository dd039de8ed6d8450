// The guard's pure parts: which addresses pass, how lookups are checked, what the
// refusal says. Nothing here dials: private and public addresses appear only as
// strings and as answers of fake lookups that are never connected to.
import dgram from 'node:dgram';
import type { LookupFunction } from 'node:net';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { FedgateError } from '../errors.ts';
import { installLoopbackGuard, isLoopbackAddress, loopbackGuardInstalled } from './loopback.ts';
import { callerFrame, type Destination, guardedLookup, refusal } from './refusal.ts';

describe('isLoopbackAddress', () => {
  it.each([
    '127.0.0.1',
    '127.0.0.2',
    '127.1.2.3',
    '127.255.255.255',
    '::1',
    '0:0:0:0:0:0:0:1',
    '0000:0000:0000:0000:0000:0000:0000:0001',
    '::ffff:127.0.0.1',
    '::ffff:127.3.0.1',
    '::FFFF:7F00:1',
    '0:0:0:0:0:ffff:127.255.255.255',
  ])('accepts %s', (ip) => {
    expect(isLoopbackAddress(ip)).toBe(true);
  });

  it.each([
    ['0.0.0.0', 'any address'],
    ['::', 'any address'],
    ['0:0:0:0:0:0:0:0', 'any address'],
    ['10.0.0.1', '10/8'],
    ['10.255.255.255', '10/8'],
    ['172.16.0.1', '172.16/12'],
    ['172.31.255.255', '172.16/12'],
    ['192.168.1.1', '192.168/16'],
    ['169.254.0.1', 'link-local'],
    ['8.8.8.8', 'public'],
    ['192.0.2.1', 'documentation'],
    ['128.0.0.1', 'next to 127/8'],
    ['126.255.255.255', 'next to 127/8'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::2', 'next to ::1'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['::ffff:128.0.0.1', 'IPv4-mapped public'],
    ['::127.0.0.1', 'IPv4-compatible (not mapped)'],
    ['::ffff:0:127.0.0.1', 'IPv4-translated (not mapped)'],
    ['fe80::1', 'link-local'],
    ['fd00::1', 'unique local'],
    ['2001:db8::1', 'documentation'],
    ['ff02::1', 'multicast'],
    ['::1%lo', 'zone-scoped'],
    ['localhost', 'a name'],
    ['127.1', 'shorthand, not a literal'],
    ['127.000.0.1', 'leading zeros, not a literal'],
    [' 127.0.0.1', 'padded'],
    ['127.0.0.1.example.test', 'a name'],
    ['', 'empty'],
  ])('refuses %s (%s)', (ip) => {
    expect(isLoopbackAddress(ip)).toBe(false);
  });

  it('refuses what is not a string', () => {
    expect(isLoopbackAddress(undefined as unknown as string)).toBe(false);
    expect(isLoopbackAddress(2130706433 as unknown as string)).toBe(false);
  });
});

describe('installLoopbackGuard', () => {
  it('is installed in every test process, and installing it again changes nothing', () => {
    expect(loopbackGuardInstalled()).toBe(true);
    expect(process.env.FEDGATE_LOOPBACK_ONLY).toBe('1');
    const before = [
      net.Socket.prototype.connect,
      dgram.Socket.prototype.send,
      dgram.Socket.prototype.connect,
    ];
    installLoopbackGuard();
    installLoopbackGuard();
    expect([
      net.Socket.prototype.connect,
      dgram.Socket.prototype.send,
      dgram.Socket.prototype.connect,
    ]).toEqual(before);
  });
});

const DEST: Destination = {
  protocol: 'TCP',
  host: 'far.example.test',
  port: 443,
  caller: 'the test',
};

type Answer = [Error | null, ...unknown[]];

/** Calls a guarded fake lookup that answers `answer`, and returns what the caller got. */
function lookupThrough(answer: Answer, options: unknown = {}): Promise<Answer> {
  const fake = ((_host: string, _options: unknown, cb: (...a: unknown[]) => void) =>
    cb(...answer)) as unknown as LookupFunction;
  const guarded = guardedLookup(fake, DEST) as unknown as (...a: unknown[]) => void;
  return new Promise((resolve) => guarded(DEST.host, options, (...got: Answer) => resolve(got)));
}

describe('guardedLookup', () => {
  it('passes loopback answers through unchanged', async () => {
    expect(await lookupThrough([null, '127.0.0.1', 4])).toEqual([null, '127.0.0.1', 4]);
    expect(await lookupThrough([null, '::1', 6])).toEqual([null, '::1', 6]);
    const all = [
      { address: '::1', family: 6 },
      { address: '127.0.0.1', family: 4 },
    ];
    expect(await lookupThrough([null, all], { all: true })).toEqual([null, all]);
  });

  it.each(['10.0.0.1', '172.16.0.1', '192.168.0.1', '8.8.8.8', '0.0.0.0', 'fd00::1'])(
    'turns an answer of %s into the guard’s error',
    async (address) => {
      const [err, ...rest] = await lookupThrough([null, address, address.includes(':') ? 6 : 4]);
      expect(rest).toEqual([]);
      expect(err).toBeInstanceOf(FedgateError);
      expect(err).toMatchObject({ code: 'NON_LOOPBACK_REFUSED', address, port: 443 });
      expect(err?.message).toContain(`(far.example.test resolved to it) from the test`);
    },
  );

  it('refuses an all-answers list with any address outside loopback (Happy Eyeballs would try it)', async () => {
    const [err] = await lookupThrough(
      [
        null,
        [
          { address: '127.0.0.1', family: 4 },
          { address: '192.168.0.1', family: 4 },
        ],
      ],
      { all: true },
    );
    expect(err).toMatchObject({ code: 'NON_LOOPBACK_REFUSED', address: '192.168.0.1' });
  });

  it('passes lookup errors, and answers that are not addresses, on for Node to judge', async () => {
    const failed = Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    expect(await lookupThrough([failed])).toEqual([failed]);
    expect(await lookupThrough([null, 'not-an-ip', 4])).toEqual([null, 'not-an-ip', 4]);
  });

  it('accepts the two-argument form (no options)', async () => {
    const fake = ((_host: string, cb: (...a: unknown[]) => void) =>
      cb(null, '10.0.0.1', 4)) as unknown as LookupFunction;
    const guarded = guardedLookup(fake, DEST) as unknown as (...a: unknown[]) => void;
    const [err] = await new Promise<Answer>((resolve) =>
      guarded(DEST.host, (...got: Answer) => resolve(got)),
    );
    expect(err).toMatchObject({ code: 'NON_LOOPBACK_REFUSED' });
  });
});

describe('refusal', () => {
  it('names the protocol, the address and port, and the caller', () => {
    const err = refusal({ protocol: 'TCP', host: '10.1.2.3', port: 80, caller: 'f (x.ts:1:2)' });
    expect(err.code).toBe('NON_LOOPBACK_REFUSED');
    expect(err.message).toBe(
      'loopback-only guard refused a TCP connection to 10.1.2.3:80 from f (x.ts:1:2): tests and benchmarks may only reach 127.0.0.0/8 and ::1',
    );
    const udp = refusal({ protocol: 'UDP', host: 'fd00::53', port: 53, caller: 'here' });
    expect(udp.message).toContain('refused UDP to [fd00::53]:53 from here');
  });

  it('finds the caller: the first frame outside the guard and Node', () => {
    expect(callerFrame()).toMatch(/src\/netguard\/loopback\.test\.ts:\d+:\d+\)?$/);
  });
});
