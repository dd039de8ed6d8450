// `fedgate demo` (what `npm start` runs): the local federation plus fedgate in front
// of it, reached the production way (kubeconfigs → client-node), with a locality
// table that lets a user play a client in any zone by source address, the status
// page's failure buttons, and `fedgate localfed ctl` working against it.
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { type Command, EXIT_OK } from './cli-support.ts';
import { ConfigError, loadConfig } from './config/load.ts';
import { FedgateError } from './errors.ts';
import { Fedgate } from './fedgate.ts';
import { hostPort } from './host-port.ts';
import { ACTIONS } from './localfed/control.ts';
import {
  DEFAULT_ADDRESS_BLOCK,
  DEFAULT_API_PORT,
  type FederationDescription,
} from './localfed/federation.ts';
import { type LaunchedFederation, launchLocalFederation } from './localfed/launch.ts';
import {
  DEFAULT_LOCALFED_DIR,
  FEDERATION_OPTIONS,
  FEDERATION_OPTIONS_HELP,
  federationArgs,
} from './localfed/localfed-commands.ts';
import type { ApiKind } from './localfed/member.ts';
import type { AdminControls } from './observe/admin.ts';
import { EventJournal } from './observe/events.ts';
import { createLogger, type Logger } from './observe/log.ts';
import { reloadTriggers } from './reload.ts';

export const DEMO_DNS = '127.0.0.1:5353';
export const DEMO_HTTP = '127.0.0.1:8080';
export const DEMO_ADMIN = '127.0.0.1:9464';
/** Where the demo's fedgate runs. */
export const DEMO_SELF = { region: 'us-east', zone: 'us-east-a' } as const;
/** Client address → zone, so one machine can play clients anywhere. */
export const DEMO_LOCALITIES = [
  { cidr: '127.1.0.0/16', region: 'us-east', zone: 'us-east-a' },
  { cidr: '127.2.0.0/16', region: 'us-east', zone: 'us-east-c' },
  { cidr: '127.3.0.0/16', region: 'eu-west', zone: 'eu-west-a' },
] as const;

export interface DemoOptions {
  readonly scenario?: string | undefined;
  readonly dir: string;
  /** Which API server each member runs (default: the simulator). */
  readonly api?: ApiKind;
  readonly addressBlock?: number;
  readonly apiPort?: number;
  /** Listeners; the demo's defaults are DEMO_DNS, DEMO_HTTP, DEMO_ADMIN. */
  readonly dns?: Listen;
  readonly http?: Listen;
  readonly admin?: Listen;
  readonly log: Logger;
  /** The traffic picture's clock (tests move it on). */
  readonly trafficNow?: () => number;
}

/** "host:port", or the parts. */
export type Listen = string | { readonly host: string; readonly port: number };

const listenText = (l: Listen): string => (typeof l === 'string' ? l : hostPort(l));

export interface Demo {
  readonly local: LaunchedFederation;
  readonly fed: LaunchedFederation['fed'];
  readonly fedgate: Fedgate;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const local = await launchLocalFederation({
    scenario: opts.scenario,
    dir: opts.dir,
    api: opts.api ?? 'sim',
    addressBlock: opts.addressBlock ?? DEFAULT_ADDRESS_BLOCK,
    apiPort: opts.apiPort ?? DEFAULT_API_PORT,
    log: opts.log,
    config: {
      self: DEMO_SELF,
      localities: DEMO_LOCALITIES,
      dns: { listen: [listenText(opts.dns ?? DEMO_DNS)] },
      // Route each request from its client's zone, so `curl --interface` shows locality.
      http: { listen: [listenText(opts.http ?? DEMO_HTTP)], locality: 'client' },
      admin: { listen: listenText(opts.admin ?? DEMO_ADMIN) },
      // One replica, so it leads: Gateway API status, ServiceExport conditions and
      // ServiceImports are written back, for kubectl to show.
      writeBack: { enabled: true },
      // The scenario's Gateway listens on port 80: the proxy's HTTP listener serves it.
      gatewayAPI: {
        listeners: [{ port: 80, protocol: 'HTTP', address: listenText(opts.http ?? DEMO_HTTP) }],
      },
    },
  });
  // The page's buttons may be pressed before Fedgate.start returns: they record here.
  const journal = new EventJournal();
  let fedgate: Fedgate;
  try {
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig(local.configFile);
    } catch (e) {
      if (e instanceof ConfigError) {
        const hint = '(the listeners come from --dns, --http and --admin)';
        throw new FedgateError('CONFIG_INVALID', `${e.message}\n${hint}`, { cause: e });
      }
      throw e;
    }
    const controls: AdminControls = {
      actions: ACTIONS.map(({ name, args, help }) => ({ name, args, help })),
      run: async (name, args) => {
        const message = await local.control.run(name, args);
        journal.record({
          kind: 'action',
          message: `demo: ${[name, ...args].join(' ')}: ${message}`,
          detail: { action: name, args: args.join(' ') },
        });
        return message;
      },
      status: () => local.fed.describe(),
    };
    fedgate = await Fedgate.start(config, opts.log, {
      controls,
      journal,
      ...(opts.trafficNow ? { trafficNow: opts.trafficNow } : {}),
    });
  } catch (e) {
    await local.stop();
    throw e;
  }
  return {
    local,
    fed: local.fed,
    fedgate,
    adminUrl: fedgate.addresses().admin,
    async stop() {
      await fedgate.stop();
      await local.stop();
    },
  };
}

