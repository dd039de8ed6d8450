import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ClientConnections } from './client-connections.ts';

/** Enough of a socket for the counter: its peer address, and 'close'. */
function socket(remoteAddress: string): Socket & { close(): void } {
  const s = Object.assign(new EventEmitter(), { remoteAddress }) as unknown as Socket & {
    close(): void;
  };
  s.close = () => s.emit('close');
  return s;
}

describe('ClientConnections', () => {
  it('caps the open connections of one netblock, and frees a place at each close', () => {
    const c = new ClientConnections({ max: 2, ipv4Prefix: 24, ipv6Prefix: 56 });
    const a = socket('127.9.1.1');
    const b = socket('127.9.1.2');
    expect(c.admit(a)).toBe(true);
    expect(c.admit(b)).toBe(true);
    // The same /24: over the cap. Another /24: its own count.
    expect(c.admit(socket('127.9.1.3'))).toBe(false);
    expect(c.admit(socket('::ffff:127.9.1.4'))).toBe(false);
    expect(c.admit(socket('127.9.2.1'))).toBe(true);
    expect(c.held('127.9.1.9')).toBe(2);
    a.close();
    expect(c.held('127.9.1.9')).toBe(1);
    expect(c.admit(socket('127.9.1.5'))).toBe(true);
  });

  it('counts nothing with max 0, and a reload changes the cap for new connections', () => {
    const c = new ClientConnections({ max: 0, ipv4Prefix: 24, ipv6Prefix: 56 });
    for (let i = 0; i < 5; i++) expect(c.admit(socket('127.9.1.1'))).toBe(true);
    expect(c.held('127.9.1.1')).toBe(0);
    c.reconfigure({ max: 1, ipv4Prefix: 32, ipv6Prefix: 128 });
    expect(c.admit(socket('127.9.1.1'))).toBe(true);
    expect(c.admit(socket('127.9.1.1'))).toBe(false);
    expect(c.admit(socket('127.9.1.2'))).toBe(true);
  });
});
