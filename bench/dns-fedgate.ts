// The fedgate side of the DNS benchmark: `fedgate start --workers N` as a child
// process on the local federation, as operators run it; the federation itself with
// a DnsServer in this process; the wait until its health has settled; and the CPU
// time a process has used.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import type { Discovery } from '../src/discovery.ts';
import { DnsServer } from '../src/dns/server.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { endpointId } from '../src/routing/types.ts';
import { CLI, logLines, start } from '../test/helpers/cli.ts';
import { type DiscoveryEnv, FAST_WATCH, launchFederation } from '../test/helpers/discovery-env.ts';
import { freePort } from '../test/helpers/ports.ts';
import { seriesTotal } from '../test/helpers/prometheus.ts';

const SETTLE_TIMEOUT_MS = 30_000;
const QUIET_MS = 1_000;
const CLOCK_TICKS_PER_SECOND = 100; // Linux USER_HZ, for /proc/PID/stat

/** Waits until every endpoint in the catalog passed its health check and nothing moved for QUIET_MS. */
export async function settle(d: Discovery): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let last = '';
  let since = Date.now();
  for (;;) {
    const s = d.catalog.current();
    const store = d.health.store;
    const pending = [...s.services.values()].flatMap((svc) =>
      svc.clusters.flatMap((m) =>
        m.endpoints
          .flatMap((e) => e.addresses.slice(0, 1).map((a) => endpointId(m.cluster, a)))
          .filter((id) => store.endpoint(svc.key, id)?.check !== 'healthy'),
      ),
    );
    const state = `${s.version}/${store.version}`;
    if (state !== last) {
      last = state;
      since = Date.now();
    }
    if (pending.length === 0 && Date.now() - since >= QUIET_MS) return;
    if (Date.now() > deadline) {
      throw new Error(`federation did not settle: ${pending.length} endpoints not yet healthy`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** CPU seconds a process has used (user + system), from /proc; NaN if it is gone. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state is field 3, utime 14 and stime 15 (1-based).
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** This process's CPU seconds: the in-process DnsServer's (and the bench's own). */
export function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** A `fedgate start --workers N` child on the local federation, as operators run it. */
export interface FedgateChild {
  readonly dnsPort: number;
  readonly adminPort: number;
  /** The primary's and its workers' CPU seconds so far. */
  cpuSeconds(): number;
  /** DNS queries answered so far, by worker slot (one process: one entry). */
  answered(): Promise<number[]>;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `fedgate start --workers N` on `base` (the federation's config, with its
 * `self`) plus DNS, HTTP and admin listeners on free loopback ports, RRL off as Knot
 * runs, and resolves once it logs that it is ready.
 */
export async function startFedgate(
  workers: number,
  base: Record<string, unknown>,
  dir: string,
): Promise<FedgateChild> {
  const ports = {
    dns: await freePort({ udp: true }),
    http: await freePort(),
    admin: await freePort(),
  };
  const file = join(dir, `fedgate-w${workers}.yaml`);
  await writeFile(
    file,
    stringify({
      ...base,
      dns: { listen: [`127.0.0.1:${ports.dns}`], rrl: { enabled: false } },
      http: { listen: [`127.0.0.1:${ports.http}`] },
      admin: { listen: `127.0.0.1:${ports.admin}` },
      watch: FAST_WATCH,
    }),
  );
  const proc = start(process.execPath, [
    CLI,
    'start',
    '--config',
    file,
    '--workers',
    String(workers),
  ]);
  const stop = async () => {
    const pid = proc.child.pid;
    if (pid === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    proc.child.kill('SIGTERM');
    const timer = setTimeout(() => process.kill(-pid, 'SIGKILL'), 15_000);
    await proc.exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (!proc.out().includes('fedgate: ready')) {
    if (proc.child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`fedgate --workers ${workers} did not get ready:\n${proc.out()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const primary = proc.child.pid;
  if (primary === undefined) throw new Error(`fedgate --workers ${workers} has no process id`);
  const pids = () => [
    primary,
    ...logLines(proc.out())
      .filter((l) => l.msg === 'worker serving')
      .map((l) => l.pid),
  ];
  return {
    dnsPort: ports.dns,
    adminPort: ports.admin,
    cpuSeconds: () => pids().reduce((a, pid) => a + procCpuSeconds(pid), 0),
    answered: async () => {
      const text = await (await fetch(`http://127.0.0.1:${ports.admin}/metrics`)).text();
      if (workers < 2) return [seriesTotal(text, 'fedgate_dns_queries_total')];
      return Array.from({ length: workers }, (_, w) =>
        seriesTotal(text, 'fedgate_worker_requests_total', `worker="${w}"`, 'protocol="dns"'),
      );
    },
    output: proc.out,
    stop,
  };
}

export interface InProcessFedgate {
  fed: LocalFederation;
  /** The federation's fedgate config with `self` and every endpoint health-checked. */
  base: Record<string, unknown>;
  config: Config;
  discovery: Discovery;
  dns: DnsServer;
  /** Where `dns` answers over UDP. */
  address: { host: string; port: number };
}

/**
 * A local federation for `scenario` on 127.<block>.x.x, a synced discovery on it
 * whose health has settled, and a fedgate DnsServer in this process answering from
 * it on a free loopback port: what the anchors' zones are mirrored from. On failure
 * the federation is stopped; otherwise the caller stops `dns` and `fed` and cleans `env`.
 */
export async function startInProcessFedgate(
  env: DiscoveryEnv,
  scenario: string,
  block: number,
  self: { region: string; zone: string },
): Promise<InProcessFedgate> {
  const dir = await env.dir();
  const { fed, kubeconfigs } = await launchFederation(scenario, block, dir);
  try {
    // Every endpoint checked (the default checks only annotated services): settle
    // waits for them all, and every fedgate answers from the same known health.
    const base = {
      ...(parse(fed.fedgateConfig(kubeconfigs)) as Record<string, unknown>),
      health: { active: { scope: 'all' } },
      self,
    };
    const config = parseConfig(
      stringify({
        ...base,
        dns: { listen: ['127.0.0.1:0'], rrl: { enabled: false } },
        watch: FAST_WATCH,
      }),
      join(dir, 'fedgate.yaml'),
    );
    const discovery = await env.startSynced(config);
    await settle(discovery);
    // A logger of its own: the env's LogCapture keeps every line in memory.
    const dns = await DnsServer.start({
      config,
      catalog: discovery.catalog,
      health: discovery.health.store,
      router: discovery.router,
      log: env.log.logger.child({ component: 'dns' }),
    });
    const udp = dns.addresses().udp[0];
    if (udp === undefined) {
      await dns.stop();
      throw new Error('the in-process DnsServer has no UDP address');
    }
    return { fed, base, config, discovery, dns, address: { host: udp.address, port: udp.port } };
  } catch (e) {
    await fed.stop();
    throw e;
  }
}
