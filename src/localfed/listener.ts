// The listening side of a member's API front (the simulator's ApiServer, a real member's
// relay): listen at host:port (0 picks one, kept for later restarts, so a `refuse` fault
// ends with the same URL serving again), and stop listening cutting every connection.
import type { Server } from 'node:https';
import type { Socket } from 'node:net';

export class Listener {
  readonly host: string;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #port: number;
  #listening = false;

  constructor(server: Server, host: string, port: number) {
    this.#server = server;
    this.host = host;
    this.#port = port;
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    // A client that sends garbage gets its connection closed, never the process.
    server.on('clientError', (_err, socket) => socket.destroy());
    server.on('tlsClientError', () => {});
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<void> {
    if (this.#listening) return;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(this.#port, this.host, () => {
        this.#server.off('error', onError);
        const addr = this.#server.address();
        if (addr && typeof addr === 'object') this.#port = addr.port;
        resolve();
      });
    });
    this.#listening = true;
  }

  /** Stops listening (ECONNREFUSED from now on) and cuts every open connection. */
  async close(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}
