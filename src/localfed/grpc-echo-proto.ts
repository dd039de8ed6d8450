// The echo service's definition, loaded from echo.proto beside this file, and the
// shapes its messages take in JavaScript (proto-loader: camelCase fields, 64-bit
// numbers as numbers, bytes as Buffers, every field present).
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { PodPlace } from './pod-info.ts';

export const ECHO_PROTO_PATH = fileURLToPath(new URL('./echo.proto', import.meta.url));
/** The fully qualified service name: what a `grpc.health.v1` check asks about. */
export const ECHO_SERVICE = 'fedgate.echo.v1.Echo';

export interface EchoRequest {
  message: string;
  payload: Buffer;
  count: number;
  size: number;
  status: number;
  statusMessage: string;
  delayMs: number;
}

/** Where the answer came from, as the HTTP backends' JSON names it; `address` is ip:port. */
export type EchoWhere = PodPlace & { address: string };

export interface EchoReply {
  message: string;
  payload: Buffer;
  where: EchoWhere;
  index: number;
  authority: string;
}

export interface EchoSummary {
  messages: number;
  bytes: number;
  where: EchoWhere;
  authority: string;
  messagesText: string;
}

const LOAD_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The client constructor of the service `qualified` (package.Service) in the .proto at `path`. */
export function loadServiceClient(path: string, qualified: string): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(path, LOAD_OPTIONS);
  let found: unknown = grpc.loadPackageDefinition(definition);
  for (const part of qualified.split('.')) {
    found = typeof found === 'object' && found !== null ? Reflect.get(found, part) : undefined;
  }
  if (typeof found !== 'function') throw new Error(`${path} defines no service ${qualified}`);
  return found as grpc.ServiceClientConstructor;
}

let loaded: grpc.ServiceClientConstructor | undefined;

/** The generated client constructor; its `.service` is the server's definition. */
export function echoServiceClient(): grpc.ServiceClientConstructor {
  loaded ??= loadServiceClient(ECHO_PROTO_PATH, ECHO_SERVICE);
  return loaded;
}

/** A request with every field at its default but those given. */
export function echoRequest(fields: Partial<EchoRequest> = {}): EchoRequest {
  return {
    message: '',
    payload: Buffer.alloc(0),
    count: 0,
    size: 0,
    status: 0,
    statusMessage: '',
    delayMs: 0,
    ...fields,
  };
}
