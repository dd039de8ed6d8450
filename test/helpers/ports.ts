// Free ports on loopback for servers a test starts as child processes.
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

async function tcpPort(port = 0): Promise<number | undefined> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const addr = server.address();
      server.close(() => resolve(typeof addr === 'object' && addr ? addr.port : undefined));
    });
  });
}

async function udpFree(port: number): Promise<boolean> {
  const sock = createSocket('udp4');
  return new Promise((resolve) => {
    sock.once('error', () => resolve(false));
    sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
  });
}

/**
 * A port free for TCP (and, with `udp`, for UDP too) on 127.0.0.1 right now; another
 * process may still take it before the caller listens.
 */
export async function freePort(opts: { udp?: boolean } = {}): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await tcpPort();
    if (port !== undefined && (!opts.udp || (await udpFree(port)))) return port;
  }
  throw new Error('no free port on 127.0.0.1 after 20 tries');
}

/** Whether a TCP connection to 127.0.0.1:port is refused now (nothing listens). */
export function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}
