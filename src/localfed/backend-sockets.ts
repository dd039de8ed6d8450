// Listening and closing for the local federation's pods and load balancers: listen
// resolving once bound (or rejecting with the bind error), every accepted socket
// tracked so stopping cuts them rather than waiting for clients to hang up.
import type { Server, Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/** Anything that listens like a net.Server: node:http, node:https and node:net servers. */
type Listening = Pick<Server, 'listen' | 'once' | 'off' | 'on' | 'close'>;

export async function listen(server: Listening, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ port, host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export function trackSockets(server: Listening, sockets: Set<Socket>): void {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
}

export async function close(server: Listening, sockets: Set<Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const s of sockets) s.destroy();
  await closed;
}

/**
 * Cuts a connection with a TCP RST. A TLS socket has no TCP handle of its own: the
 * connection under it is the tracked socket with the same peer.
 */
export function resetConnection(socket: Socket, tracked: Iterable<Socket>): void {
  if (!(socket instanceof TLSSocket)) {
    socket.resetAndDestroy();
    return;
  }
  for (const raw of tracked) {
    if (raw === socket || raw.remotePort !== socket.remotePort) continue;
    if (raw.remoteAddress !== socket.remoteAddress) continue;
    raw.resetAndDestroy();
    break;
  }
  socket.destroy();
}
