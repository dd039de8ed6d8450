// The gRPC active check: grpc.health.v1.Health/Check (the gRPC Health Checking
// Protocol) of one service name, over @grpc/grpc-js with the definition
// grpc-health-check ships. SERVING passes; NOT_SERVING, UNKNOWN and
// SERVICE_UNKNOWN are answers that fail, with the status as the reason; an RPC
// error (no connection, the deadline, the server has no health service) throws,
// as an unreachable target does for the other probes.
//
// A gRPC channel is a connection kept up with its own reconnect backoff, so there is
// one client per target, made at its first probe and closed when the target leaves
// (or the check's settings change), rather than a connection per probe.
import { type ConnectionOptions, createSecureContext } from 'node:tls';
import {
  type ChannelCredentials,
  type Client,
  credentials,
  makeGenericClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { hostPort } from '../host-port.ts';
import type { ProbeTarget } from './targets.ts';

const HealthClient = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');

interface CheckResponse {
  readonly status?: string;
}
type Check = (
  request: { service: string },
  options: { deadline: number },
  done: (err: ServiceError | null, res?: CheckResponse) => void,
) => { cancel(): void };

interface Held {
  readonly client: Client;
  /** The TLS options it was made with: other options (a reload, a rotation) make a new one. */
  readonly tls: ConnectionOptions | undefined;
}

/** The gRPC clients of the targets checked by gRPC, one each. */
export class GrpcHealthClients {
  readonly #held = new Map<ProbeTarget, Held>();

  /** Clients open now. */
  get size(): number {
    return this.#held.size;
  }

  /**
   * One Health/Check of `service` ('' asks about the whole server) at `t`: undefined
   * when SERVING, else why not; throws when the call failed. `tls`: dial with these
   * options (CA, client certificate, servername, checkServerIdentity), else plaintext.
   */
  check(
    t: ProbeTarget,
    service: string,
    timeoutMs: number,
    signal: AbortSignal,
    tls?: ConnectionOptions,
  ): Promise<string | undefined> {
    const client = this.#client(t, tls);
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const check = (client as unknown as { Check: Check }).Check.bind(client);
      const call = check({ service }, { deadline: Date.now() + timeoutMs }, (err, res) => {
        signal.removeEventListener('abort', onAbort);
        if (err) reject(new Error(err.message));
        else resolve(res?.status === 'SERVING' ? undefined : `gRPC ${res?.status ?? 'no status'}`);
      });
      const onAbort = () => {
        call.cancel();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Closes the target's client: it left, or is probed another way now. */
  close(t: ProbeTarget): void {
    this.#held.get(t)?.client.close();
    this.#held.delete(t);
  }

  closeAll(): void {
    for (const h of this.#held.values()) h.client.close();
    this.#held.clear();
  }

  #client(t: ProbeTarget, tls: ConnectionOptions | undefined): Client {
    const held = this.#held.get(t);
    if (held && held.tls === tls) return held.client;
    held?.client.close();
    const options: Record<string, string | number> = {
      // Bounded: a target that stays down is tried again at the next probe, not hammered.
      'grpc.initial_reconnect_backoff_ms': 1000,
      'grpc.max_reconnect_backoff_ms': 10_000,
    };
    if (tls?.servername) options['grpc.ssl_target_name_override'] = tls.servername;
    const client = new HealthClient(hostPort(t), channelCredentials(tls), options);
    this.#held.set(t, { client, tls });
    return client;
  }
}

/** grpc-js credentials from node:tls options; insecure (plaintext) without them. */
export function channelCredentials(tls: ConnectionOptions | undefined): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  const context = createSecureContext({ ca: tls.ca, cert: tls.cert, key: tls.key });
  const check = tls.checkServerIdentity;
  return credentials.createFromSecureContext(context, check ? { checkServerIdentity: check } : {});
}
