// `fedgate localfed up` and `fedgate localfed ctl`.
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../cli-support.ts';
import { UsageError } from '../cli-support.ts';
import { hostPort } from '../host-port.ts';
import { createLogger } from '../observe/log.ts';
import { PKI_DIR } from './backend-pki.ts';
import { ACTIONS, fetchStatus, runAction, STATE_FILE } from './control.ts';
import {
  DEFAULT_ADDRESS_BLOCK,
  DEFAULT_API_PORT,
  type FederationDescription,
} from './federation.ts';
import { FEDGATE_CONFIG_FILE, launchLocalFederation } from './launch.ts';
import { API_KINDS, type ApiKind } from './member.ts';

export const DEFAULT_LOCALFED_DIR = '.localfed';

function intOption(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return Number(raw);
}

/** The options that place a local federation, shared by `localfed up` and `demo`. */
export const FEDERATION_OPTIONS = {
  api: { type: 'string', default: 'sim' },
  scenario: { type: 'string' },
  dir: { type: 'string', default: DEFAULT_LOCALFED_DIR },
  'address-block': { type: 'string' },
  'api-port': { type: 'string' },
} as const;

export const FEDERATION_OPTIONS_HELP = `  --api sim|real       each member's API server: sim, the simulator in this process (default),
                       or real, kube-apiserver and etcd built from Go (the first run builds them)
  --scenario FILE      scenario YAML (default: the built-in galaxy federation)
  --address-block N    cluster i uses 127.(N+i).0.0/16 (default: ${DEFAULT_ADDRESS_BLOCK})
  --api-port PORT      API server port on each cluster's address; 0 = any (default: ${DEFAULT_API_PORT})`;

/** FEDERATION_OPTIONS as parsed, checked. */
export function federationArgs(values: {
  api: string;
  scenario?: string | undefined;
  dir: string;
  'address-block'?: string | undefined;
  'api-port'?: string | undefined;
}): {
  api: ApiKind;
  scenario: string | undefined;
  dir: string;
  addressBlock: number;
  apiPort: number;
} {
  const api = API_KINDS.find((k) => k === values.api);
  if (!api) throw new UsageError(`--api must be ${API_KINDS.join(' or ')}, not "${values.api}"`);
  return {
    api,
    scenario: values.scenario,
    dir: values.dir,
    addressBlock: intOption(
      'address-block',
      values['address-block'],
      DEFAULT_ADDRESS_BLOCK,
      1,
      254,
    ),
    apiPort: intOption('api-port', values['api-port'], DEFAULT_API_PORT, 0, 65535),
  };
}

