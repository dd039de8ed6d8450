// What the attempt loop (attempts.ts's Exchange) needs of the side that talks to
// the client and to undici: dispatch.ts for requests, upgrade.ts for upgrades.
import type { ErrorCode } from '../errors.ts';
import type { GrpcCall } from './grpc.ts';
import type { Try } from './try.ts';

/** The side of an exchange that talks to the client and to undici. */
export interface Carrier {
  /** An Upgrade request: counted as one too (fedgate_http_upgrades_total). */
  readonly upgrade: boolean;
  /** The request has a body, which streams to the upstream of the first try. */
  readonly hasBody: boolean;
  /** A gRPC call (grpc.ts): its deadline bounds the tries, its status decides retries. */
  readonly grpc?: GrpcCall | undefined;
  /** The body has started streaming: no other try could send it again. */
  bodyStarted(): boolean;
  /**
   * What was read of the body is kept (small): a refused stream's request may go
   * elsewhere; `whole`: and the client has ended it (a gRPC call retried by status).
   */
  canReplay?(whole?: boolean): boolean;
  /** Sends one try; its handler reports what happens to `t`. */
  send(t: Try): void;
  /** fedgate's own answer: nothing to try, or no try succeeded; `close` the connection after. */
  answer(code: ErrorCode, detail: string, close?: boolean): void;
}
