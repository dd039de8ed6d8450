// A client of the echo service (and of grpc.health.v1 on the same server) for tests,
// the demo and `fedgate grpc`: promises for the calls that answer once, the grpc-js
// streams as they are for the others. `authority` sets the :authority every call
// carries, which is how fedgate tells the federated service the call is for.
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import {
  type EchoReply,
  type EchoRequest,
  type EchoSummary,
  echoRequest,
  echoServiceClient,
} from './grpc-echo-proto.ts';

export interface EchoClientTls {
  /** PEM of the CA that signed the server's certificate; default: the system's CAs. */
  ca?: string;
  /** A client certificate and key, for servers that require one. */
  cert?: string;
  key?: string;
  /** The name the server's certificate must carry, when not the authority or the address. */
  servername?: string;
}

export interface EchoClientOptions {
  tls?: EchoClientTls;
  authority?: string;
  channelOptions?: grpc.ChannelOptions;
}

export interface CallOptions {
  metadata?: Record<string, string> | grpc.Metadata;
  deadlineMs?: number;
}

export interface Answer<T> {
  value: T;
  headers: grpc.Metadata;
  trailers: grpc.Metadata;
}

export interface EchoClient {
  readonly client: grpc.Client;
  unary(req: Partial<EchoRequest>, opts?: CallOptions): Promise<Answer<EchoReply>>;
  serverStream(req: Partial<EchoRequest>, opts?: CallOptions): grpc.ClientReadableStream<EchoReply>;
  clientStream(opts?: CallOptions): {
    call: grpc.ClientWritableStream<Partial<EchoRequest>>;
    answer: Promise<Answer<EchoSummary>>;
  };
  bidi(opts?: CallOptions): grpc.ClientDuplexStream<Partial<EchoRequest>, EchoReply>;
  /** grpc.health.v1 Check: the status string, or a rejection with the call's error. */
  health(service?: string, opts?: CallOptions): Promise<string>;
  close(): void;
}

type UnaryMethod<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

function metadataOf(given: CallOptions['metadata']): grpc.Metadata {
  if (given instanceof grpc.Metadata) return given;
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(given ?? {})) md.add(k, v);
  return md;
}

function callOptions(opts: CallOptions | undefined): grpc.CallOptions {
  return opts?.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
}

/** Calls a unary (or client-streaming) method, collecting headers and trailers. */
function answered<T>(
  start: (cb: grpc.requestCallback<T>) => grpc.ClientUnaryCall | grpc.ClientWritableStream<unknown>,
): { call: ReturnType<typeof start>; answer: Promise<Answer<T>> } {
  let headers = new grpc.Metadata();
  let call: ReturnType<typeof start> | undefined;
  const answer = new Promise<Answer<T>>((resolve, reject) => {
    call = start((err, value) => {
      if (err) return reject(err);
      if (value === undefined) return reject(new Error('no answer'));
      // 'status' follows the callback on the same tick's queue: wait for the trailers.
      call?.once('status', (s: grpc.StatusObject) =>
        resolve({ value, headers, trailers: s.metadata }),
      );
    });
    call.on('metadata', (md: grpc.Metadata) => {
      headers = md;
    });
  });
  if (!call) throw new Error('call did not start');
  return { call, answer };
}

export function grpcEchoClient(address: string, options: EchoClientOptions = {}): EchoClient {
  const { tls, authority } = options;
  const channelOptions: grpc.ChannelOptions = { ...options.channelOptions };
  if (authority) channelOptions['grpc.default_authority'] = authority;
  if (tls?.servername) channelOptions['grpc.ssl_target_name_override'] = tls.servername;
  const credentials = tls
    ? grpc.credentials.createSsl(
        tls.ca === undefined ? null : Buffer.from(tls.ca),
        tls.key === undefined ? null : Buffer.from(tls.key),
        tls.cert === undefined ? null : Buffer.from(tls.cert),
      )
    : grpc.credentials.createInsecure();
  const Echo = echoServiceClient();
  const client = new Echo(address, credentials, channelOptions);
  const Health = grpc.makeClientConstructor(
    healthService as unknown as grpc.ServiceDefinition,
    'grpc.health.v1.Health',
  );
  const healthClient = new Health(address, credentials, channelOptions);
  const method = <Req, Res>(c: grpc.Client, name: string) =>
    (c as unknown as Record<string, UnaryMethod<Req, Res>>)[name]?.bind(c) as UnaryMethod<Req, Res>;
  const streams = client as unknown as {
    ServerStream(
      req: EchoRequest,
      md: grpc.Metadata,
      o: grpc.CallOptions,
    ): grpc.ClientReadableStream<EchoReply>;
    ClientStream(
      md: grpc.Metadata,
      o: grpc.CallOptions,
      cb: grpc.requestCallback<EchoSummary>,
    ): grpc.ClientWritableStream<Partial<EchoRequest>>;
    Bidi(
      md: grpc.Metadata,
      o: grpc.CallOptions,
    ): grpc.ClientDuplexStream<Partial<EchoRequest>, EchoReply>;
  };

  return {
    client,
    unary(req, opts) {
      const unary = method<EchoRequest, EchoReply>(client, 'Unary');
      return answered<EchoReply>((cb) =>
        unary(echoRequest(req), metadataOf(opts?.metadata), callOptions(opts), cb),
      ).answer;
    },
    serverStream(req, opts) {
      return streams.ServerStream(echoRequest(req), metadataOf(opts?.metadata), callOptions(opts));
    },
    clientStream(opts) {
      const { call, answer } = answered<EchoSummary>((cb) =>
        streams.ClientStream(metadataOf(opts?.metadata), callOptions(opts), cb),
      );
      return { call: call as grpc.ClientWritableStream<Partial<EchoRequest>>, answer };
    },
    bidi(opts) {
      return streams.Bidi(metadataOf(opts?.metadata), callOptions(opts));
    },
    async health(service = '', opts) {
      const check = method<{ service: string }, { status: string }>(healthClient, 'Check');
      const { value } = await answered<{ status: string }>((cb) =>
        check({ service }, metadataOf(opts?.metadata), callOptions(opts), cb),
      ).answer;
      return value.status;
    },
    close() {
      client.close();
      healthClient.close();
    },
  };
}

export { echoRequest };
