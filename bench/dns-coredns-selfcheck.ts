// Self-check of bench/dns-coredns.ts on this machine: a small local federation, a
// fedgate DnsServer on it, CoreDNS serving zones mirrored from fedgate's answers, and
// dig asking both every name fedgate serves there: the same rcode, AA and record
// types for each, and the same records for every name but the SOAs (their serial
// follows fedgate's catalog). Then that CoreDNS listens on its bind address only, and
// dnsperf flat out for 3 s and at a fixed 5,000 queries/s with per-query latencies.
// Prints the figures; exits non-zero if any step fails.
// Run: node_modules/node/bin/node bench/dns-coredns-selfcheck.ts
// First: benchmarks, and every process they start, reach loopback only.
import '../src/netguard/install.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DnsServer } from '../src/dns/server.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { DiscoveryEnv } from '../test/helpers/discovery-env.ts';
import { startCoreDns } from './dns-coredns.ts';
import { startInProcessFedgate } from './dns-fedgate.ts';
import { dnsperfSelfCheck, writeQueriesFile } from './dns-knot.ts';
import { checkMirror, mirrorZones, queryMix } from './dns-mix.ts';
import { answersAuthoritatively, type DnsProcess } from './dns-process.ts';
import { freePort, printTable } from './lib.ts';

const SCENARIO = `
federation: { name: check, domain: example.test }
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }]
  - name: beta
    region: eu-west
    zones: [{ name: eu-west-a, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }, { name: grpc, port: 9090 }], clusters: [alpha, beta], replicasPerZone: 2 }
`;
/** 127.233.0.0/16 and 127.234.0.0/16: after dns.bench.ts's three clusters at 230–232. */
const ADDRESS_BLOCK = 233;
const SELF = { region: 'us-east', zone: 'us-east-a' };

const env = new DiscoveryEnv();
let fed: LocalFederation | undefined;
let dns: DnsServer | undefined;
let coredns: DnsProcess | undefined;
const workDir = await mkdtemp(join(tmpdir(), 'fedgate-coredns-check-'));
let exitCode = 0;
try {
  const inproc = await startInProcessFedgate(env, SCENARIO, ADDRESS_BLOCK, SELF);
  ({ fed, dns } = inproc);
  const { config, discovery: d, address: fedgate } = inproc;

  const queries = queryMix(d.catalog.current(), config);
  const origins = [config.federation.clustersetZone, config.federation.domain];
  const zones = await mirrorZones(fedgate, queries, origins);
  coredns = await startCoreDns({ dir: workDir, port: await freePort(), zones });
  const port = coredns.port;

  // Same shape for every name (checkMirror throws otherwise); same records but for SOAs.
  const checks = await checkMirror(fedgate, { name: 'coredns', host: '127.0.0.1', port }, queries);
  printTable(
    `fedgate and CoreDNS (127.0.0.1:${port}) asked each name fedgate serves, with dig +noedns`,
    checks.map((c) => ({
      query: `${c.name} ${c.type}`,
      'same records': c.sameRecords ? 'yes' : 'no',
      'fedgate bytes': c.fedgateBytes,
      'coredns bytes': c.anchorBytes,
    })),
  );
  const differing = checks.filter((c) => !c.sameRecords && c.type !== 'SOA');
  if (differing.length > 0) {
    throw new Error(
      `CoreDNS answers other records than fedgate for ${differing.map((c) => `${c.name} ${c.type}`).join(', ')}`,
    );
  }
  // `bind 127.0.0.1`: nothing answers on another loopback address at the same port.
  if (await answersAuthoritatively('127.0.0.2', port, origins[0] ?? '', 500)) {
    throw new Error(`CoreDNS answers on 127.0.0.2:${port} too: bind did not hold`);
  }
  console.log(`\nCoreDNS answers on 127.0.0.1:${port} only (127.0.0.2:${port}: no answer)`);

  const queriesFile = join(workDir, 'queries.txt');
  await writeQueriesFile(queriesFile, queries);
  for (const r of await dnsperfSelfCheck('CoreDNS', port, queriesFile)) {
    if ((r.rcodes.NOERROR ?? 0) < r.completed) {
      throw new Error(`CoreDNS answered some queries with errors: ${JSON.stringify(r.rcodes)}`);
    }
  }
  const log = coredns.log().replace(/^maxprocs:.*\n/m, '');
  if (log.trim()) console.log(`\ncoredns said:\n${log}`);
} catch (e) {
  console.error(e);
  if (coredns) console.error(coredns.log());
  exitCode = 1;
} finally {
  await coredns?.stop();
  await dns?.stop();
  await env.cleanup();
  await fed?.stop();
  await rm(workDir, { recursive: true, force: true });
}
process.exitCode = exitCode;
