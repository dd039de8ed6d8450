// A gRPC echo server for a local-federation pod (echo.proto): unary, server, client
// and bidirectional streams, each reply naming where it runs; request metadata comes
// back as `echo-*` headers and trailers; a chosen status on request; grpc.health.v1
// on the same server, flipped by `localfed ctl health`. Streams honour backpressure
// both ways (writes wait for 'drain', reads pause), so a 100 MB stream keeps memory
// flat. The server owns its TCP listener and hands connections to grpc-js, so the
// "reset" failure mode can cut a connection with a TCP RST as the HTTP backend does.
// The Gateway API conformance suite's GrpcEcho is served beside it (gateway-conformance-echo.ts).
import { createServer, type Socket, type Server as TcpServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { hostPort } from '../host-port.ts';
import { listen } from './backend-sockets.ts';
import { addConformanceEcho } from './gateway-conformance-echo.ts';
import {
  ECHO_SERVICE,
  type EchoReply,
  type EchoRequest,
  type EchoSummary,
  type EchoWhere,
  echoServiceClient,
} from './grpc-echo-proto.ts';
import type { PodPlace } from './pod-info.ts';

/** Where the pod runs (a backend's PodInfo will do); `ip` names it in `address`. */
export type EchoPodInfo = PodPlace & { ip?: string };

/** As the HTTP backend's mode: answer, fail every call (UNAVAILABLE), or reset. */
export type EchoMode = 'ok' | 'error503' | 'reset';

export interface GrpcEchoTls {
  cert: string;
  key: string;
  /** Set: clients must present a certificate this CA signed (mutual TLS). */
  clientCa?: string;
}

export interface GrpcEchoOptions {
  host: string;
  port: number;
  info: EchoPodInfo;
  tls?: GrpcEchoTls;
  /** Read at each call; health checks are not affected, as /healthz is not. */
  mode?: () => EchoMode;
  /** Called at the start of every echo call (not health checks), whatever the mode. */
  onCall?: () => void;
}

export interface GrpcEcho {
  port: number;
  stop(): Promise<void>;
  setHealth(service: string, status: 'SERVING' | 'NOT_SERVING'): void;
}

/** The metadata keys that choose a call's status and message. */
export const STATUS_KEY = 'x-echo-status';
export const MESSAGE_KEY = 'x-echo-message';
export const ECHO_PREFIX = 'echo-';

const MAX_COUNT = 1_000_000;
/** Replies fit grpc-js's default 4 MiB receive limit with room for the other fields. */
export const MAX_SIZE = 4 * 1024 * 1024 - 1024;
const MAX_DELAY_MS = 60_000;
const MAX_TEXT = 4096;

let pattern: Buffer | undefined;
/** `size` bytes, byte k being k mod 256, as the HTTP backend's /bytes. */
function patterned(size: number): Buffer {
  if (!pattern) {
    pattern = Buffer.alloc(MAX_SIZE);
    for (let i = 0; i < pattern.length; i++) pattern[i] = i & 0xff;
  }
  return pattern.subarray(0, size);
}

type Failure = Partial<grpc.StatusObject> & Error;
/** What every kind of server call has (grpc-js does not export the name). */
type SurfaceCall = Pick<
  grpc.ServerUnaryCall<unknown, unknown>,
  'metadata' | 'getPeer' | 'getHost' | 'sendMetadata'
>;

function failure(code: number, details: string, metadata?: grpc.Metadata): Failure {
  const err = Object.assign(new Error(details), { code, details });
  return metadata ? Object.assign(err, { metadata }) : err;
}

/** Every request key back under `echo-`, for headers and again for trailers. */
function echoed(request: grpc.Metadata): grpc.Metadata {
  const out = new grpc.Metadata();
  for (const [key, values] of Object.entries(request.toJSON())) {
    for (const v of values) out.add(`${ECHO_PREFIX}${key}`, v);
  }
  return out;
}

/** The status a request or the call's metadata asks for, or undefined for OK. */
function chosenStatus(
  status: number,
  message: string,
  trailers: grpc.Metadata,
): Failure | undefined {
  if (status === 0) return undefined;
  if (!Number.isInteger(status) || status < 0 || status > 16) {
    return failure(grpc.status.INVALID_ARGUMENT, `status must be 0-16, got ${status}`, trailers);
  }
  return failure(status, message || `status ${status} as asked`, trailers);
}

function metadataStatus(call: SurfaceCall, trailers: grpc.Metadata) {
  const [code] = call.metadata.get(STATUS_KEY);
  if (code === undefined) return undefined;
  const [message] = call.metadata.get(MESSAGE_KEY);
  const n = Number(String(code));
  return chosenStatus(Number.isNaN(n) ? -1 : n, String(message ?? ''), trailers);
}

/** Resolves when `stream` can take more, or the call is gone. */
function drained(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('cancelled', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('cancelled', done);
    stream.on('close', done);
  });
}

