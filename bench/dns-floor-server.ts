// The bare Node floor of the DNS benchmark, run as its own process:
//   node bench/dns-floor-server.ts HOST PORT ANSWERS.json
// One dgram socket; each query's question section (everything after the 12-byte
// header: dnsperf and dig +noedns send no OPT record) looks up an answer encoded
// beforehand, copied, its ID and RD bit patched from the query, and sent. No parsing,
// no routing, one copy: the most one Node process answers, one packet per system
// call. An unknown question gets REFUSED.
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';

const [host, port, file] = process.argv.slice(2);
if (host === undefined || port === undefined || file === undefined) {
  console.error('usage: node bench/dns-floor-server.ts HOST PORT ANSWERS.json');
  process.exit(2);
}
const entries = JSON.parse(readFileSync(file, 'utf8')) as { question: string; answer: string }[];
const answers = new Map<string, Buffer>();
for (const e of entries) {
  answers.set(Buffer.from(e.question, 'hex').toString('latin1'), Buffer.from(e.answer, 'hex'));
}

const sock = createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  if (msg.length < 12) return;
  const cached = answers.get(msg.toString('latin1', 12));
  let out: Buffer;
  if (cached === undefined) {
    // REFUSED: the query's own header with QR set and RCODE 5.
    out = msg;
    out[2] = (out[2] ?? 0) | 0x80;
    out[3] = ((out[3] ?? 0) & 0xf0) | 5;
  } else {
    // A copy per answer, as fedgate's patchResponse makes: a send the kernel queues
    // keeps its buffer, which must not take the next query's ID meanwhile.
    out = Buffer.allocUnsafe(cached.length);
    cached.copy(out);
    out[0] = msg[0] ?? 0;
    out[1] = msg[1] ?? 0;
    out[2] = ((out[2] ?? 0) & 0xfe) | ((msg[2] ?? 0) & 1);
  }
  sock.send(out, rinfo.port, rinfo.address);
});
sock.bind(Number(port), host, () => {
  console.log(`floor: ${answers.size} answers on ${host}:${port}`);
});
process.on('SIGTERM', () => sock.close(() => process.exit(0)));
