// The certificates the local federation's pods serve TLS with: one CA per member
// cluster (as a cluster's own mesh or cert-manager CA would be), one key per cluster
// reused for every pod's certificate (generating a key per pod would slow the start),
// each certificate naming the pod's address and its service's names. And one CA for
// clients, with a client certificate for fedgate, which pods requiring mutual TLS
// trust. `writeFiles` puts the PEMs where fedgate's configuration can name them.
import type { webcrypto } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CertificateAuthority, type Issued, issue, keyPair, makeCa } from './pki.ts';
import type { PodInfo } from './pod-info.ts';

/** The names a pod's certificate carries for its service, as clients dial it. */
export function serviceNames(service: string, namespace: string): string[] {
  const base = `${service}.${namespace}`;
  return [base, `${base}.svc`, `${base}.svc.cluster.local`, `${base}.svc.clusterset.local`];
}

/** What a pod's TLS ports need: its certificate, and the CA its mTLS ports trust. */
export interface PodTlsSource {
  certificate(info: PodInfo): Promise<Issued>;
  readonly clientCa: string;
}

/** Where `writeFiles` put the PEMs. */
export interface PkiFiles {
  /** Cluster name → its backend CA. */
  clusterCas: Record<string, string>;
  clientCa: string;
  clientCert: string;
  clientKey: string;
}

export const PKI_DIR = 'pki';

export class BackendPki {
  readonly #clusters: Map<string, { ca: CertificateAuthority; keys: webcrypto.CryptoKeyPair }>;
  readonly #clientCa: CertificateAuthority;
  /** fedgate's client certificate, signed by the clients' CA. */
  readonly client: Issued;

  private constructor(
    clusters: Map<string, { ca: CertificateAuthority; keys: webcrypto.CryptoKeyPair }>,
    clientCa: CertificateAuthority,
    client: Issued,
  ) {
    this.#clusters = clusters;
    this.#clientCa = clientCa;
    this.client = client;
  }

  static async create(clusters: string[]): Promise<BackendPki> {
    const made = await Promise.all(
      clusters.map(async (name) => {
        const [ca, keys] = await Promise.all([makeCa(`localfed-${name}-backends-ca`), keyPair()]);
        return [name, { ca, keys }] as const;
      }),
    );
    const clientCa = await makeCa('localfed-clients-ca');
    const client = await issue(clientCa, { name: 'fedgate', usage: 'client' });
    return new BackendPki(new Map(made), clientCa, client);
  }

  get clientCa(): string {
    return this.#clientCa.cert;
  }

  /** The PEM of a cluster's backend CA. */
  clusterCa(cluster: string): string {
    return this.#cluster(cluster).ca.cert;
  }

  /** What the pods of one cluster serve with; certificates are made when a pod first needs one. */
  forCluster(cluster: string): PodTlsSource {
    const { ca, keys } = this.#cluster(cluster);
    const made = new Map<string, Promise<Issued>>();
    return {
      clientCa: this.#clientCa.cert,
      certificate(info) {
        let cert = made.get(info.pod);
        if (!cert) {
          const hosts = [info.ip, ...serviceNames(info.service, info.namespace)];
          cert = issue(ca, { name: info.pod, hosts, usage: 'server', keys });
          made.set(info.pod, cert);
        }
        return cert;
      },
    };
  }

  async writeFiles(dir: string): Promise<PkiFiles> {
    await mkdir(join(dir, PKI_DIR), { recursive: true, mode: 0o700 });
    const write = async (name: string, pem: string) => {
      const path = join(dir, PKI_DIR, name);
      await writeFile(path, pem, { mode: 0o600 });
      return path;
    };
    const clusterCas: Record<string, string> = {};
    for (const [name, { ca }] of this.#clusters) {
      clusterCas[name] = await write(`${name}-backends-ca.pem`, ca.cert);
    }
    return {
      clusterCas,
      clientCa: await write('clients-ca.pem', this.#clientCa.cert),
      clientCert: await write('fedgate-client.pem', this.client.cert),
      clientKey: await write('fedgate-client-key.pem', this.client.key),
    };
  }

  #cluster(name: string) {
    const c = this.#clusters.get(name);
    if (!c) throw new Error(`no backend CA for cluster ${name}`);
    return c;
  }
}
