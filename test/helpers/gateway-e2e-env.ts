// The harness of the Gateway API conformance ports end to end (test/gateway-e2e*.test.ts):
// a local federation (the conformance backends as its services) whose member `alpha` is
// fedgate's config cluster, the conformance base (class, namespaces, chosen Gateways)
// applied with kubectl, a real `fedgate start` with its Gateway port 80 mapped onto
// fedgate's HTTP listener and writeBack on; helpers to apply the upstream manifests, send
// the cases' requests through fedgate and read status back with `kubectl get -o json`.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type IncomingMessage, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import type { GatewayApiChannel } from '../../src/localfed/gateway-schema.ts';
import { type LaunchedFederation, launchLocalFederation } from '../../src/localfed/launch.ts';
import type { ApiKind } from '../../src/localfed/member.ts';
import { GATEWAY_CONTROLLER } from '../../src/watch/gateway-records.ts';
import { CLI, ROOT, start } from './cli.ts';
import { LogCapture, watchFor } from './discovery-env.ts';
import { requireKubeTools } from './kube-control-plane.ts';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

export const FIXTURES = join(ROOT, 'test/fixtures/gateway-conformance');
export const CONFORMANCE_SCENARIO = join(ROOT, 'test/fixtures/localfed-gateway-conformance.yaml');
export const INFRA = 'gateway-conformance-infra';
export const CLASS = 'fedgate';
const LEASE = { duration: '3s', renewDeadline: '2s', retryPeriod: '500ms' };

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: {
    service?: string;
    namespace?: string;
    path?: string;
    host?: string;
    method?: string;
    headers?: Record<string, string>;
  };
  text: string;
}
export interface Condition {
  type: string;
  status: string;
  reason: string;
  observedGeneration?: number;
}
export interface RouteStatus {
  parents?: {
    parentRef: { name: string; namespace?: string; sectionName?: string };
    controllerName: string;
    conditions: Condition[];
  }[];
}
export interface GatewayStatus {
  conditions?: Condition[];
  listeners?: {
    name: string;
    attachedRoutes: number;
    conditions: Condition[];
    supportedKinds?: { group?: string; kind: string }[];
  }[];
}

export interface GatewayE2EOptions {
  /** The federation's address block (127.N/16): each test file its own. */
  addressBlock: number;
  /** The Gateways of base.yaml to apply with the class (default: same-namespace). */
  gateways?: readonly string[];
  /** The local-federation scenario (default: the conformance backends). */
  scenario?: string;
  /**
   * The scenario's clusters to run (default: all). Cluster i takes address block
   * `addressBlock + i`, so a file given one block runs one cluster (the config cluster).
   */
  clusters?: readonly string[];
  /**
   * The Gateway API CRDs' channel the members serve (the scenario's `gatewayAPIChannel`;
   * default: the scenario's own): experimental for fields such as HTTPRoute `retry`.
   */
  gatewayAPIChannel?: GatewayApiChannel;
  /** Added to fedgate's config (merged over the harness's, key by key at the top level). */
  config?: (env: { httpPort: number; listen: string }) => Record<string, unknown>;
  /** More `gatewayAPI.listeners` rows besides port 80 → the HTTP listener. */
  listeners?: (env: { httpPort: number }) => Record<string, unknown>[];
}

