// The gRPC benchmark's one unary method, on @grpc/grpc-js: the backend serving it, a
// grpc-js call to check a target, and the request body h2load sends. Messages are
// opaque bytes (the method echoes them): the benchmark measures the proxy's HTTP/2 and
// gRPC framing, not a protobuf codec, so there is none on either side.
import {
  type CallOptions,
  type ChannelCredentials,
  Client,
  credentials,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type ServiceError,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { H2loadSummary } from './h2load.ts';

/** The method's path: what h2load posts to, and what a proxy routes as a gRPC call. */
export const UNARY_PATH = '/fedgate.bench.v1.Bench/Echo';

/** The request (and so the reply) payload: 16 bytes, the gRPC analogue of the HTTP bench's small body. */
export const PAYLOAD = Buffer.from('fedgate-bench-01');

const identity = (b: Buffer) => b;

/** The service: `Echo`, bytes in, bytes out. */
export const BENCH_SERVICE: ServiceDefinition = {
  Echo: {
    path: UNARY_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/**
 * The body of one unary call on the wire (gRPC over HTTP/2: a 1-byte compressed flag,
 * a 4-byte big-endian length, the message), for a load tool that sends a fixed body.
 */
export function unaryRequestBody(message: Buffer = PAYLOAD): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/**
 * Calls h2load counted as succeeded (HTTP 200) that carried no reply message: a gRPC
 * error answered with trailers only. h2load does not read grpc-status, so the reply
 * bytes are counted: each successful call carries one framed reply of `replyBytes`.
 * The DATA bytes also count replies to calls cut off by the run's end, so this
 * undercounts by at most those (the calls in flight), and never counts a good call.
 */
export function callsWithoutReply(
  run: Pick<H2loadSummary, 'succeeded' | 'dataBytes'>,
  replyBytes: number,
): number {
  return Math.max(0, run.succeeded - Math.floor(run.dataBytes / replyBytes));
}

export interface GrpcBackend {
  port: number;
  stop(): Promise<void>;
}

/** A grpc-js server on host:port (0: any) whose Echo answers each call with its payload. */
export async function startGrpcBackend(host: string, port: number): Promise<GrpcBackend> {
  const server = new Server();
  server.addService(BENCH_SERVICE, {
    Echo: (call: ServerUnaryCall<Buffer, Buffer>, done: sendUnaryData<Buffer>) =>
      done(null, call.request),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port: bound,
    stop: () =>
      new Promise<void>((resolve) => {
        // Calls still open after 2 s are cut: a benchmark's load has ended by then.
        const timer = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

export interface CallTarget {
  /** host:port the channel connects to. */
  address: string;
  /** The :authority every call carries (a proxy routes on it); the address's by default. */
  authority?: string;
  /** TLS credentials; cleartext HTTP/2 (h2c) when absent. */
  credentials?: ChannelCredentials;
}

/**
 * One Echo call to `target` with a 5 s deadline: resolves once the reply equals the
 * payload sent, rejects with the gRPC status (code, details) otherwise.
 */
export async function callEcho(target: CallTarget, message: Buffer = PAYLOAD): Promise<void> {
  const client = new Client(target.address, target.credentials ?? credentials.createInsecure(), {
    ...(target.authority !== undefined && { 'grpc.default_authority': target.authority }),
  });
  try {
    const opts: CallOptions = { deadline: Date.now() + 5_000 };
    const reply = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest(
        UNARY_PATH,
        identity,
        identity,
        message,
        opts,
        (err: ServiceError | null, r?: Buffer) =>
          err || r === undefined ? reject(err ?? new Error('no reply')) : resolve(r),
      ),
    );
    if (!reply.equals(message)) {
      throw new Error(`Echo through ${target.address} answered ${reply.length} other bytes`);
    }
  } catch (e) {
    const err = e as Partial<ServiceError>;
    throw new Error(
      `gRPC Echo through ${target.address}${target.authority ? ` (:authority ${target.authority})` : ''} failed: ${err.code !== undefined ? `status ${err.code} ` : ''}${err.details ?? err.message}`,
    );
  } finally {
    client.close();
  }
}
