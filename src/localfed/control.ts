// The control channel of a running local federation: `fedgate localfed ctl` talks
// to it. A loopback HTTP server with a bearer token; where it listens and the token
// are in DIR/localfed.json, readable by the owner only.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { FedgateError, httpStatusFor } from '../errors.ts';
import type { BackendMode } from './backends.ts';
import { ActionError, type FederationDescription, type LocalFederation } from './federation.ts';

export const STATE_FILE = 'localfed.json';

export interface StateFile {
  pid: number;
  control: { url: string; token: string };
  kubeconfigs: Record<string, string>;
  federation: FederationDescription;
}

export interface ActionUsage {
  name: string;
  args: string;
  help: string;
  /** How many arguments it takes: [fewest, most]. */
  arity: [number, number];
  run: (fed: LocalFederation, args: string[]) => Promise<string> | string;
}

const FAULTS = ['refuse', 'hang', 'drop'] as const;
const MODES = new Map<string, BackendMode>([
  ['ok', 'ok'],
  ['503', 'error503'],
  ['reset', 'reset'],
]);

export const ACTIONS: ActionUsage[] = [
  {
    name: 'fail-zone',
    args: 'ZONE',
    help: 'stop every backend in ZONE; its nodes go NotReady and endpoints not ready',
    arity: [1, 1],
    run: (f, [zone]) => f.failZone(zone!),
  },
  {
    name: 'restore-zone',
    args: 'ZONE',
    help: 'bring ZONE back',
    arity: [1, 1],
    run: (f, [zone]) => f.restoreZone(zone!),
  },
  {
    name: 'fail-cluster',
    args: 'NAME',
    help: 'take a whole cluster off the network: API and backends down',
    arity: [1, 1],
    run: (f, [name]) => f.failCluster(name!),
  },
  {
    name: 'restore-cluster',
    args: 'NAME',
    help: 'bring the cluster back',
    arity: [1, 1],
    run: (f, [name]) => f.restoreCluster(name!),
  },
  {
    name: 'api-down',
    args: 'NAME [refuse|hang|drop]',
    help: 'break only the API server: refuse connections (default), hang, or drop every watch',
    arity: [1, 2],
    run: (f, [name, raw]) => {
      const mode = (raw ?? 'refuse') as (typeof FAULTS)[number];
      if (!FAULTS.includes(mode))
        throw new ActionError(`api-down: mode must be one of ${FAULTS.join(', ')}, not "${mode}"`);
      return f.apiDown(name!, mode);
    },
  },
  {
    name: 'api-up',
    args: 'NAME',
    help: 'serve the API normally again',
    arity: [1, 1],
    run: (f, [name]) => f.apiUp(name!),
  },
  {
    name: 'compact',
    args: 'NAME',
    help: 'compact the API history: the next watch from an older revision gets 410',
    arity: [1, 1],
    run: (f, [name]) => f.compact(name!),
  },
  {
    name: 'scale',
    args: 'NS/SVC CLUSTER ZONE N',
    help: 'set the replicas of a service in one zone of one cluster',
    arity: [4, 4],
    run: (f, [svc, cluster, zone, n]) => {
      if (!/^\d+$/.test(n!)) throw new ActionError(`scale: N must be a whole number, not "${n}"`);
      return f.scale(svc!, cluster!, zone!, Number(n));
    },
  },
  {
    name: 'health',
    args: 'TARGET pass|fail',
    help: "flip the health endpoint of pods (TARGET: pod name, pod address, zone or cluster); Kubernetes' view is untouched",
    arity: [2, 2],
    run: (f, [target, state]) => {
      if (state !== 'pass' && state !== 'fail')
        throw new ActionError(`health: state must be pass or fail, not "${state}"`);
      return f.setHealth(target!, state === 'pass');
    },
  },
  {
    name: 'mode',
    args: 'TARGET ok|503|reset',
    help: 'how pods answer all but health checks: normally, 503 (gRPC: UNAVAILABLE), or by resetting the connection',
    arity: [2, 2],
    run: (f, [target, raw]) => {
      const mode = MODES.get(raw ?? '');
      if (!mode)
        throw new ActionError(`mode: must be one of ${[...MODES.keys()].join(', ')}, not "${raw}"`);
      return f.setMode(target!, mode);
    },
  },
];

