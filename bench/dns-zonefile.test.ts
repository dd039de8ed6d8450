import { describe, expect, it } from 'vitest';
import { type MirroredRecord, zoneFiles } from './dns-zonefile.ts';

const rr = (name: string, type: string, data: string, ttl = 5): MirroredRecord => ({
  name,
  type,
  ttl,
  data,
});
const SOA = 'ns1.example.test. hostmaster.example.test. 1 3600 600 86400 30';

describe('zoneFiles', () => {
  it('puts each owner in the longest origin that holds it, the SOA first', () => {
    const [outer, inner] = zoneFiles(
      [
        {
          name: 'web.svc.example.test',
          type: 'A',
          records: [rr('web.svc.example.test.', 'A', '127.0.0.1')],
        },
        {
          name: 'x.sub.example.test',
          type: 'A',
          records: [rr('x.sub.example.test.', 'A', '127.0.0.2')],
        },
        { name: 'sub.example.test', type: 'SOA', records: [rr('sub.example.test.', 'SOA', SOA)] },
        { name: 'example.test', type: 'SOA', records: [rr('example.test.', 'SOA', SOA, 30)] },
        { name: 'other.test', type: 'A', records: [rr('other.test.', 'A', '127.0.0.3')] },
      ],
      ['example.test', 'sub.example.test'],
    );
    expect(outer).toEqual({
      origin: 'example.test',
      text: [
        '$ORIGIN example.test.',
        '$TTL 5',
        `example.test. 30 IN SOA ${SOA}`,
        'web.svc.example.test. 5 IN A 127.0.0.1',
        '',
      ].join('\n'),
    });
    expect(inner?.text.split('\n')).toEqual([
      '$ORIGIN sub.example.test.',
      '$TTL 5',
      `sub.example.test. 5 IN SOA ${SOA}`,
      'x.sub.example.test. 5 IN A 127.0.0.2',
      '',
    ]);
  });

  it('joins the records one name was answered with into one set, matching names without case', () => {
    const [zone] = zoneFiles(
      [
        {
          name: 'Web.Example.Test',
          type: 'A',
          records: [
            rr('web.example.test.', 'A', '127.0.0.1'),
            rr('WEB.example.test.', 'A', '127.0.0.2'),
          ],
        },
        {
          name: 'web.example.test',
          type: 'A',
          records: [rr('web.example.test.', 'A', '127.0.0.1')],
        },
      ],
      ['example.test'],
    );
    expect(zone?.text).toContain(
      'web.example.test. 5 IN A 127.0.0.1\nweb.example.test. 5 IN A 127.0.0.2\n',
    );
    expect(zone?.text.match(/127\.0\.0\.1/g)).toHaveLength(1);
  });

  it("prefers a name's own answer over the same record set seen in another name's answer", () => {
    const [zone] = zoneFiles(
      [
        {
          name: 'alias.example.test',
          type: 'A',
          records: [
            rr('alias.example.test.', 'CNAME', 'web.example.test.'),
            rr('web.example.test.', 'A', '127.0.0.9', 60),
          ],
        },
        {
          name: 'web.example.test',
          type: 'A',
          records: [rr('web.example.test.', 'A', '127.0.0.1')],
        },
        {
          name: 'other.example.test',
          type: 'A',
          records: [
            rr('other.example.test.', 'CNAME', 'tail.example.test.'),
            rr('tail.example.test.', 'A', '127.0.0.7'),
          ],
        },
      ],
      ['example.test'],
    );
    const lines = zone?.text.split('\n') ?? [];
    expect(lines).toContain('web.example.test. 5 IN A 127.0.0.1');
    expect(lines).not.toContain('web.example.test. 60 IN A 127.0.0.9');
    // Seen only as a chain's target: kept, so the chain resolves.
    expect(lines).toContain('tail.example.test. 5 IN A 127.0.0.7');
    expect(lines).toContain('alias.example.test. 5 IN CNAME web.example.test.');
  });
});
