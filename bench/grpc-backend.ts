// The gRPC benchmark's backend in a Node process of its own (the proxy under test must
// not share an event loop with it): the local federation's echo service
// (src/localfed/grpc-echo.ts, what every pod serves) as bench/proxy-targets.ts's POD, on
// `--listen host:port`, until its stdin closes (whoever started it ended or died) or
// SIGTERM. Prints `ready`.
// First: this process reaches loopback only, as every benchmark process does.
import '../src/netguard/install.ts';
import { parseArgs } from 'node:util';
import { startGrpcEcho } from '../src/localfed/grpc-echo.ts';
import { POD } from './proxy-targets.ts';

const { values } = parseArgs({ options: { listen: { type: 'string' } } });
const m = /^(.+):(\d+)$/.exec(values.listen ?? '');
if (!m?.[1] || !m[2]) {
  console.error('usage: grpc-backend.ts --listen HOST:PORT');
  process.exit(2);
}
const backend = await startGrpcEcho({ host: m[1], port: Number(m[2]), info: { ...POD, ip: m[1] } });
const quit = () => void backend.stop().finally(() => process.exit(0));
process.stdin.on('close', quit);
process.stdin.resume();
process.once('SIGTERM', quit);
process.stdout.write('ready\n');
