// A real Kubernetes control plane, started the way controller-runtime's envtest starts
// one: etcd on loopback in a temporary directory, then upstream's kube-apiserver in front
// of it, on 127.0.0.1 with a generated serving certificate, RBAC, and a static token for
// an admin in system:masters. No controller-manager, scheduler or kubelet: objects are
// stored and served, nothing acts on them (no Pod runs, no EndpointSlices or
// ServiceAccount tokens are made, no namespace deletion finishes).
// tools/kube/README.md says why each flag.
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KubeTools, requireKubeTools } from './kube-tools.ts';
import { kubeconfigYaml } from './kubeconfig.ts';
import { freePort, httpGet, pollUntil } from './loopback-http.ts';
import { launch, type Proc, release, removeOnExit, stopProc, untilExit } from './processes.ts';

export interface ControlPlaneOptions {
  tools?: KubeTools | undefined;
  /** Names the kubeconfig's cluster and prefixes the temporary directory. */
  name?: string | undefined;
  /** The admin's bearer token (default: random). */
  token?: string | undefined;
  /** How long kube-apiserver may take to report /readyz ok (it installs its CRDs, RBAC). */
  readyTimeoutMs?: number | undefined;
  /** Service ClusterIP range (default DEFAULT_SERVICE_CLUSTER_IP_RANGE). */
  serviceClusterIpRange?: string | undefined;
  /** Extra kube-apiserver flags, `--name=value`, appended after the defaults. */
  apiserverArgs?: string[] | undefined;
  /** Extra etcd flags, `--name=value`, appended after the defaults. */
  etcdArgs?: string[] | undefined;
}

/**
 * Service ClusterIPs come from loopback (kube-apiserver 1.37 accepts a 127/8 range:
 * the `kubernetes` Service gets the first address). No kube-proxy runs, so nothing
 * routes them; should anything dial one, it stays on this machine.
 */
export const DEFAULT_SERVICE_CLUSTER_IP_RANGE = '127.64.0.0/20';

const RESTART_GRACE_MS = 2000;

export class KubeControlPlane {
  readonly tools: KubeTools;
  readonly dir: string;
  readonly etcdUrl: string;
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Bearer token of `admin`, in group system:masters. */
  readonly token: string;
  /** The self-signed certificate kube-apiserver generated in its --cert-dir (its own CA), PEM. */
  readonly ca: string;
  /** Path of a kubeconfig for `url`. */
  readonly kubeconfig: string;
  readonly #etcd: Proc;
  #apiserver: Proc;
  readonly #apiserverArgs: string[];
  readonly #readyTimeoutMs: number;

