// The loopback-only guard: tests and benchmarks (and every process they start) may
// reach 127.0.0.0/8 and ::1 only. It wraps the two places every TCP connect and UDP
// send of a Node process goes through, and refuses anything else before a packet
// leaves. See README.md for what it covers and what it cannot see.
import dgram from 'node:dgram';
import dns from 'node:dns';
import net, { type LookupFunction } from 'node:net';
import { isLoopbackAddress } from './address.ts';
import { callerFrame, type Destination, guardedLookup, refusal } from './refusal.ts';

export { isLoopbackAddress } from './address.ts';

// On the wrapped functions themselves, so a second copy of this module (vitest
// evaluates it again for every test file, in the same process) sees the first.
const GUARDED = Symbol.for('fedgate.netguard.loopback');

type Guarded = { [GUARDED]?: true };
// Any function: the wrapped methods' overloads do not matter here, and originals
// are called with Reflect.apply on whatever arguments the caller passed.
type Method = (...args: never[]) => unknown;

// Node's own argument normalizer for Socket#connect, exported since Node 6 but not typed.
const normalizeArgs = (net as unknown as { _normalizeArgs(args: unknown[]): unknown[] })
  ._normalizeArgs;

/** Installs the guard in this process; calling it again changes nothing. */
export function installLoopbackGuard(): void {
  guardTcp();
  guardUdp();
}

/** Whether the guard is installed in this process. */
export function loopbackGuardInstalled(): boolean {
  return (net.Socket.prototype.connect as Guarded)[GUARDED] === true;
}

function mark<F>(fn: F): F {
  (fn as Guarded)[GUARDED] = true;
  return fn;
}

// ---- TCP ------------------------------------------------------------------------------

// net.connect, tls.connect, http(s) agents, http2.connect, undici and fetch all end
// in net.Socket.prototype.connect (test/netguard.test.ts proves each).
function guardTcp(): void {
  const proto = net.Socket.prototype as unknown as Record<'connect', Method>;
  if ((proto.connect as Guarded)[GUARDED]) return;
  const connect = proto.connect;
  // Without it the guard could not read the destination: refuse to run unguarded.
  if (typeof normalizeArgs !== 'function') {
    throw new Error('loopback-only guard: net._normalizeArgs is gone; the guard needs updating');
  }
  proto.connect = mark(function guardedConnect(this: net.Socket, ...args: unknown[]) {
    // net.connect passes the arguments already normalized, as one array; keep it so.
    const normalized = (Array.isArray(args[0]) ? args[0] : normalizeArgs(args)) as unknown[];
    const options = normalized[0] as net.TcpSocketConnectOpts & { path?: string };
    if (options && typeof options === 'object' && options.path == null) {
      const host = options.host || 'localhost';
      const dest: Destination = { protocol: 'TCP', host, port: options.port, caller: '' };
      if (net.isIP(host)) {
        if (!isLoopbackAddress(host)) {
          dest.caller = callerFrame();
          this.destroy();
          throw refusal(dest);
        }
      } else if (options.lookup == null || typeof options.lookup === 'function') {
        // (A lookup that is not a function is left for Node to reject, as it does.)
        dest.caller = callerFrame();
        const lookup = (options.lookup ?? dns.lookup) as LookupFunction;
        normalized[0] = { ...options, lookup: guardedLookup(lookup, dest) };
      }
    }
    return Reflect.apply(connect, this, [normalized]);
  });
}

// ---- UDP ------------------------------------------------------------------------------

type UdpSocket = dgram.Socket & { type: 'udp4' | 'udp6' };
type UdpMethods = Record<'send' | 'connect' | 'connectSync', Method>;
type Resolved = (err: Error | null, ip?: string) => void;

function isConnected(socket: dgram.Socket): boolean {
  try {
    socket.remoteAddress();
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves `name` as the socket itself would (its own `lookup` option and family,
 * through the handle dgram keeps in its internal state), or with dns.lookup if
 * that state is not where it used to be. The answer is checked by the guard.
 */
function resolveFor(socket: UdpSocket, dest: Destination, done: Resolved): void {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state =
    key && (socket as unknown as Record<symbol, { handle?: { lookup?: unknown } }>)[key];
  const own = state?.handle?.lookup;
  const family = socket.type === 'udp6' ? 6 : 4;
  const lookup = (
    typeof own === 'function'
      ? (name: string, _family: number, cb: Resolved) => own(name, cb)
      : dns.lookup
  ) as LookupFunction;
  const guarded = guardedLookup(lookup, dest) as unknown as (...a: unknown[]) => void;
  guarded(dest.host, family, done);
}

/** Errors of an asynchronous send or connect go where dgram's own would: callback, else 'error'. */
function report(socket: dgram.Socket, err: Error, callback: unknown): void {
  process.nextTick(() => {
    if (typeof callback === 'function') callback(err);
    else socket.emit('error', err);
  });
}

/**
 * Checks `address` (the argument at `at` in `args`) and calls `original`: at once
 * for no address (dgram's default is loopback) or a loopback literal; never, with
 * the guard's error thrown, for another literal; after a guarded lookup for a name,
 * with the name replaced by the address it resolved to.
 */
function checked(
  socket: UdpSocket,
  original: Method,
  args: unknown[],
  at: number,
  callback: unknown,
): unknown {
  const address = args[at];
  if (typeof address !== 'string' || address === '') return Reflect.apply(original, socket, args);
  const dest: Destination = { protocol: 'UDP', host: address, port: args[at - 1], caller: '' };
  if (net.isIP(address)) {
    if (isLoopbackAddress(address)) return Reflect.apply(original, socket, args);
    dest.caller = callerFrame();
    throw refusal(dest);
  }
  dest.caller = callerFrame();
  resolveFor(socket, dest, (err, ip) => {
    if (err) return report(socket, err, callback);
    const resolved = [...args];
    resolved[at] = ip;
    try {
      Reflect.apply(original, socket, resolved);
    } catch (e) {
      // Closed while the name resolved: dgram drops such a send silently too.
      if ((e as { code?: string }).code === 'ERR_SOCKET_DGRAM_NOT_RUNNING') return;
      report(socket, e as Error, callback);
    }
  });
  return undefined;
}

function guardUdp(): void {
  const proto = dgram.Socket.prototype as unknown as UdpMethods;
  if ((proto.send as Guarded)[GUARDED]) return;
  const { send, connect, connectSync } = proto;

  // send(msg, [offset, length,] port, address[, cb]) and its shorter forms, read as
  // dgram reads them; a connected socket names no address (it was checked at connect).
  proto.send = mark(function guardedSend(this: UdpSocket, ...args: unknown[]) {
    if (isConnected(this)) return Reflect.apply(send, this, args);
    const [port, address] = [args[3], args[4]];
    const long = Boolean(address) || (Boolean(port) && typeof port !== 'function');
    return long ? checked(this, send, args, 4, args[5]) : checked(this, send, args, 2, args[3]);
  });

  proto.connect = mark(function guardedConnect(this: UdpSocket, ...args: unknown[]) {
    return checked(this, connect, args, 1, args[2]);
  });

  // Takes IP literals only, and throws its errors: the check is synchronous too.
  if (typeof connectSync === 'function') {
    proto.connectSync = mark(function guardedConnectSync(this: UdpSocket, ...args: unknown[]) {
      const address = args[1];
      if (typeof address === 'string' && net.isIP(address) && !isLoopbackAddress(address)) {
        throw refusal({ protocol: 'UDP', host: address, port: args[0], caller: callerFrame() });
      }
      return Reflect.apply(connectSync, this, args);
    });
  }
}
