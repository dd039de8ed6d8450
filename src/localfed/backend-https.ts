// TLS for a pod's HTTP ports, and its gRPC ports' health following the pod's.
import type { ServerOptions } from 'node:https';
import type { GrpcEcho, GrpcEchoTls } from './grpc-echo.ts';
import { ECHO_SERVICE } from './grpc-echo-proto.ts';

/** node:https options for a pod's certificate; a client CA makes a certificate required. */
export function httpsOptions(tls: GrpcEchoTls): ServerOptions {
  const { cert, key, clientCa } = tls;
  return clientCa === undefined
    ? { cert, key }
    : { cert, key, ca: clientCa, requestCert: true, rejectUnauthorized: true };
}

/** The server as a whole ("") and the echo service both answer as the pod's health says. */
export function setEchoHealth(echo: GrpcEcho, healthy: boolean): void {
  const status = healthy ? 'SERVING' : 'NOT_SERVING';
  echo.setHealth('', status);
  echo.setHealth(ECHO_SERVICE, status);
}
