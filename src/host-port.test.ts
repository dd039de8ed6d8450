import { describe, expect, it } from 'vitest';
import { hostPort } from './host-port.ts';

describe('hostPort', () => {
  it('joins a name or an IPv4 address to its port with a colon', () => {
    expect(hostPort({ host: '127.0.0.1', port: 53 })).toBe('127.0.0.1:53');
    expect(hostPort({ host: 'localhost', port: '8080' })).toBe('localhost:8080');
    expect(hostPort({ host: '0.0.0.0', port: 0 })).toBe('0.0.0.0:0');
  });

  it('brackets an IPv6 literal, so its colons are not the port separator', () => {
    expect(hostPort({ host: '::1', port: 53 })).toBe('[::1]:53');
    expect(hostPort({ host: '::', port: 0 })).toBe('[::]:0');
    expect(hostPort({ host: '::ffff:127.0.0.1', port: 80 })).toBe('[::ffff:127.0.0.1]:80');
  });

  it('without a port, writes the host as it goes before one', () => {
    expect(hostPort({ host: '::1' })).toBe('[::1]');
    expect(hostPort({ host: '127.0.0.1' })).toBe('127.0.0.1');
  });
});
