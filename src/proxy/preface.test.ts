import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { H2_PREFACE, prefaceOf, sniffPreface } from './preface.ts';

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

describe('sniffPreface', () => {
  async function accepted(send: (s: Socket) => void, timeoutMs = 5000) {
    const server = createServer({ allowHalfOpen: true });
    server.listen(0, '127.200.2.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const client = connect({ host: '127.200.2.1', port });
    client.on('error', () => {});
    const [socket] = (await once(server, 'connection')) as [Socket];
    const told = new Promise<{ h2: boolean; head: Buffer }>((resolve) =>
      sniffPreface(socket, timeoutMs, (h2) => {
        socket.once('data', (head: Buffer) => resolve({ h2, head }));
        socket.resume();
      }),
    );
    send(client);
    return {
      told,
      socket,
      close: () => {
        client.destroy();
        server.close();
      },
    };
  }

  it('hands on HTTP/2 and HTTP/1.1 with their first bytes put back', async () => {
    const h2 = await accepted((c) => {
      c.write(H2_PREFACE.subarray(0, 5));
      setTimeout(() => c.write(H2_PREFACE.subarray(5)), 20);
    });
    expect(await h2.told).toEqual({ h2: true, head: H2_PREFACE });
    h2.close();
    const h1 = await accepted((c) => c.write('GET / HTTP/1.1\r\n'));
    const r = await h1.told;
    expect(r.h2).toBe(false);
    expect(r.head.toString()).toBe('GET / HTTP/1.1\r\n');
    h1.close();
  });

  it('closes a connection that leaves or stays silent before saying anything', async () => {
    const left = await accepted((c) => c.end());
    await once(left.socket, 'close');
    left.close();
    const silent = await accepted(() => {}, 50);
    await once(silent.socket, 'close');
    silent.close();
  });
});