  private constructor(f: {
    tools: KubeTools;
    dir: string;
    etcdUrl: string;
    port: number;
    token: string;
    ca: string;
    kubeconfig: string;
    etcd: Proc;
    apiserver: Proc;
    apiserverArgs: string[];
    readyTimeoutMs: number;
  }) {
    this.tools = f.tools;
    this.dir = f.dir;
    this.etcdUrl = f.etcdUrl;
    this.port = f.port;
    this.url = `https://127.0.0.1:${f.port}`;
    this.token = f.token;
    this.ca = f.ca;
    this.kubeconfig = f.kubeconfig;
    this.#etcd = f.etcd;
    this.#apiserver = f.apiserver;
    this.#apiserverArgs = f.apiserverArgs;
    this.#readyTimeoutMs = f.readyTimeoutMs;
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<KubeControlPlane> {
    const tools = opts.tools ?? requireKubeTools();
    const name = opts.name ?? 'fedgate-kube';
    const dir = await mkdtemp(join(tmpdir(), `fedgate-kube-${name}-`));
    removeOnExit(dir);
    const readyTimeoutMs = opts.readyTimeoutMs ?? 120_000;
    let etcd: Proc | undefined;
    let apiserver: Proc | undefined;
    try {
      // etcd: a single member on loopback, fsync off (envtest does the same: the data
      // dies with the control plane, so durability buys nothing and fsync costs seconds).
      const [clientPort, peerPort] = await twoPorts();
      const etcdUrl = `http://127.0.0.1:${clientPort}`;
      const peerUrl = `http://127.0.0.1:${peerPort}`;
      etcd = launch(dir, 'etcd', tools.etcd, [
        '--name=fedgate',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=fedgate=${peerUrl}`,
        '--initial-cluster-state=new',
        '--unsafe-no-fsync=true',
        '--log-level=warn',
        ...(opts.etcdArgs ?? []),
      ]);
      const etcdProc = etcd;
      await untilExit(
        etcdProc,
        pollUntil(
          async () => (await httpGet(`${etcdUrl}/health`)).body.includes('"health":"true"'),
          30_000,
          `etcd healthy on ${etcdUrl} (log: ${etcdProc.log})`,
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
      const token = opts.token ?? randomBytes(24).toString('hex');
      const tokens = join(dir, 'tokens.csv');
      await writeFile(tokens, `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
      const certDir = join(dir, 'certs');
      await mkdir(certDir);

      const port = await freePort();
      const apiserverArgs = [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        // 1.37 refuses a loopback advertise address with the default endpoint reconciler,
        // which only writes the `kubernetes` Service's Endpoints: nothing here reads them.
        '--endpoint-reconciler-type=none',
        `--secure-port=${port}`,
        `--cert-dir=${certDir}`,
        `--token-auth-file=${tokens}`,
        '--authorization-mode=RBAC',
        `--service-account-issuer=https://127.0.0.1:${port}`,
        `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
        `--service-cluster-ip-range=${opts.serviceClusterIpRange ?? DEFAULT_SERVICE_CLUSTER_IP_RANGE}`,
        ...(opts.apiserverArgs ?? []),
      ];
      apiserver = launch(dir, 'kube-apiserver', tools.kubeApiserver, apiserverArgs);
      await waitReady(apiserver, port, token, readyTimeoutMs);

      const ca = await readFile(join(certDir, 'apiserver.crt'), 'utf8');
      const kubeconfig = join(dir, 'kubeconfig');
      await writeFile(
        kubeconfig,
        kubeconfigYaml({ cluster: name, server: `https://127.0.0.1:${port}`, caCert: ca, token }),
        { mode: 0o600 },
      );
      return new KubeControlPlane({
        tools,
        dir,
        etcdUrl,
        port,
        token,
        ca,
        kubeconfig,
        etcd,
        apiserver,
        apiserverArgs,
        readyTimeoutMs,
      });
    } catch (e) {
      if (apiserver) await stopProc(apiserver);
      if (etcd) await stopProc(etcd);
      await rm(dir, { recursive: true, force: true });
      release(dir);
      throw e;
    }
  }

  /**
   * Stops kube-apiserver and starts it again on the same port, etcd and certificates:
   * its watch cache starts afresh from etcd's current revision, open connections are cut.
   */
  async restartApiserver(): Promise<void> {
    // A kube-apiserver told to stop waits for its open watches to end (over 15 s seen with
    // one open): cut them after a short grace, etcd keeps everything anyway.
    await stopProc(this.#apiserver, RESTART_GRACE_MS);
    this.#apiserver = launch(
      this.dir,
      'kube-apiserver',
      this.tools.kubeApiserver,
      this.#apiserverArgs,
    );
    await waitReady(this.#apiserver, this.port, this.token, this.#readyTimeoutMs);
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
    await stopProc(this.#apiserver);
    await stopProc(this.#etcd);
    await rm(this.dir, { recursive: true, force: true });
    release(this.dir);
  }
}

async function waitReady(
  apiserver: Proc,
  port: number,
  token: string,
  timeoutMs: number,
): Promise<void> {
  const url = `https://127.0.0.1:${port}`;
  await untilExit(
    apiserver,
    pollUntil(
      async () => (await httpGet(`${url}/readyz`, token)).body === 'ok',
      timeoutMs,
      `kube-apiserver /readyz on ${url} (log: ${apiserver.log})`,
      200,
    ),
  );
}

async function twoPorts(): Promise<[number, number]> {
  for (;;) {
    const a = await freePort();
    const b = await freePort();
    if (a !== b) return [a, b];
  }
}
