// HTTP/2 with prior knowledge and HTTP/1.1 on one plain port: a connection that
// begins with the HTTP/2 connection preface (RFC 9113 §3.4) speaks HTTP/2. Its
// first bytes are read, compared, and put back (unshift) for the server that takes
// it, so nothing is lost. Most HTTP/1.1 requests differ at the first byte (only
// methods starting with P share it), so the wait is for one packet.
import type { Socket } from 'node:net';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * 'h2': `head` begins the preface and holds all of it; 'h1': it cannot be the
 * preface; 'more': it is a beginning of the preface.
 */
export function prefaceOf(head: Buffer): 'h2' | 'h1' | 'more' {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (H2_PREFACE.compare(head, 0, n, 0, n) !== 0) return 'h1';
  return n === H2_PREFACE.length ? 'h2' : 'more';
}

/**
 * Reads `socket`'s first bytes until they tell, then hands it on with them put back:
 * `then(true)` for HTTP/2. A connection that sends nothing within `timeoutMs` (the
 * headers timeout, which Node's servers would apply) is closed.
 */
export function sniffPreface(socket: Socket, timeoutMs: number, then: (h2: boolean) => void): void {
  let head: Buffer | undefined;
  const timer = timeoutMs > 0 ? setTimeout(() => socket.destroy(), timeoutMs).unref() : undefined;
  const done = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onClose);
  };
  const onClose = () => done();
  // The HTTP server allows half-open sockets and closes them itself: before it has
  // this one, a client that leaves without a byte must be closed here.
  const onEnd = () => {
    done();
    socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    head = head ? Buffer.concat([head, chunk]) : chunk;
    const kind = prefaceOf(head);
    if (kind === 'more') return;
    done();
    socket.pause();
    socket.unshift(head);
    then(kind === 'h2');
    // Node's HTTP/1.1 server reads by 'data' without resuming a paused socket.
    if (kind === 'h1') socket.resume();
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onClose);
}