/** Which API servers the members run, as `--api` names them. */
const apiKinds = (d: FederationDescription): string =>
  [...new Set(d.clusters.map((c) => c.apiKind))].join(', ');

/** What the demo prints once ready: where everything is and lines to paste. */
export async function demoGuide(demo: Demo, ctlDir: string | undefined): Promise<string> {
  const d = await demo.local.fed.describe();
  const at = demo.fedgate.addresses();
  const dns = at.dns[0] ?? DEMO_DNS;
  const [dnsHost, dnsPort] = [
    dns.slice(0, dns.lastIndexOf(':')),
    dns.slice(dns.lastIndexOf(':') + 1),
  ];
  const http = at.http[0] ?? `http://${DEMO_HTTP}`;
  const mcs = 'web.shop.svc.clusterset.local';
  const grpcHost = 'grpc-echo.shop.svc.clusterset.local';
  const fedName = `web.shop.${d.federation.name}.svc.${d.federation.domain}`;
  const dig = `dig @${dnsHost.replace(/^\[|\]$/g, '')} -p ${dnsPort}`;
  const ctl = `npm run fedgate -- localfed ctl${ctlDir ? ` --dir ${ctlDir}` : ''}`;
  const first = d.clusters[0];
  const zone = first?.zones[0] ?? 'us-east-a';
  const other = d.clusters[1]?.name ?? first?.name ?? 'beta';
  const lines = [
    '',
    `fedgate demo: the local federation "${d.federation.name}" (${d.clusters.map((c) => c.name).join(', ')}; API servers: ${apiKinds(d)}) behind fedgate, which runs as if in ${DEMO_SELF.region}/${DEMO_SELF.zone}.`,
    '',
    `  status page  ${at.admin}/`,
    `  DNS          ${at.dns.join(', ')} (UDP and TCP)`,
    `  HTTP proxy   ${[...at.http, ...at.https].join(', ')}`,
    `  metrics      ${at.admin}/metrics`,
    '',
    `Clients are placed by source address: ${DEMO_LOCALITIES.map((l) => `${l.cidr} is in ${l.zone}`).join(', ')}; any other address counts as fedgate's own zone.`,
    '',
    'Try it:',
    `  ${dig} ${mcs} +short`,
    `  ${dig} -b 127.3.0.1 ${mcs} +short                          # a client in eu-west-a`,
    `  ${dig} ${fedName} +subnet=127.2.0.0/16 +short   # on behalf of us-east-c (ECS)`,
    `  curl -s -H 'Host: ${mcs}' ${http}/`,
    `  curl -s --interface 127.3.0.1 -H 'Host: ${mcs}' ${http}/   # from eu-west-a`,
    `  curl -s '${at.admin}/debug/explain?host=${mcs}&client=127.2.0.1'`,
    `  npm run -s fedgate -- grpc call --host ${grpcHost} ${http.replace(/^https?:\/\//, '')} hello   # gRPC (h2c) through fedgate`,
    ...gatewayLines(demo, http, at.admin),
    '',
    'Break something and watch answers and traffic move (or press the buttons on the status page):',
    `  ${ctl} fail-zone ${zone}        (then: restore-zone ${zone})`,
    `  ${ctl} fail-cluster ${first?.name ?? 'alpha'}       (then: restore-cluster ${first?.name ?? 'alpha'})`,
    `  ${ctl} api-down ${other}          (then: api-up ${other})`,
    '',
    'Press Ctrl-C to stop.',
    '',
  ];
  return lines.join('\n');
}

