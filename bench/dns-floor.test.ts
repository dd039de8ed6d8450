import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFloor } from './dns-floor.ts';
import { type DnsProcess, exchange, queryPacket } from './dns-process.ts';
import { freePort } from './lib.ts';

/** A stand-in "answer": the query with QR and AA set and a marker byte after it. */
function answerTo(name: string, type: string, marker: number): Buffer {
  const a = Buffer.concat([queryPacket(0, name, type), Buffer.from([marker])]);
  a[2] = 0x84; // QR, AA
  return a;
}

describe('the bare Node floor', () => {
  let dir = '';
  let floor: DnsProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-floor-test-'));
    const answers = [
      { name: 'example.test', type: 'SOA', marker: 1 },
      { name: 'web.example.test', type: 'A', marker: 2 },
    ].map((q) => ({
      question: queryPacket(0, q.name, q.type).subarray(12),
      answer: answerTo(q.name, q.type, q.marker),
    }));
    floor = await startFloor({ dir, port: await freePort(), answers, apexes: ['example.test'] });
  });
  afterAll(async () => {
    await floor?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const ask = (id: number, name: string, type: string, flags = 0) => {
    if (floor === undefined) throw new Error('the floor did not start');
    return exchange(floor.host, floor.port, queryPacket(id, name, type, flags), 5_000);
  };

  it("answers a known question with its cached packet, the query's ID and RD patched in", async () => {
    const [a, b] = await Promise.all([
      ask(0x1234, 'web.example.test', 'A', 0x0100),
      ask(0xbeef, 'web.example.test', 'A'),
    ]);
    expect(a?.readUInt16BE(0)).toBe(0x1234);
    expect(a?.[2]).toBe(0x85); // QR, AA and the query's RD
    expect(a?.at(-1)).toBe(2);
    expect(b?.readUInt16BE(0)).toBe(0xbeef);
    expect(b?.[2]).toBe(0x84);
    expect(b?.at(-1)).toBe(2);
  });

  it('refuses a question it has no packet for', async () => {
    const r = await ask(7, 'other.example.test', 'A');
    expect(r?.readUInt16BE(0)).toBe(7);
    expect((r?.[2] ?? 0) & 0x80).toBe(0x80); // QR
    expect((r?.[3] ?? 0) & 0x0f).toBe(5); // REFUSED
  });
});
