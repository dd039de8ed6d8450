// `fedgate check-config`, `fedgate config-schema` and `fedgate start`.
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { Discovery } from './app.ts';
import { type Command, EXIT_OK, UsageError } from './cli-support.ts';
import { ConfigError, effectiveConfig, loadConfig } from './config/load.ts';
import { type Config, configJsonSchema } from './config/schema.ts';
import { DnsServer } from './dns/server.ts';
import { FedgateError } from './errors.ts';
import { startAdmin } from './observe/admin.ts';
import { createLogger } from './observe/log.ts';
import { Metrics } from './observe/metrics.ts';
import { ProxyServer } from './proxy/server.ts';

function hostPort(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

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
http.tls.listen: HTTP/2 and HTTP/1.1 over TLS), and serves the admin endpoints (/healthz, /readyz,
/catalog, /metrics) on admin.listen. Ready once every cluster has synced once, or after
watch.startupTimeout (then the missing clusters are reported). Runs until
SIGINT or SIGTERM; then stops accepting, gives requests in flight
http.drainTimeout to finish, and exits 0.`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' } },
      allowPositionals: false,
    });
    if (!values.config) throw new UsageError('--config FILE is required');
    const config = load(values.config);
    const log = createLogger('fedgate');
    let discovery: Discovery;
    try {
      discovery = Discovery.start(config, log);
    } catch (e) {
      if (e instanceof FedgateError && e.code === 'KUBECONFIG_INVALID') {
        throw new UsageError(e.message);
      }
      throw e;
    }
    const startup = { done: false, missing: [] as readonly string[] };
    const metrics = new Metrics({ catalog: discovery.catalog });
    const admin = await startAdmin(
      config.admin.listen,
      discovery.catalog,
      () => startup,
      metrics,
    ).catch(async (e: unknown) => {
      await discovery.stop();
      throw new Error(
        `cannot listen on admin.listen ${config.admin.listen.host}:${config.admin.listen.port}: ${(e as Error).message}`,
      );
    });
    const adminUrl = `http://${admin.address.host.includes(':') ? `[${admin.address.host}]` : admin.address.host}:${admin.address.port}`;
    const dns = await DnsServer.start({
      config,
      catalog: discovery.catalog,
      health: discovery.health.store,
      router: discovery.router,
      log,
    }).catch(async (e: unknown) => {
      await admin.close();
      await discovery.stop();
      throw new UsageError(`cannot listen on dns.listen: ${(e as Error).message}`);
    });
    const proxy = await ProxyServer.start({
      config,
      catalog: discovery.catalog,
      health: discovery.health,
      router: discovery.router,
      log,
      observer: metrics,
    }).catch(async (e: unknown) => {
      await dns.stop();
      await admin.close();
      await discovery.stop();
      throw new UsageError(`cannot listen on http.listen: ${(e as Error).message}`);
    });
    const proxyAt = [
      ...proxy.addresses().http.map((a) => `http://${hostPort(a)}`),
      ...proxy.addresses().https.map((a) => `https://${hostPort(a)}`),
    ];
    const dnsAt = dns.addresses().udp.map(hostPort);
    process.stdout.write(
      `fedgate: watching ${config.clusters.length} member cluster(s); DNS ${dnsAt.join(', ')} (UDP and TCP); HTTP ${proxyAt.join(', ') || 'none'}; admin ${adminUrl} (/readyz, /catalog, /metrics)\n`,
    );
    const stopped = new AbortController();
    discovery.catalog.whenReady(config.watch.startupTimeout, stopped.signal).then((r) => {
      if (stopped.signal.aborted) return;
      startup.done = true;
      startup.missing = r.missing;
      const services = discovery.catalog.current().services.size;
      if (r.ready) log.info({ services }, 'ready: every member cluster has synced');
      else
        log.warn(
          { missing: r.missing, services },
          'ready after startupTimeout without every cluster',
        );
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
    stopped.abort();
    log.info({ graceMs: config.http.drainTimeout }, 'draining: no new connections');
    const { cut } = await proxy.drain();
    if (cut > 0)
      log.warn({ cut }, 'connections still busy at the end of the grace period were cut');
    log.info('stopping');
    await dns.stop();
    await admin.close();
    await discovery.stop();
    return EXIT_OK;
  },
};
