// `fedgate check-config`, `fedgate config-schema` and `fedgate start`.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { type Command, EXIT_OK, UsageError } from './cli-support.ts';
import { ConfigError, effectiveConfig, loadConfig } from './config/load.ts';
import { type Config, configJsonSchema } from './config/schema.ts';
import { createLogger } from './observe/log.ts';
import { contentHash, type ReloadTriggers, reloadTriggers } from './reload.ts';
import { Fedgate } from './runtime.ts';

function load(file: string): Config {
  try {
    return loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
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
    const config = load(positionals[0]!);
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
  usage: `fedgate start --config FILE

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
accepting, requests in flight get http.drainTimeout to finish, and it exits 0.`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' } },
      allowPositionals: false,
    });
    const file = values.config;
    if (!file) throw new UsageError('--config FILE is required');
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
      const config = load(file);
      const log = createLogger('fedgate');
      const fedgate = await Fedgate.start(config, log);
      process.off('SIGHUP', earlyHup);
      triggers = reloadTriggers(file, fedgate, log, loaded);
      if (early) triggers.reload('SIGHUP');
      const at = fedgate.addresses();
      const proxyAt = [...at.http, ...at.https];
      process.stdout.write(
        `fedgate: watching ${config.clusters.length} member cluster(s); DNS ${at.dns.join(', ')} (UDP and TCP); HTTP ${proxyAt.join(', ') || 'none'}; admin ${at.admin} (status page, /metrics, /readyz, /debug); reloads ${file} when it changes and on SIGHUP\n`,
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
      await new Promise<void>((done) => {
        process.once('SIGINT', () => done());
        process.once('SIGTERM', () => done());
      });
      stopping = true;
      // A SIGHUP while draining changes nothing (and does not end the process).
      triggers.close();
      process.on('SIGHUP', earlyHup);
      await fedgate.stop();
      return EXIT_OK;
    } finally {
      triggers?.close();
      process.off('SIGHUP', earlyHup);
    }
  },
};
