// The gRPC benchmark's backend in a Node process of its own (the proxy under test must
// not share an event loop with it): bench/grpc-unary.ts's Echo on `--listen host:port`,
// until its stdin closes (whoever started it ended or died) or SIGTERM. Prints `ready`.
// First: this process reaches loopback only, as every benchmark process does.
import '../src/netguard/install.ts';
import { parseArgs } from 'node:util';
import { startGrpcBackend } from './grpc-unary.ts';

const { values } = parseArgs({ options: { listen: { type: 'string' } } });
const m = /^(.+):(\d+)$/.exec(values.listen ?? '');
if (!m) {
  console.error('usage: grpc-backend.ts --listen HOST:PORT');
  process.exit(2);
}
const backend = await startGrpcBackend(m[1]!, Number(m[2]));
const quit = () => void backend.stop().finally(() => process.exit(0));
process.stdin.on('close', quit);
process.stdin.resume();
process.once('SIGTERM', quit);
process.stdout.write('ready\n');