/** Runs a named action after checking how many arguments it got. */
export function dispatch(fed: LocalFederation, name: string, args: string[]): Promise<string> {
  const action = ACTIONS.find((a) => a.name === name);
  if (!action) return Promise.reject(new ActionError(`unknown action "${name}"`));
  const [min, max] = action.arity;
  if (args.length < min || args.length > max) {
    return Promise.reject(new ActionError(`usage: ${action.name} ${action.args}`));
  }
  return Promise.resolve().then(() => action.run(fed, args));
}

export class ControlServer {
  readonly #fed: LocalFederation;
  readonly #token = randomBytes(24).toString('base64url');
  readonly #server: Server;
  #url = '';
  #stateDir: string | undefined;
  #kubeconfigs: Record<string, string> = {};

  constructor(fed: LocalFederation) {
    this.#fed = fed;
    this.#server = createServer((req, res) => {
      const send = (code: number, body: unknown) => {
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const given = Buffer.from((req.headers.authorization ?? '').replace(/^Bearer /, ''));
      const want = Buffer.from(this.#token);
      if (given.length !== want.length || !timingSafeEqual(given, want))
        return send(401, { error: 'unauthorized' });
      if (req.method === 'GET' && req.url === '/v1/status') {
        this.#fed.describe().then(
          (d) => send(200, d),
          (e: unknown) => send(500, { error: (e as Error).message }),
        );
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v1/actions')
        return send(404, { error: 'not found' });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: { action?: unknown; args?: unknown };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        } catch {
          return send(httpStatusFor('ACTION_INVALID'), {
            error: 'body must be JSON: {"action": "...", "args": [...]}',
          });
        }
        const args = Array.isArray(body.args) ? body.args.map(String) : [];
        this.run(String(body.action), args)
          .then((message) => send(200, { message }))
          .catch((e: unknown) =>
            send(e instanceof FedgateError ? httpStatusFor(e.code) : 500, {
              error: (e as Error).message,
            }),
          );
      });
    });
  }

  /** Runs an action and keeps the state file current (the demo's page calls this in-process). */
  async run(name: string, args: readonly string[]): Promise<string> {
    const message = await dispatch(this.#fed, name, [...args]);
    if (this.#stateDir) await this.writeState(this.#stateDir, this.#kubeconfigs);
    return message;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = this.#server.address();
    if (!addr || typeof addr === 'string') throw new Error('control server has no TCP address');
    this.#url = `http://127.0.0.1:${addr.port}`;
    return this.#url;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Writes DIR/localfed.json now, and again after every action. */
  async writeState(dir: string, kubeconfigs: Record<string, string>): Promise<string> {
    this.#stateDir = dir;
    this.#kubeconfigs = kubeconfigs;
    const state: StateFile = {
      pid: process.pid,
      control: { url: this.#url, token: this.#token },
      kubeconfigs,
      federation: await this.#fed.describe(),
    };
    const path = join(dir, STATE_FILE);
    await writeFile(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    return path;
  }
}

async function readState(dir: string): Promise<StateFile> {
  const path = join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new FedgateError(
      'LOCALFED_UNAVAILABLE',
      `no local federation found: ${path} is missing (start one with: fedgate localfed up --dir ${dir})`,
    );
  }
  try {
    return JSON.parse(text) as StateFile;
  } catch {
    throw new FedgateError('LOCALFED_UNAVAILABLE', `${path} is not valid JSON`);
  }
}

async function call(
  dir: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<unknown> {
  const state = await readState(dir);
  let res: Response;
  try {
    res = await fetch(`${state.control.url}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${state.control.token}`,
        'Content-Type': 'application/json',
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new FedgateError(
      'LOCALFED_UNAVAILABLE',
      `the local federation in ${dir} does not answer at ${state.control.url} (is it still running?): ${(e as Error).message}`,
    );
  }
  const answer = (await res.json()) as { error?: string; message?: string };
  if (res.status === httpStatusFor('ACTION_INVALID')) {
    throw new FedgateError('ACTION_INVALID', answer.error ?? 'bad request');
  }
  if (!res.ok) throw new FedgateError('LOCALFED_UNAVAILABLE', answer.error ?? `HTTP ${res.status}`);
  return answer;
}

export async function runAction(dir: string, action: string, args: string[]): Promise<string> {
  const answer = (await call(dir, 'POST', '/v1/actions', { action, args })) as { message: string };
  return answer.message;
}

export async function fetchStatus(dir: string): Promise<FederationDescription> {
  return (await call(dir, 'GET', '/v1/status')) as FederationDescription;
}
