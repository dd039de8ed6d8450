// The gRPC benchmark's call: the local federation's echo service (src/localfed/
// grpc-echo.ts, what every pod serves) answering Unary, its request prepared once as
// h2load posts it, a grpc-js call to check a target, and the check that h2load's
// answers carried a reply (h2load does not read grpc-status).
import type { EchoPodInfo } from '../src/localfed/grpc-echo.ts';
import { grpcEchoClient } from '../src/localfed/grpc-echo-client.ts';
import {
  type EchoRequest,
  echoRequest,
  echoServiceClient,
} from '../src/localfed/grpc-echo-proto.ts';
import type { H2loadSummary } from './h2load.ts';

/** The method's path: what h2load posts to, and what a proxy routes as a gRPC call. */
export const UNARY_PATH = '/fedgate.echo.v1.Echo/Unary';

/** Every call's message: 16 bytes, the gRPC analogue of the HTTP bench's small body. */
export const MESSAGE = 'fedgate-bench-01';

/**
 * One message on the wire (gRPC over HTTP/2: a 1-byte compressed flag, a 4-byte
 * big-endian length, the message), for a load tool that sends a fixed body.
 */
export function framed(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** The body of one Unary call, encoded by the service's own (proto-loader) serializer. */
export function unaryRequestBody(fields: Partial<EchoRequest> = { message: MESSAGE }): Buffer {
  const unary = echoServiceClient().service.Unary;
  if (unary?.path !== UNARY_PATH) throw new Error(`echo.proto has no ${UNARY_PATH}`);
  return framed(unary.requestSerialize(echoRequest(fields)));
}

/**
 * One Unary call through `address` (h2c) with `:authority` set and a 5 s deadline:
 * resolves with the size of its reply on the wire once the reply echoes MESSAGE from
 * `pod`; rejects naming the gRPC status otherwise.
 */
export async function checkEcho(
  address: string,
  authority: string,
  pod: EchoPodInfo,
): Promise<{ replyBytes: number }> {
  const client = grpcEchoClient(address, { authority });
  try {
    const { value } = await client.unary({ message: MESSAGE }, { deadlineMs: 5_000 });
    if (value.message !== MESSAGE || value.where.pod !== pod.pod) {
      throw new Error(`answered ${JSON.stringify({ message: value.message, where: value.where })}`);
    }
    const unary = echoServiceClient().service.Unary;
    return { replyBytes: framed(unary?.responseSerialize(value) ?? Buffer.alloc(0)).length };
  } catch (e) {
    const err = e as { code?: number; details?: string; message: string };
    throw new Error(
      `gRPC ${UNARY_PATH} through ${address} (:authority ${authority}) failed: ${err.code !== undefined ? `status ${err.code} ` : ''}${err.details ?? err.message}`,
    );
  } finally {
    client.close();
  }
}

/**
 * Calls h2load counted as succeeded (HTTP 200) that carried no reply message: a gRPC
 * error (trailers, no DATA). h2load does not read grpc-status, so the reply bytes are
 * counted: each successful call carries one framed reply of `replyBytes`. The DATA
 * bytes also count replies to calls cut off by the run's end, so this undercounts by
 * at most those (the calls in flight), and never counts a good call.
 */
export function callsWithoutReply(
  run: Pick<H2loadSummary, 'succeeded' | 'dataBytes'>,
  replyBytes: number,
): number {
  return Math.max(0, run.succeeded - Math.floor(run.dataBytes / replyBytes));
}
