// A real Kubernetes control plane for tests, started the way controller-runtime's envtest
// starts one: etcd on loopback in a temporary directory, then upstream's kube-apiserver
// in front of it, on loopback with a generated serving certificate, RBAC, and a static
// token for an admin in system:masters. No controller-manager, scheduler or kubelet:
// objects are stored and served, nothing acts on them (no Pod runs, no Endpoints or
// ServiceAccounts are made, no namespace deletion finishes).
//
// The binaries come from scripts/ensure-kube-tools.sh (built from tools/kube, cached).
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const ENSURE_KUBE_TOOLS = join(ROOT, 'scripts/ensure-kube-tools.sh');
// A cold build of kube-apiserver on two cores takes minutes (tools/kube/README.md).
const BUILD_TIMEOUT_MS = 40 * 60_000;

export interface KubeTools {
  dir: string;
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
  /** The MCS API's ServiceExport CRD manifest, from sigs.k8s.io/mcs-api. */
  serviceExportCrd: string;
}

/**
 * The directory holding kube-apiserver, etcd and kubectl, building them first when the
 * cache lacks them (synchronously, like requireTool: callers use it at hook level).
 */
export function requireKubeTools(): KubeTools {
  const built = process.env.FEDGATE_KUBE_TOOLS;
  if (built) return kubeToolsIn(built);
  const r = spawnSync(ENSURE_KUBE_TOOLS, [], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: BUILD_TIMEOUT_MS,
  });
  const dir = r.stdout.trim();
  if (r.status !== 0 || dir === '') {
    const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}: ${r.stderr.trim()}`;
    throw new Error(`${ENSURE_KUBE_TOOLS} failed: ${why}`);
  }
  return kubeToolsIn(dir);
}

function kubeToolsIn(dir: string): KubeTools {
  return {
    dir,
    kubeApiserver: join(dir, 'kube-apiserver'),
    etcd: join(dir, 'etcd'),
    kubectl: join(dir, 'kubectl'),
    serviceExportCrd: join(dir, 'crds/multicluster.x-k8s.io_serviceexports.yaml'),
  };
}

export interface ControlPlaneOptions {
  tools?: KubeTools;
  /** How long kube-apiserver may take to report /readyz ok (it installs its CRDs, RBAC). */
  readyTimeoutMs?: number;
  /** Service ClusterIP range (default DEFAULT_SERVICE_CLUSTER_IP_RANGE). */
  serviceClusterIpRange?: string;
  /** Extra kube-apiserver flags, `--name=value`, appended after the defaults. */
  apiserverArgs?: string[];
  /** More static-token users beside `admin`; RBAC grants them nothing unless a test does. */
  users?: { name: string; token: string; groups?: string[] }[];
}

/**
 * Service ClusterIPs come from loopback (kube-apiserver 1.37 accepts a 127/8 range:
 * the `kubernetes` Service gets 127.64.0.1). No kube-proxy runs, so nothing routes
 * them; should anything dial one, it stays on this machine.
 */
export const DEFAULT_SERVICE_CLUSTER_IP_RANGE = '127.64.0.0/20';

interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
}

export class ControlPlane {
  readonly tools: KubeTools;
  readonly dir: string;
  readonly etcdUrl: string;
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** Bearer token of `admin`, in group system:masters. */
  readonly token: string;
  /** The self-signed CA kube-apiserver generated in its --cert-dir, PEM. */
  readonly ca: string;
  readonly kubeconfig: string;
  readonly #procs: Proc[];

  private constructor(f: {
    tools: KubeTools;
    dir: string;
    etcdUrl: string;
    url: string;
    token: string;
    ca: string;
    kubeconfig: string;
    procs: Proc[];
  }) {
    this.tools = f.tools;
    this.dir = f.dir;
    this.etcdUrl = f.etcdUrl;
    this.url = f.url;
    this.token = f.token;
    this.ca = f.ca;
    this.kubeconfig = f.kubeconfig;
    this.#procs = f.procs;
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const tools = opts.tools ?? requireKubeTools();
    const dir = await mkdtemp(join(tmpdir(), 'fedgate-kube-'));
    const procs: Proc[] = [];
    try {
      // etcd: a single member on loopback, fsync off (envtest does the same: the data
      // dies with the test, so durability buys nothing and fsync costs seconds).
      const [clientPort, peerPort] = await twoPorts();
      const etcdUrl = `http://127.0.0.1:${clientPort}`;
      const peerUrl = `http://127.0.0.1:${peerPort}`;
      procs.push(
        launch(dir, 'etcd', tools.etcd, [
          '--name=fedgate-test',
          `--data-dir=${join(dir, 'etcd')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=fedgate-test=${peerUrl}`,
          '--initial-cluster-state=new',
          '--unsafe-no-fsync=true',
          '--log-level=warn',
        ]),
      );
      await untilExit(
        procs[0],
        waitFor(
          async () => (await get(`${etcdUrl}/health`)).includes('"health":"true"'),
          30_000,
          `etcd healthy on ${etcdUrl} (log: ${join(dir, 'etcd.log')})`,
          100,
        ),
      );

      // Service-account signing key pair, a static admin token, and a cert dir in which
      // kube-apiserver generates its own self-signed CA and serving certificate.
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const saKey = join(dir, 'sa.key');
      const saPub = join(dir, 'sa.pub');
      await writeFile(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      await writeFile(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
      const token = randomBytes(24).toString('hex');
      const tokens = join(dir, 'tokens.csv');
      const users = (opts.users ?? []).map(
        (u) =>
          `${u.token},${u.name},${u.name}-uid${u.groups?.length ? `,"${u.groups.join(',')}"` : ''}\n`,
      );
      await writeFile(tokens, [`${token},admin,admin-uid,"system:masters"\n`, ...users].join(''), {
        mode: 0o600,
      });
      const certDir = join(dir, 'certs');
      await mkdir(certDir);

      const port = await freePort();
      const url = `https://127.0.0.1:${port}`;
      procs.push(
        launch(dir, 'kube-apiserver', tools.kubeApiserver, [
          `--etcd-servers=${etcdUrl}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          // The endpoint reconciler would publish the advertise address as the Endpoints of
          // the `kubernetes` Service, and since 1.37 refuses a loopback one at startup
          // ("cannot use public IP 127.0.0.1 with endpoint reconciler"). Nothing here reads
          // that Service's Endpoints (no Pods run), so no reconciler.
          '--endpoint-reconciler-type=none',
          `--secure-port=${port}`,
          `--cert-dir=${certDir}`,
          `--token-auth-file=${tokens}`,
          '--authorization-mode=RBAC',
          `--service-account-issuer=${url}`,
          `--service-account-key-file=${saPub}`,
          `--service-account-signing-key-file=${saKey}`,
          `--service-cluster-ip-range=${opts.serviceClusterIpRange ?? DEFAULT_SERVICE_CLUSTER_IP_RANGE}`,
          ...(opts.apiserverArgs ?? []),
        ]),
      );
      const apiserver = procs[1];
      await untilExit(
        apiserver,
        waitFor(
          async () => (await get(`${url}/readyz`, token)) === 'ok',
          opts.readyTimeoutMs ?? 120_000,
          `kube-apiserver /readyz on ${url} (log: ${join(dir, 'kube-apiserver.log')})`,
          200,
        ),
      );

      const ca = await readFile(join(certDir, 'apiserver.crt'), 'utf8');
      const kubeconfig = join(dir, 'kubeconfig');
      await writeFile(kubeconfig, kubeconfigYaml(url, ca, token), { mode: 0o600 });
      return new ControlPlane({ tools, dir, etcdUrl, url, token, ca, kubeconfig, procs });
    } catch (e) {
      await stopAll(procs);
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Runs the built kubectl against this control plane; rejects on a non-zero exit. */
  async kubectl(args: string[], input?: string): Promise<string> {
    return (await this.kubectlOutput(args, input)).stdout;
  }

  /** As kubectl, with its stderr too (where -v=N writes request logs). */
  kubectlOutput(args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.tools.kubectl,
        [`--kubeconfig=${this.kubeconfig}`, ...args],
        { encoding: 'utf8', timeout: 60_000, env: { ...process.env, KUBECONFIG: '' } },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`kubectl ${args.join(' ')}: ${err.message}\n${stderr}`));
          else resolve({ stdout, stderr });
        },
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  }

  /** Stops kube-apiserver, then etcd, and removes the temporary directory. */
  async stop(): Promise<void> {
    await stopAll(this.#procs);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** `wait`, failing at once (with the log's tail) if `p` exits first. */
async function untilExit<T>(p: Proc | undefined, wait: Promise<T>): Promise<T> {
  if (p === undefined) return wait;
  const exited = once(p.child, 'exit').then(async () => {
    // Let the log stream flush what the process wrote last.
    await new Promise((resolve) => setTimeout(resolve, 100));
    throw new Error(`${p.name} exited early; its log ends:\n${await tail(p.log)}`);
  });
  exited.catch(() => {});
  return Promise.race([wait, exited]);
}

async function twoPorts(): Promise<[number, number]> {
  for (;;) {
    const a = await freePort();
    const b = await freePort();
    if (a !== b) return [a, b];
  }
}

function launch(dir: string, name: string, bin: string, args: string[]): Proc {
  const log = join(dir, `${name}.log`);
  const out = createWriteStream(log);
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  child.once('exit', () => out.end());
  return { name, child, log };
}

async function stopAll(procs: Proc[]): Promise<void> {
  // Reverse order: kube-apiserver before the etcd it writes to.
  for (const p of [...procs].reverse()) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
    const exited = once(p.child, 'exit');
    p.child.kill('SIGTERM');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}

async function tail(log: string | undefined): Promise<string> {
  if (log === undefined) return '';
  const text = await readFile(log, 'utf8').catch(() => '');
  return text.split('\n').slice(-15).join('\n');
}

/** GET over loopback; for https, the server's self-signed certificate is not checked. */
function get(url: string, token?: string): Promise<string> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      u,
      {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        rejectUnauthorized: false,
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve(body));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function kubeconfigYaml(server: string, ca: string, token: string): string {
  const caData = Buffer.from(ca).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fedgate-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${caData}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: fedgate-test',
    '  context:',
    '    cluster: fedgate-test',
    '    user: admin',
    'current-context: fedgate-test',
    '',
  ].join('\n');
}
