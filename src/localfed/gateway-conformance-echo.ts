// The Gateway API conformance suite's gRPC echo service (gateway-conformance-echo.proto,
// copied from sigs.k8s.io/gateway-api/conformance v1.6.3 echo-basic/grpcecho.proto), as
// its echo-basic server answers it: Echo and EchoTwo name the method, the request's
// metadata and :authority, and the pod (namespace, service, pod name); EchoThree is left
// unimplemented, as upstream, so grpc-js answers UNIMPLEMENTED. Every gRPC port of a
// local-federation pod serves it beside fedgate's own echo service, so the conformance
// GRPCRoute cases run against the local federation with their manifests unchanged.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadServiceClient } from './grpc-echo-proto.ts';
import type { PodPlace } from './pod-info.ts';

export const CONFORMANCE_ECHO_PROTO_PATH = fileURLToPath(
  new URL('./gateway-conformance-echo.proto', import.meta.url),
);
/** The fully qualified service name the conformance GRPCRoutes match. */
export const CONFORMANCE_ECHO_SERVICE = 'gateway_api_conformance.echo_basic.grpcecho.GrpcEcho';

export interface ConformanceHeader {
  key: string;
  value: string;
}

export interface ConformanceContext {
  namespace: string;
  ingress: string;
  serviceName: string;
  pod: string;
}

export interface ConformanceEchoResponse {
  assertions: {
    fullyQualifiedMethod: string;
    headers: ConformanceHeader[];
    authority: string;
    context: ConformanceContext;
  };
  request: Record<string, never>;
}

let loaded: grpc.ServiceClientConstructor | undefined;

/** The generated client constructor; its `.service` is the server's definition. */
export function conformanceEchoClient(): grpc.ServiceClientConstructor {
  loaded ??= loadServiceClient(CONFORMANCE_ECHO_PROTO_PATH, CONFORMANCE_ECHO_SERVICE);
  return loaded;
}

/** Every metadata entry as the upstream server lists them: one row per value. */
function headerRows(metadata: grpc.Metadata): ConformanceHeader[] {
  const rows: ConformanceHeader[] = [];
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const v of values) rows.push({ key, value: String(v) });
  }
  return rows;
}

/**
 * Adds the conformance service to `server`. `place` is read at each call; `onCall`
 * runs first and may fail the call (the pod's failure mode), returning true when it did.
 */
export function addConformanceEcho(
  server: grpc.Server,
  place: () => PodPlace,
  onCall: (
    call: grpc.ServerUnaryCall<unknown, unknown>,
    fail: (e: grpc.ServerErrorResponse) => void,
  ) => boolean,
): void {
  const echo =
    (method: string) =>
    (
      call: grpc.ServerUnaryCall<unknown, ConformanceEchoResponse>,
      cb: grpc.sendUnaryData<ConformanceEchoResponse>,
    ) => {
      if (onCall(call, (e) => cb(e))) return;
      const { namespace, service, pod } = place();
      const authority = call.getHost();
      cb(null, {
        assertions: {
          fullyQualifiedMethod: `/${CONFORMANCE_ECHO_SERVICE}/${method}`,
          headers: [{ key: ':authority', value: authority }, ...headerRows(call.metadata)],
          authority,
          context: { namespace, ingress: '', serviceName: service, pod },
        },
        request: {},
      });
    };
  // EchoThree is absent on purpose: the cases expect UNIMPLEMENTED from it.
  server.addService(conformanceEchoClient().service, {
    Echo: echo('Echo'),
    EchoTwo: echo('EchoTwo'),
  });
}

export type ConformanceEchoMethod = 'Echo' | 'EchoTwo' | 'EchoThree';

type UnaryMethod = (
  req: object,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: grpc.requestCallback<ConformanceEchoResponse>,
) => grpc.ClientUnaryCall;

/** One call of `method` with `metadata`; rejects with the call's `grpc.ServiceError`. */
export function callConformanceEcho(
  client: grpc.Client,
  method: ConformanceEchoMethod,
  metadata: Record<string, string> = {},
  deadlineMs = 5000,
): Promise<ConformanceEchoResponse> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  const fn = (client as unknown as Record<ConformanceEchoMethod, UnaryMethod>)[method];
  return new Promise((resolve, reject) => {
    fn.call(client, {}, md, { deadline: Date.now() + deadlineMs }, (err, value) => {
      if (err) reject(err);
      else if (value === undefined) reject(new Error(`${method}: no answer`));
      else resolve(value);
    });
  });
}
