// `fedgate check-config`, `fedgate config-schema` and `fedgate start`.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { type Command, EXIT_OK, UsageError } from './cli-support.ts';
import { effectiveConfig, loadConfig } from './config/load.ts';
import { configJsonSchema } from './config/schema.ts';
import { FedgateError } from './errors.ts';
import { Fedgate } from './fedgate.ts';
import { createLogger } from './observe/log.ts';
import { contentHash, type ReloadTriggers, reloadTriggers } from './reload.ts';

/** The most worker processes `--workers` takes. */
export const MAX_WORKERS = 256;

/**
 * The CPUs this process may use: the cores it may run on, capped by a cgroup v2 CPU
 * limit (a container's `limits.cpu`, in /sys/fs/cgroup/cpu.max as "QUOTA PERIOD"),
 * so a pod limited to 2 CPUs on a 64-core node forks 2 workers, not 64.
 */
export function usableCores(cores = availableParallelism(), cpuMax = readCpuMax()): number {
  const [quota, period] = (cpuMax ?? '').trim().split(/\s+/);
  const q = Number(quota);
  const p = Number(period);
  if (!cpuMax || quota === 'max' || !(q > 0) || !(p > 0)) return cores;
  return Math.max(1, Math.min(cores, Math.ceil(q / p)));
}

function readCpuMax(): string | undefined {
  try {
    return readFileSync('/sys/fs/cgroup/cpu.max', 'utf8');
  } catch {
    return undefined;
  }
}

/** `--workers N`: a whole number 1 … MAX_WORKERS; absent, one per usable core. */
export function parseWorkers(raw: string | undefined, cores = usableCores()): number {
  if (raw === undefined) return Math.min(Math.max(1, cores), MAX_WORKERS);
  const n = /^\d{1,4}$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
    throw new UsageError(`--workers must be a whole number from 1 to ${MAX_WORKERS}, not "${raw}"`);
  }
  return n;
}

export const checkConfig: Command = {
  name: 'check-config',
  summary: 'validate a configuration file and print the effective configuration',
  usage: `fedgate check-config FILE

Validates FILE (YAML) and prints the effective configuration: every default filled
in, kubeconfig paths made absolute. Exit 0 when valid; 2 with each problem's field
path (e.g. clusters[1].kubeconfig: file not found: ...) when not.`,
  async run(argv) {
    const { positionals } = parseArgs({ args: argv, options: {}, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError('expected one argument: the config file');
    const config = loadConfig(positionals[0]!);
    process.stdout.write(stringify(effectiveConfig(config)));
    return EXIT_OK;
  },
};

export const configSchemaCommand: Command = {
  name: 'config-schema',
  summary: 'print the JSON Schema of the configuration file',
  usage: `fedgate config-schema

Prints the JSON Schema of fedgate's configuration file, generated from the same
schema that validates it. deploy/fedgate.schema.json is this output; point your
editor's YAML support at it for completion.`,
  async run(argv) {
    parseArgs({ args: argv, options: {}, allowPositionals: false });
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return EXIT_OK;
  },
};

export const start: Command = {
  name: 'start',
  summary: 'run fedgate with a configuration file',
  usage: `fedgate start --config FILE [--workers N]

Watches every member cluster in FILE, keeps the merged catalog of federated
services, health-checks their endpoints, answers DNS for the federation's zones
on dns.listen (UDP and TCP), proxies HTTP for them on http.listen (and
http.tls.listen: HTTP/2 and HTTP/1.1 over TLS), and serves admin.listen: the
status page at /, /metrics, /healthz, /readyz, /catalog and /debug/... Ready
once every cluster has synced once, or after watch.startupTimeout (then the
missing clusters are reported).

Reloads FILE on SIGHUP, and when its content changes (its directory is watched,
so editors' renames and ConfigMap updates count): the new configuration is
validated first and, if bad, logged and ignored; member clusters join and leave
live, and listeners whose address stays keep their connections.

Runs until SIGINT or SIGTERM; then /readyz turns false, listeners stop
accepting, requests in flight get http.drainTimeout to finish, and it exits 0.

Options:
  -c, --config FILE  the configuration file (required)
  -w, --workers N    processes serving DNS and the proxy, 1 to ${MAX_WORKERS}
                     (default: one per core, here ${parseWorkers(undefined)}). With 2 or more,
                     this process watches the clusters, checks health, serves admin
                     and reloads, once, and hands the catalog to N worker processes
                     that share the DNS and HTTP listeners; /metrics sums them, and
                     /readyz waits for all of them. 1 serves everything in one process.`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        workers: { type: 'string', short: 'w' },
      },
      allowPositionals: false,
    });
    const file = values.config;
    if (!file) throw new UsageError('--config FILE is required');
    const workers = parseWorkers(values.workers);
    // SIGHUP's default action ends the process: it is taken before anything starts,
    // and one that arrives during startup reloads once started.
    let early = false;
    const earlyHup = () => {
      early = true;
    };
    process.on('SIGHUP', earlyHup);
    let triggers: ReloadTriggers | undefined;
    try {
      const loaded = contentHash(file);
      const config = loadConfig(file);
      const log = createLogger('fedgate');
      const fedgate = await Fedgate.start(config, log, { workers });
      process.off('SIGHUP', earlyHup);
      triggers = reloadTriggers(file, fedgate, log, loaded);
      if (early) triggers.reload('SIGHUP');
      const at = fedgate.addresses();
      const proxyAt = [...at.http, ...at.https];
      const procs = workers > 1 ? `; DNS and HTTP served by ${workers} worker processes` : '';
      process.stdout.write(
        `fedgate: watching ${config.clusters.length} member cluster(s); DNS ${at.dns.join(', ')} (UDP and TCP); HTTP ${proxyAt.join(', ') || 'none'}; admin ${at.admin} (status page, /metrics, /readyz, /debug)${procs}; reloads ${file} when it changes and on SIGHUP\n`,
      );
      let stopping = false;
      fedgate.whenReady().then((r) => {
        if (stopping) return;
        const services = fedgate.discovery.catalog.current().services.size;
        process.stdout.write(
          r.ready
            ? `fedgate: ready, ${services} federated service(s)\n`
            : `fedgate: ready after ${config.watch.startupTimeout} ms without: ${r.missing.join(', ')}\n`,
        );
      });
      // Until SIGINT or SIGTERM, or until worker processes keep dying (fatal).
      const fatal = await new Promise<string | undefined>((done) => {
        process.once('SIGINT', () => done(undefined));
        process.once('SIGTERM', () => done(undefined));
        void fedgate.fatal.then(done);
      });
      stopping = true;
      // A SIGHUP while draining changes nothing (and does not end the process).
      triggers.close();
      process.on('SIGHUP', earlyHup);
      await fedgate.stop();
      if (fatal !== undefined) throw new FedgateError('WORKERS_FAILED', fatal);
      return EXIT_OK;
    } finally {
      triggers?.close();
      process.off('SIGHUP', earlyHup);
    }
  },
};
