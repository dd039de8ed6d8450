import { describe, expect, it } from 'vitest';
import { H2_PREFACE, prefaceOf } from './preface.ts';

describe('prefaceOf', () => {
  it('tells HTTP/1.1 at the first byte that differs', () => {
    expect(prefaceOf(Buffer.from('GET / HTTP/1.1\r\n'))).toBe('h1');
    expect(prefaceOf(Buffer.from('P'))).toBe('more');
    expect(prefaceOf(Buffer.from('PO'))).toBe('h1');
    expect(prefaceOf(Buffer.from('PRI * HTTP/1.1\r\n'))).toBe('h1');
  });

  it('waits for the whole preface before saying HTTP/2', () => {
    expect(prefaceOf(H2_PREFACE.subarray(0, 23))).toBe('more');
    expect(prefaceOf(H2_PREFACE)).toBe('h2');
    expect(prefaceOf(Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4])]))).toBe('h2');
  });
});
