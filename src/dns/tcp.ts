// One DNS-over-TCP connection: length-prefixed queries in, answers out, with the
// limits that keep a slow or stuck client from holding the server (as Knot's
// tcp-io-timeout and tcp-idle-timeout do):
// - a message must arrive whole within `ioTimeout` of its first byte;
// - answers stop being computed while the client does not read them (the socket
//   is paused once its output buffer is full, so input waits in the kernel), and
//   a backlog not taken within `ioTimeout` cuts the connection;
// - `idleTimeout` with no traffic at all closes it.
// The listener (server.ts) caps connections and closes the one idle longest.
import type { Socket } from 'node:net';

/** Why the server closed a connection itself; every one is counted. */
export const TCP_CLOSE_REASONS = ['io_timeout', 'write_timeout', 'idle', 'evicted'] as const;
export type TcpCloseReason = (typeof TCP_CLOSE_REASONS)[number];

export interface TcpLimits {
  /** Most ms from a message's first byte to its last, and to flush a backlog; 0: none. */
  readonly ioTimeout: number;
  /** Ms without traffic before the connection is closed. */
  readonly idleTimeout: number;
}

export interface TcpConnectionHooks {
  /** Read at every use, so a reload applies to open connections too. */
  limits(): TcpLimits;
  answer(msg: Buffer, client: string): Buffer | undefined;
  /** A whole message arrived: the connection is active (the listener's recency order). */
  active(conn: TcpConnection): void;
  closedBy(reason: TcpCloseReason): void;
  /** The server or listener is draining: end once nothing is half-read. */
  draining(): boolean;
}

export class TcpConnection {
  readonly socket: Socket;
  readonly #hooks: TcpConnectionHooks;
  #pending: Buffer = Buffer.alloc(0);
  #timer: NodeJS.Timeout | undefined;
  /** Paused until the client reads what is already written. */
  #blocked = false;

  constructor(socket: Socket, hooks: TcpConnectionHooks) {
    this.socket = socket;
    this.#hooks = hooks;
    socket.setTimeout(hooks.limits().idleTimeout, () => this.cut('idle'));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#disarm());
    socket.on('data', (chunk: Buffer) => this.#received(chunk));
    socket.on('drain', () => this.#drained());
  }

  /** Holds part of a query, or queries not yet answered: a drain lets it finish. */
  get busy(): boolean {
    return this.#pending.length > 0;
  }

  /** The idle timeout changed (reload). */
  setIdleTimeout(ms: number): void {
    this.socket.setTimeout(ms);
  }

  cut(reason: TcpCloseReason): void {
    if (this.socket.destroyed) return;
    this.#hooks.closedBy(reason);
    this.socket.destroy();
  }

  #received(chunk: Buffer): void {
    if (this.socket.writableEnded) return;
    const continued = this.#pending.length > 0;
    this.#pending = continued ? Buffer.concat([this.#pending, chunk]) : chunk;
    if (!this.#blocked) this.#process(continued);
  }

  /** Answers every whole message while the client keeps reading; `continued`: the first was begun before. */
  #process(continued: boolean): void {
    let completed = false;
    while (this.#pending.length >= 2 && !this.socket.writableNeedDrain) {
      const len = this.#pending.readUInt16BE(0);
      if (this.#pending.length < 2 + len) break;
      const msg = this.#pending.subarray(2, 2 + len);
      this.#pending = this.#pending.subarray(2 + len);
      completed = true;
      this.#hooks.active(this);
      const out = this.#hooks.answer(msg, this.socket.remoteAddress ?? '');
      // A TCP message cannot exceed 64 KiB; answers are capped well below, but never throw here.
      if (out && out.length <= 0xffff) {
        const framed = Buffer.allocUnsafe(2 + out.length);
        framed.writeUInt16BE(out.length, 0);
        out.copy(framed, 2);
        this.socket.write(framed);
      }
    }
    if (this.socket.writableNeedDrain) {
      // The client is not reading: stop reading its queries too, so neither side's
      // buffer grows, and give it ioTimeout to take what is written.
      this.#blocked = true;
      this.socket.pause();
      this.#arm('write_timeout');
      return;
    }
    if (this.#pending.length === 0) this.#disarm();
    // A message has begun (a new one, or the rest after whole ones): its deadline starts.
    else if (completed || !continued) this.#arm('io_timeout');
    if (this.#pending.length === 0 && this.#hooks.draining()) this.socket.end();
  }

  #drained(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    this.#disarm();
    this.socket.resume();
    this.#process(false);
  }

  #arm(reason: TcpCloseReason): void {
    this.#disarm();
    const ms = this.#hooks.limits().ioTimeout;
    if (ms > 0) this.#timer = setTimeout(() => this.cut(reason), ms);
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