export interface GatewayE2E {
  readonly dir: string;
  readonly local: LaunchedFederation;
  readonly httpPort: number;
  kubectl(
    args: string[],
    env?: NodeJS.ProcessEnv,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** A conformance manifest as the suite applies it: fedgate's class in place of the placeholder. */
  manifest(name: string): Promise<string>;
  apply(name: string): Promise<void>;
  remove(name: string): Promise<void>;
  status<T>(kind: string, name: string, ns?: string): Promise<T | undefined>;
  /**
   * fedgate's conditions on a route's parent (the first, or the one named). A route is
   * named `name` (in gateway-conformance-infra) or `namespace/name`, here and below.
   */
  routeConditions(route: string, kind?: string, parent?: string): Promise<Condition[]>;
  condition(route: string, type: string, kind?: string): Promise<Condition | undefined>;
  /** Waits until the Gateway's Programmed condition is True, once fedgate writes it. */
  programmed(gateway: string): Promise<unknown>;
  /** Accepted and ResolvedRefs True, once fedgate writes them. */
  accepted(route: string, kind?: string): Promise<unknown>;
  get(path: string, headers?: Record<string, string>, method?: string): Promise<Answer>;
  /** Waits until `path` is answered by `service` (the tables follow the objects asynchronously). */
  servedBy(path: string, service: string, headers?: Record<string, string>): Promise<unknown>;
  expectBackend(
    path: string,
    headers: Record<string, string>,
    service: string | number,
  ): Promise<void>;
  /**
   * Asks until `path` is answered as expected (`want`: the service, in `namespace`, or
   * fedgate's status), then asks twice more and expects the same: the upstream suite's
   * "eventually consistent" answer. The last answer, for a case to look further.
   */
  answers(
    path: string,
    headers: Record<string, string>,
    want: string | number,
    namespace?: string,
  ): Promise<Answer>;
}

/** `namespace/name`, or a name in gateway-conformance-infra. */
export function routeRef(route: string): { ns: string; name: string } {
  const slash = route.indexOf('/');
  return slash < 0
    ? { ns: INFRA, name: route }
    : { ns: route.slice(0, slash), name: route.slice(slash + 1) };
}

/** What an answer is, as a case compares it: the status, and the backend that gave it. */
function answered(r: Answer, want: string | number): unknown[] {
  return typeof want === 'number' ? [r.status] : [r.status, r.body.service, r.body.namespace];
}

interface ScenarioClusters {
  clusters: { name: string }[];
  services?: { clusters?: string[] }[];
  gatewayAPIChannel?: GatewayApiChannel;
}

/**
 * `scenario` with only `clusters` (and its services only in them) and the Gateway API
 * channel asked for, written into `dir`.
 */
async function chooseClusters(
  scenario: string,
  opts: Pick<GatewayE2EOptions, 'clusters' | 'gatewayAPIChannel'>,
  dir: string,
): Promise<string> {
  const { clusters, gatewayAPIChannel } = opts;
  if (clusters === undefined && gatewayAPIChannel === undefined) return scenario;
  const doc = parse(await readFile(scenario, 'utf8')) as ScenarioClusters;
  if (gatewayAPIChannel !== undefined) doc.gatewayAPIChannel = gatewayAPIChannel;
  if (clusters !== undefined) {
    doc.clusters = doc.clusters.filter((c) => clusters.includes(c.name));
    for (const s of doc.services ?? []) {
      if (s.clusters) s.clusters = s.clusters.filter((c) => clusters.includes(c));
    }
  }
  const file = join(dir, 'scenario.yaml');
  await writeFile(file, stringify(doc));
  return file;
}

/** Reads an answer to the end and hands it to `done`, its body parsed when it is the backends' JSON. */
export function readAnswer(res: IncomingMessage, done: (a: Answer) => void): void {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => {
    text += d;
  });
  res.on('end', () => {
    let body: Answer['body'] = {};
    try {
      body = JSON.parse(text) as Answer['body'];
    } catch {
      // fedgate's own error pages are not the backends' JSON.
    }
    done({ status: res.statusCode ?? 0, headers: res.headers, body, text });
  });
}