export async function startGrpcEcho(options: GrpcEchoOptions): Promise<GrpcEcho> {
  const server = new grpc.Server();
  const health = new HealthImplementation({ '': 'SERVING', [ECHO_SERVICE]: 'SERVING' });
  health.addToServer(server as Parameters<HealthImplementation['addToServer']>[0]);
  const sockets = new Map<string, Socket>();
  let where: EchoWhere = { ...describe(options.info), address: '' };
  const mode = options.mode ?? (() => 'ok');

  /** Applies the failure mode; true when the call was failed or cut. */
  const failedByMode = (call: SurfaceCall, fail: (e: Failure) => void): boolean => {
    options.onCall?.();
    const m = mode();
    if (m === 'ok') return false;
    if (m === 'reset') {
      const socket = sockets.get(call.getPeer());
      if (socket) {
        socket.resetAndDestroy();
        return true;
      }
    }
    fail(failure(grpc.status.UNAVAILABLE, `${options.info.pod} is failing (localfed ctl)`));
    return true;
  };
  const reply = (call: SurfaceCall, req: EchoRequest, index: number): EchoReply => ({
    message: req.message,
    payload: req.payload,
    where,
    index,
    authority: call.getHost(),
  });
  const start = (call: SurfaceCall): grpc.Metadata => {
    call.sendMetadata(echoed(call.metadata));
    return echoed(call.metadata);
  };

  server.addService(echoServiceClient().service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      if (failedByMode(call, (e) => cb(e))) return;
      const trailers = start(call);
      const req = call.request;
      const answer = () => {
        const err =
          chosenStatus(req.status, req.statusMessage, trailers) ?? metadataStatus(call, trailers);
        if (err) cb(err);
        else cb(null, reply(call, req, 0), trailers);
      };
      if (req.delayMs <= 0) return answer();
      const timer = setTimeout(answer, Math.min(req.delayMs, MAX_DELAY_MS));
      call.on('cancelled', () => clearTimeout(timer));
    },

    async ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      if (failedByMode(call, (e) => call.emit('error', e))) return;
      const trailers = start(call);
      const req = call.request;
      const count = req.count === 0 ? 1 : req.count;
      if (count > MAX_COUNT || req.size > MAX_SIZE) {
        const limit = `count at most ${MAX_COUNT}, size at most ${MAX_SIZE}`;
        call.emit('error', failure(grpc.status.INVALID_ARGUMENT, limit, trailers));
        return;
      }
      const payload = req.size > 0 ? patterned(req.size) : req.payload;
      for (let i = 0; i < count && !call.cancelled; i++) {
        if (!call.write({ ...reply(call, req, i), payload })) await drained(call);
      }
      if (call.cancelled) return;
      const err =
        chosenStatus(req.status, req.statusMessage, trailers) ?? metadataStatus(call, trailers);
      if (err) call.emit('error', err);
      else call.end(trailers);
    },

    ClientStream(
      call: grpc.ServerReadableStream<EchoRequest, EchoSummary>,
      cb: grpc.sendUnaryData<EchoSummary>,
    ) {
      if (failedByMode(call, (e) => cb(e))) return;
      const trailers = start(call);
      let messages = 0;
      let bytes = 0;
      let text = '';
      let done = false;
      call.on('data', (req: EchoRequest) => {
        if (done) return;
        messages++;
        bytes += req.payload.length;
        if (text.length < MAX_TEXT) text = `${text}${messages > 1 ? '\n' : ''}${req.message}`;
        const err = chosenStatus(req.status, req.statusMessage, trailers);
        if (err) {
          done = true;
          cb(err);
        }
      });
      call.on('end', () => {
        if (done) return;
        done = true;
        const err = metadataStatus(call, trailers);
        if (err) return cb(err);
        const summary = { messages, bytes, where, authority: call.getHost() };
        cb(null, { ...summary, messagesText: text.slice(0, MAX_TEXT) }, trailers);
      });
    },

    Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
      if (failedByMode(call, (e) => call.emit('error', e))) return;
      const trailers = start(call);
      let index = 0;
      let done = false;
      call.on('data', (req: EchoRequest) => {
        if (done) return;
        const err = chosenStatus(req.status, req.statusMessage, trailers);
        if (err) {
          done = true;
          call.emit('error', err);
          return;
        }
        if (!call.write(reply(call, req, index++))) {
          call.pause();
          void drained(call).then(() => call.resume());
        }
      });
      call.on('end', () => {
        if (done) return;
        done = true;
        const err = metadataStatus(call, trailers);
        if (err) call.emit('error', err);
        else call.end(trailers);
      });
    },
  });

  addConformanceEcho(server, () => where, failedByMode);

  const injector = server.createConnectionInjector(
    options.tls
      ? grpc.ServerCredentials.createSsl(
          options.tls.clientCa === undefined ? null : Buffer.from(options.tls.clientCa),
          [
            {
              cert_chain: Buffer.from(options.tls.cert),
              private_key: Buffer.from(options.tls.key),
            },
          ],
          options.tls.clientCa !== undefined,
        )
      : grpc.ServerCredentials.createInsecure(),
  );
  const listener: TcpServer = createServer((socket) => {
    // As grpc-js writes a call's peer (no brackets around IPv6), to find it by getPeer().
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    sockets.set(key, socket);
    socket.on('close', () => sockets.delete(key));
    injector.injectConnection(socket);
  });
  await listen(listener, options.port, options.host);
  const address = listener.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  where = { ...where, address: hostPort({ host: options.info.ip ?? options.host, port }) };

  return {
    port,
    setHealth(service: string, status: ServingStatus) {
      health.setStatus(service, status);
    },
    async stop() {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      injector.destroy();
      for (const s of sockets.values()) s.destroy();
      server.forceShutdown();
      await closed;
    },
  };
}

function describe(info: EchoPodInfo): PodPlace {
  const { cluster, region, zone, node, pod, namespace, service } = info;
  return { cluster, region, zone, node, pod, namespace, service };
}
