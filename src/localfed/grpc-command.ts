// `fedgate grpc call` and `fedgate grpc health`: the local federation's echo service
// called through fedgate (or straight at a pod), printing who answered. `--host` sets
// the :authority, the federated service's name fedgate routes by.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type * as grpc from '@grpc/grpc-js';
import { type Command, EXIT_OK, EXIT_RUNTIME, UsageError } from '../cli-support.ts';
import { type EchoClientOptions, grpcEchoClient } from './grpc-echo-client.ts';
import type { EchoReply, EchoWhere } from './grpc-echo-proto.ts';

const CONNECTION_OPTIONS = {
  host: { type: 'string' },
  tls: { type: 'boolean', default: false },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  servername: { type: 'string' },
  deadline: { type: 'string', default: '10000' },
} as const;

const CONNECTION_HELP = `  --host NAME          the :authority to send (the federated service's name; default: ADDRESS)
  --tls                TLS to ADDRESS (with --ca FILE: the CA to verify it with; default: the system's)
  --cert FILE --key FILE  a client certificate, for servers that require one
  --servername NAME    the name the server's certificate must carry (default: --host)
  --deadline MS        each call's deadline (default: 10000)`;

interface ConnectionValues {
  host?: string | undefined;
  tls: boolean;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  servername?: string | undefined;
  deadline: string;
}

function readPem(option: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--${option} ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

function positiveInt(option: string, raw: string, max: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new UsageError(`--${option} must be a whole number from 1 to ${max}, not "${raw}"`);
  }
  return Number(raw);
}

function clientOptions(v: ConnectionValues): EchoClientOptions {
  if ((v.cert === undefined) !== (v.key === undefined))
    throw new UsageError('--cert and --key go together');
  const usesTls = v.tls || v.ca !== undefined || v.cert !== undefined;
  const servername = v.servername ?? v.host;
  return {
    ...(v.host ? { authority: v.host } : {}),
    ...(usesTls
      ? {
          tls: {
            ...(v.ca !== undefined ? { ca: readPem('ca', v.ca) } : {}),
            ...(v.cert !== undefined ? { cert: readPem('cert', v.cert) } : {}),
            ...(v.key !== undefined ? { key: readPem('key', v.key) } : {}),
            ...(servername ? { servername } : {}),
          },
        }
      : {}),
  };
}

/** `alpha/us-east-a grpc-echo-… 127.20.1.1:50051` */
export function describeWhere(w: EchoWhere): string {
  return `${w.cluster}/${w.zone} ${w.pod} ${w.address}`;
}

function failed(e: unknown): string {
  const err = e as Partial<grpc.ServiceError>;
  return err.code === undefined
    ? `failed: ${(e as Error).message}`
    : `status ${err.code}: ${err.details ?? ''}`;
}

export const grpcCall: Command = {
  name: 'grpc call',
  summary: "call the local federation's gRPC echo service and print who answered",
  usage: `fedgate grpc call [OPTIONS] ADDRESS [MESSAGE]

Calls fedgate.echo.v1.Echo/Unary at ADDRESS (host:port: fedgate's listener, or a
pod) and prints the cluster, zone, pod and address that answered, then the message.

Options:
${CONNECTION_HELP}
  --calls N            make N calls, one line each (default: 1)
  --metadata K=V       request metadata (repeatable); the echo sends it back as echo-K
  --status CODE        ask the echo to answer with this gRPC status`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        ...CONNECTION_OPTIONS,
        calls: { type: 'string', default: '1' },
        metadata: { type: 'string', multiple: true, default: [] },
        status: { type: 'string' },
      },
      allowPositionals: true,
    });
    const [address, message = 'hello', ...extra] = positionals;
    if (address === undefined || extra.length > 0)
      throw new UsageError('give ADDRESS and at most one MESSAGE');
    const calls = positiveInt('calls', values.calls, 10_000);
    const deadlineMs = positiveInt('deadline', values.deadline, 3_600_000);
    const metadata: Record<string, string> = {};
    for (const kv of values.metadata) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new UsageError(`--metadata wants KEY=VALUE, not "${kv}"`);
      metadata[kv.slice(0, eq).toLowerCase()] = kv.slice(eq + 1);
    }
    const status = values.status === undefined ? 0 : positiveInt('status', values.status, 16);
    const client = grpcEchoClient(address, clientOptions(values));
    let failures = 0;
    try {
      for (let i = 0; i < calls; i++) {
        try {
          const { value } = await client.unary({ message, status }, { metadata, deadlineMs });
          process.stdout.write(`${line(value)}\n`);
        } catch (e) {
          failures++;
          process.stdout.write(`${failed(e)}\n`);
        }
      }
    } finally {
      client.close();
    }
    return failures === 0 ? EXIT_OK : EXIT_RUNTIME;
  },
};

function line(reply: EchoReply): string {
  return `${describeWhere(reply.where)}: ${reply.message}`;
}

export const grpcHealth: Command = {
  name: 'grpc health',
  summary: 'ask a gRPC server its grpc.health.v1 status',
  usage: `fedgate grpc health [OPTIONS] ADDRESS [SERVICE]

Prints what grpc.health.v1.Health/Check at ADDRESS says of SERVICE (default: "",
the server as a whole): SERVING, NOT_SERVING, or the call's status.

Options:
${CONNECTION_HELP}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: CONNECTION_OPTIONS,
      allowPositionals: true,
    });
    const [address, service = '', ...extra] = positionals;
    if (address === undefined || extra.length > 0)
      throw new UsageError('give ADDRESS and at most one SERVICE');
    const deadlineMs = positiveInt('deadline', values.deadline, 3_600_000);
    const client = grpcEchoClient(address, clientOptions(values));
    try {
      const status = await client.health(service, { deadlineMs });
      process.stdout.write(`${status}\n`);
      return status === 'SERVING' ? EXIT_OK : EXIT_RUNTIME;
    } catch (e) {
      process.stdout.write(`${failed(e)}\n`);
      return EXIT_RUNTIME;
    } finally {
      client.close();
    }
  },
};
