// Self-check of bench/dns-knot.ts on this machine: Knot serving two tiny zones on a
// free loopback port, dig to see the answers (and ECS echo) are right, dnsperf flat out for 3 s
// and then at a fixed 5,000 queries/s with per-query latencies. Prints the figures;
// exits non-zero if any step fails. Run: npx node bench/dns-knot-selfcheck.ts
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dig } from '../test/helpers/tools.ts';
import { dnsperfSelfCheck, freePort, startKnot, writeQueriesFile } from './dns-knot.ts';

const ZONE = `$ORIGIN example.test.
$TTL 30
@    SOA ns1 hostmaster 1 3600 600 86400 30
@    NS  ns1
ns1  A   127.0.0.1
www  A   127.192.2.1
www  A   127.192.2.2
www  AAAA ::1
api  A   127.192.2.10
`;
const OTHER_ZONE = `$TTL 30
@    SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 30
@    NS  ns1.example.test.
web  A   127.198.100.5
`;

// mkdtemp as root gives a root-owned folder, which knotd needs (see startKnot).
const dir = await mkdtemp(join(tmpdir(), 'fedgate-knot-'));
const port = await freePort();
const knot = await startKnot({
  dir,
  port,
  zones: [
    { origin: 'example.test', text: ZONE },
    { origin: 'other.test.', text: OTHER_ZONE },
  ],
  // Knot echoes EDNS Client Subnet only when asked to; fedgate does, so the bench will.
  server: { 'edns-client-subnet': 'on' },
});
try {
  const www = await dig({ host: '127.0.0.1', port }, ['www.example.test', 'A']);
  const got = www.answers.map((a) => a.data).sort();
  if (
    www.status !== 'NOERROR' ||
    !www.flags.includes('aa') ||
    got.join() !== '127.192.2.1,127.192.2.2'
  ) {
    throw new Error(`unexpected answer from Knot:\n${www.stdout}`);
  }
  console.log(`knot on 127.0.0.1:${port} answers www.example.test A: ${got.join(', ')} (aa)`);
  const ecs = await dig({ host: '127.0.0.1', port }, [
    'web.other.test',
    'A',
    '+subnet=127.203.113.0/24',
  ]);
  const subnet = ecs.edns?.options['CLIENT-SUBNET'];
  if (ecs.answers[0]?.data !== '127.198.100.5' || subnet !== '127.203.113.0/24/0') {
    throw new Error(`unexpected answer from Knot for the second zone with ECS:\n${ecs.stdout}`);
  }
  console.log(
    `second zone: web.other.test A ${ecs.answers[0].data}, CLIENT-SUBNET echoed ${subnet}`,
  );

  const queriesFile = join(dir, 'queries.txt');
  await writeQueriesFile(queriesFile, [
    { name: 'www.example.test', type: 'A' },
    { name: 'www.example.test', type: 'AAAA' },
    { name: 'api.example.test', type: 'A' },
    { name: 'missing.example.test', type: 'A' },
  ]);
  await dnsperfSelfCheck('Knot (1 UDP worker)', port, queriesFile);
  if (knot.log().trim()) console.log(`\nknotd said:\n${knot.log()}`);
} finally {
  await knot.stop();
  await rm(dir, { recursive: true, force: true });
}