export const localfedUp: Command = {
  name: 'localfed up',
  summary: 'start the local federation: simulated member clusters with real backends',
  usage: `fedgate localfed up [--api sim|real] [--scenario FILE] [--dir DIR] [--address-block N]
                          [--api-port PORT]

Starts one Kubernetes API server per member cluster of the scenario (HTTPS, its
own CA and bearer token): the simulator, or with --api real a kube-apiserver and
etcd behind a relay on the cluster's address. Runs a real HTTP backend per pod,
plays the cluster's controllers through its API, writes DIR/<cluster>.kubeconfig
and DIR/${STATE_FILE}, prints what it started, and runs until interrupted.

Options:
  --dir DIR            where kubeconfigs and state go (default: ${DEFAULT_LOCALFED_DIR})
${FEDERATION_OPTIONS_HELP}`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: FEDERATION_OPTIONS,
      allowPositionals: false,
    });
    const log = createLogger('localfed');
    const launched = await launchLocalFederation({ ...federationArgs(values), log });
    const { fed, kubeconfigs, dir } = launched;
    process.stdout.write(summary(await fed.describe(), kubeconfigs, dir));

    await new Promise<void>((done) => {
      const stop = (signal: string) => {
        log.info(`${signal}: stopping the local federation`);
        done();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    await launched.stop();
    return 0;
  },
};

function summary(
  d: FederationDescription,
  kubeconfigs: Record<string, string>,
  dir: string,
): string {
  const rel = (p: string) => {
    const r = relative(process.cwd(), p);
    return r === '' ? '.' : r.startsWith('..') ? p : r;
  };
  const lines: string[] = [];
  lines.push(`Local federation "${d.federation.name}" (domain ${d.federation.domain}) is up.`, '');
  lines.push('Member clusters:');
  for (const c of d.clusters) {
    lines.push(
      `  ${c.name.padEnd(8)} region ${c.region.padEnd(9)} zones ${c.zones.join(',').padEnd(22)} API ${c.apiKind.padEnd(4)} ${c.api}   ${rel(kubeconfigs[c.name]!)}`,
    );
  }
  lines.push('', 'Services (one line per cluster; pods are real HTTP, HTTPS or gRPC servers):');
  const services = [...new Set(d.clusters.flatMap((c) => c.pods.map((p) => p.service)))].sort();
  const width = Math.max(14, ...services.map((s) => s.length));
  for (const svc of services) {
    for (const c of d.clusters) {
      const pods = c.pods.filter((p) => p.service === svc);
      if (pods.length === 0) continue;
      const lb = c.loadBalancers.find((l) => l.service === svc);
      const addrs = pods.map((p) => hostPort({ host: p.ip, port: p.ports[0] }));
      lines.push(
        `  ${svc.padEnd(width)} ${c.name.padEnd(8)} ${addrs.join(' ')}${lb ? `   LB ${hostPort({ host: lb.ip, port: lb.ports[0] })}` : ''}`,
      );
    }
  }
  const first = d.clusters[0]!;
  const pod = first.pods[0];
  const ctl = `npm run fedgate -- localfed ctl --dir ${rel(dir)}`;
  lines.push('', 'Try it:');
  lines.push(`  kubectl --kubeconfig ${rel(kubeconfigs[first.name]!)} get endpointslices -A`);
  if (pod) lines.push(`  curl http://${hostPort({ host: pod.ip, port: pod.ports[0] })}/`);
  const servingOf = (p: (typeof first.pods)[number], port: number | undefined) =>
    p.serving[port ?? 0] ?? { protocol: 'http', tls: 'none' };
  const grpcPod = first.pods.find((p) => servingOf(p, p.ports[0]).protocol === 'grpc');
  if (grpcPod) {
    const at = hostPort({ host: grpcPod.ip, port: grpcPod.ports[0] });
    lines.push(`  npm run -s fedgate -- grpc call ${at} hello`);
  }
  const tlsPod = first.pods.find((p) => servingOf(p, p.ports[0]).tls === 'server');
  if (tlsPod) {
    const ca = rel(join(dir, PKI_DIR, `${first.name}-backends-ca.pem`));
    lines.push(
      `  curl --cacert ${ca} https://${hostPort({ host: tlsPod.ip, port: tlsPod.ports[0] })}/`,
    );
  }
  lines.push(`  ${ctl} status`);
  lines.push(`  ${ctl} fail-zone ${first.zones[0]}     (then: restore-zone ${first.zones[0]})`);
  lines.push(
    `  npm run fedgate -- start --config ${rel(join(dir, FEDGATE_CONFIG_FILE))}   (then: curl http://127.0.0.1:9464/catalog)`,
  );
  lines.push('', 'Press Ctrl-C to stop.', '');
  return `${lines.join('\n')}\n`;
}

export const localfedCtl: Command = {
  name: 'localfed ctl',
  summary: 'drive a running local federation (fail and restore zones, clusters, APIs; scale)',
  usage: `fedgate localfed ctl [--dir DIR] ACTION [ARGS...]

Actions:
  status [--json]               what is running, and what is broken
${ACTIONS.map((a) => `  ${`${a.name} ${a.args}`.padEnd(30)}${a.help}`).join('\n')}

Options:
  --dir DIR   the directory given to localfed up (default: ${DEFAULT_LOCALFED_DIR})`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string', default: DEFAULT_LOCALFED_DIR },
        json: { type: 'boolean', default: false },
      },
      allowPositionals: true,
    });
    const [action, ...args] = positionals;
    if (!action) throw new UsageError('an ACTION is required (see fedgate localfed ctl --help)');
    const dir = resolve(values.dir);
    if (action === 'status') {
      const status = await fetchStatus(dir);
      process.stdout.write(
        values.json ? `${JSON.stringify(status, null, 2)}\n` : describeStatus(status),
      );
      return 0;
    }
    if (!ACTIONS.some((a) => a.name === action)) {
      throw new UsageError(
        `unknown action "${action}" (actions: status, ${ACTIONS.map((a) => a.name).join(', ')})`,
      );
    }
    process.stdout.write(`${await runAction(dir, action, args)}\n`);
    return 0;
  },
};

function describeStatus(d: FederationDescription): string {
  const lines = [
    `federation ${d.federation.name}   failed zones: ${d.failedZones.join(', ') || 'none'}`,
  ];
  for (const c of d.clusters) {
    const state = c.failed ? 'FAILED' : c.apiMode === 'up' ? 'up' : `API ${c.apiMode}`;
    lines.push(
      `cluster ${c.name} (${c.region})  ${state}  API ${c.apiKind} ${c.api}  revision ${c.revision}`,
    );
    for (const p of c.pods) {
      const flags = [
        p.listening ? 'listening' : 'down',
        p.terminating ? 'terminating' : '',
        p.healthy ? '' : 'health failing',
      ].filter(Boolean);
      lines.push(
        `  ${p.service.padEnd(14)} ${p.pod.padEnd(26)} ${p.zone.padEnd(10)} ${`${p.ip}:${p.ports.join(',')}`.padEnd(20)} ${flags.join(', ')}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