/**
 * Lines for the scenario's Gateway API routes (the default scenario's HTTPRoute
 * `shop/shop` on shop.example.test, in alpha), when it has them.
 */
function gatewayLines(demo: Demo, http: string, admin: string): string[] {
  const routes = Object.values(demo.fed.scenario.objects)
    .flat()
    .filter((o) => o.kind === 'HTTPRoute');
  if (!routes.some((r) => r.metadata.name === 'shop' && r.metadata.namespace === 'shop')) return [];
  const host = "-H 'Host: shop.example.test'";
  return [
    '',
    `Gateway API routes (HTTPRoute shop/shop in alpha; kubectl --kubeconfig ${demo.local.dir}/alpha.kubeconfig edit httproute -n shop shop changes them live):`,
    `  curl -s ${host} ${http}/api/orders                  # /api → api`,
    `  curl -s ${host} -H 'x-version: v2' ${http}/     # x-version: v2 → web-canary`,
    `  curl -s ${host} ${http}/                            # web 90 %, web-canary 10 %`,
    `  curl -si ${host} ${http}/old-shop                   # a 301 redirect to /`,
    `  curl -s '${admin}/debug/explain?host=shop.example.test&path=/&header=x-version:v2'`,
  ];
}

export const demo: Command = {
  name: 'demo',
  summary: 'run the local federation with fedgate in front of it (what npm start runs)',
  usage: `fedgate demo [--dns HOST:PORT] [--http HOST:PORT] [--admin HOST:PORT] [--dir DIR]
             [--api sim|real] [--scenario FILE] [--address-block N] [--api-port PORT]

Starts the local federation (member clusters on simulated or, with --api real,
real kube-apiservers, with real HTTP backends)
and fedgate in front of it, reached through kubeconfigs exactly as real clusters
are. fedgate runs as if in ${DEMO_SELF.zone}; clients are placed by source address
(${DEMO_LOCALITIES.map((l) => `${l.cidr} → ${l.zone}`).join(', ')}).
Prints where everything is and commands to try, then runs until Ctrl-C.

Options:
  --dns HOST:PORT      DNS, UDP and TCP (default: ${DEMO_DNS})
  --http HOST:PORT     the HTTP proxy (default: ${DEMO_HTTP})
  --admin HOST:PORT    status page, /metrics, /debug (default: ${DEMO_ADMIN})
  --dir DIR            kubeconfigs, fedgate.yaml and localfed ctl's state (default: ${DEFAULT_LOCALFED_DIR})
${FEDERATION_OPTIONS_HELP}`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        dns: { type: 'string', default: DEMO_DNS },
        http: { type: 'string', default: DEMO_HTTP },
        admin: { type: 'string', default: DEMO_ADMIN },
        ...FEDERATION_OPTIONS,
      },
      allowPositionals: false,
    });
    const log = createLogger('fedgate');
    const running = await startDemo({
      ...federationArgs(values),
      dns: values.dns,
      http: values.http,
      admin: values.admin,
      log,
    });
    // Editing DIR/fedgate.yaml (or SIGHUP) reloads the demo's fedgate, as it does fedgate start.
    const triggers = reloadTriggers(running.local.configFile, running.fedgate, log);
    const stopped = new Promise<void>((done) => {
      process.once('SIGINT', () => done());
      process.once('SIGTERM', () => done());
    });
    const ready = await Promise.race([running.fedgate.whenReady(), stopped.then(() => undefined)]);
    if (ready) {
      const rel = relative(process.cwd(), running.local.dir);
      const ctlDir =
        rel === DEFAULT_LOCALFED_DIR ? undefined : rel.startsWith('..') ? running.local.dir : rel;
      const services = running.fedgate.discovery.catalog.current().services.size;
      process.stdout.write(
        `${await demoGuide(running, ctlDir)}fedgate demo: ready, ${services} federated service(s)${ready.ready ? '' : ` (without ${ready.missing.join(', ')})`}\n`,
      );
    }
    await stopped;
    log.info('stopping the demo');
    triggers.close();
    await running.stop();
    return EXIT_OK;
  },
};
