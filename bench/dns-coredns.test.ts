import { describe, expect, it } from 'vitest';
import { corefile, zoneFileName } from './dns-coredns.ts';

describe('corefile', () => {
  it('serves each zone from its own file on the one address, bound, minimal, never reloaded', () => {
    expect(corefile('/tmp/z', '127.0.0.1', 5353, ['clusterset.local', 'example.test.'])).toBe(
      [
        'clusterset.local:5353 {',
        '    bind 127.0.0.1',
        '    errors',
        '    minimal',
        '    file /tmp/z/clusterset.local.zone {',
        '        reload 0',
        '    }',
        '}',
        '',
        'example.test:5353 {',
        '    bind 127.0.0.1',
        '    errors',
        '    minimal',
        '    file /tmp/z/example.test.zone {',
        '        reload 0',
        '    }',
        '}',
        '',
      ].join('\n'),
    );
    expect(zoneFileName('example.test.')).toBe('example.test.zone');
  });

  it('refuses to serve no zone at all', () => {
    expect(() => corefile('/tmp/z', '127.0.0.1', 5353, [])).toThrow(/at least one zone/);
  });
});