/** Registers the federation and fedgate around the calling describe; the fields fill in beforeAll. */
export function useGatewayE2E(api: ApiKind, opts: GatewayE2EOptions): GatewayE2E {
  let dir = '';
  let local: LaunchedFederation | undefined;
  let run: ReturnType<typeof start> | undefined;
  let httpPort = 0;

  const kubectl: GatewayE2E['kubectl'] = (args, env = {}) =>
    new Promise((resolve) => {
      execFile(
        requireKubeTools().kubectl,
        [`--kubeconfig=${local?.kubeconfigs.alpha}`, ...args],
        { timeout: 30_000, env: { ...process.env, KUBECONFIG: '', ...env } },
        (err, stdout, stderr) =>
          resolve({
            code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
            stdout,
            stderr,
          }),
      );
    });
  const manifest = async (name: string): Promise<string> => {
    const text = await readFile(join(FIXTURES, `${name}.yaml`), 'utf8');
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, text.replaceAll('{GATEWAY_CLASS_NAME}', CLASS));
    return file;
  };
  const status = async <T>(kind: string, name: string, ns = INFRA): Promise<T | undefined> => {
    const r = await kubectl(['get', kind, name, '-n', ns, '-o', 'json']);
    if (r.code !== 0) return undefined;
    return (JSON.parse(r.stdout) as { status?: T }).status;
  };
  const routeConditions = async (route: string, kind = 'httproute', parent?: string) => {
    const { ns, name } = routeRef(route);
    const s = await status<RouteStatus>(kind, name, ns);
    return (
      s?.parents?.find(
        (p) =>
          p.controllerName === GATEWAY_CONTROLLER &&
          (parent === undefined || p.parentRef.name === parent),
      )?.conditions ?? []
    );
  };
  const condition = async (route: string, type: string, kind = 'httproute') =>
    (await routeConditions(route, kind)).find((c) => c.type === type);
  const get: GatewayE2E['get'] = (path, headers = {}, method = 'GET') =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: httpPort,
          path,
          method,
          agent: false,
          timeout: 5000,
          headers: { host: 'example.com', ...headers },
        },
        (res) => readAnswer(res, resolve),
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 5 s`)));
      req.on('error', reject);
      req.end();
    });
  const programmed: GatewayE2E['programmed'] = (gateway) =>
    waitFor(
      async () => {
        const s = await status<GatewayStatus>('gateway', gateway);
        return s?.conditions?.find((c) => c.type === 'Programmed')?.status === 'True';
      },
      30_000,
      `the ${gateway} Gateway to be Programmed`,
      200,
    );
  const servedBy: GatewayE2E['servedBy'] = (path, service, headers = {}) =>
    waitFor(
      async () => (await get(path, headers)).body.service === service,
      30_000,
      `${path} to reach ${service}`,
      100,
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `gateway-e2e-${api}-`));
    httpPort = await freePort();
    const listen = `127.0.0.1:${httpPort}`;
    const extra = opts.config?.({ httpPort, listen }) ?? {};
    local = await launchLocalFederation({
      scenario: await chooseClusters(opts.scenario ?? CONFORMANCE_SCENARIO, opts, dir),
      dir,
      api,
      addressBlock: opts.addressBlock,
      apiPort: 0,
      log: new LogCapture('warn').logger,
      config: {
        dns: { listen: ['127.0.0.1:0'], rrl: { enabled: false } },
        http: { listen: [listen] },
        admin: { listen: '127.0.0.1:0' },
        health: { active: { enabled: false } },
        watch: watchFor(api),
        gatewayAPI: {
          clusters: ['alpha'],
          listeners: [
            { port: 80, protocol: 'HTTP', address: listen },
            ...(opts.listeners?.({ httpPort }) ?? []),
          ],
        },
        writeBack: { enabled: true, lease: LEASE },
        ...extra,
      },
    });
    // The class, the conformance namespaces and the chosen Gateways (base manifests).
    const gateways = opts.gateways ?? ['same-namespace'];
    const base = parseAllDocuments(await readFile(join(FIXTURES, 'base.yaml'), 'utf8'))
      .map((d) => d.toJSON() as { kind: string; metadata: { name: string } })
      .filter(
        (o) =>
          (o.kind === 'Namespace' && o.metadata.name !== 'gateway-conformance-app-backend') ||
          (o.kind === 'Gateway' && gateways.includes(o.metadata.name)),
      );
    const classDoc = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: CLASS },
      spec: { controllerName: GATEWAY_CONTROLLER },
    };
    const baseFile = join(dir, 'base.yaml');
    await writeFile(
      baseFile,
      [classDoc, ...base]
        .map((o) => stringify(o))
        .join('---\n')
        .replaceAll('{GATEWAY_CLASS_NAME}', CLASS),
    );
    const applied = await kubectl(['apply', '-f', baseFile]);
    expect(applied.code, applied.stderr).toBe(0);

    run = start(process.execPath, [CLI, 'start', '--config', local.configFile]);
    const started = run;
    await waitFor(
      () => started.out().includes('fedgate: ready'),
      60_000,
      'fedgate to be ready',
      100,
    );
    // The elected writer has written the Gateways' status: they are programmed on fedgate.
    for (const g of gateways) await programmed(g);
  }, 240_000);

  afterAll(async () => {
    if (run?.child.pid && run.child.exitCode === null && run.child.signalCode === null) {
      process.kill(-run.child.pid, 'SIGKILL');
      await run.exited;
    }
    await local?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  return {
    get dir() {
      return dir;
    },
    get local() {
      if (local === undefined) throw new Error('the federation is not up (beforeAll failed)');
      return local;
    },
    get httpPort() {
      return httpPort;
    },
    kubectl,
    manifest,
    apply: async (name) => {
      const r = await kubectl(['apply', '-f', await manifest(name)]);
      expect(r.code, r.stderr).toBe(0);
    },
    remove: async (name) => {
      const r = await kubectl(['delete', '-f', await manifest(name)]);
      expect(r.code, r.stderr).toBe(0);
    },
    status,
    routeConditions,
    condition,
    programmed,
    accepted: (route, kind = 'httproute') =>
      waitFor(
        async () => {
          const c = await routeConditions(route, kind);
          const ok = (t: string) => c.find((x) => x.type === t)?.status === 'True';
          return ok('Accepted') && ok('ResolvedRefs');
        },
        30_000,
        `${route} to be Accepted with its refs resolved`,
        200,
      ),
    get,
    servedBy,
    answers: async (path, headers, want, namespace = INFRA) => {
      const expected = typeof want === 'number' ? [want] : [200, want, namespace];
      const what = `${headers.host ?? 'example.com'}${path} ${JSON.stringify(headers)}`;
      await waitFor(
        async () => {
          const got = JSON.stringify(answered(await get(path, headers), want));
          // Thrown, not returned: a timeout then says what was answered last.
          if (got !== JSON.stringify(expected)) throw new Error(`answered ${got}`);
          return true;
        },
        30_000,
        `${what} to be answered by ${want}`,
        100,
      );
      expect(answered(await get(path, headers), want), what).toEqual(expected);
      const last = await get(path, headers);
      expect(answered(last, want), what).toEqual(expected);
      return last;
    },
    expectBackend: async (path, headers, service) => {
      const r = await get(path, headers);
      const what = `${path} ${JSON.stringify(headers)}`;
      if (typeof service === 'number') expect(r.status, what).toBe(service);
      else expect([r.status, r.body.service], what).toEqual([200, service]);
    },
  };
}
