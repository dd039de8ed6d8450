// A CA and a server certificate per simulated cluster, made at start-up with
// ECDSA P-256 keys (fast to generate, accepted by Node's TLS and by kubectl).
// @peculiar/x509 resolves its ASN.1 schemas through tsyringe, which needs this polyfill.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface ClusterPki {
  caCert: string;
  serverCert: string;
  serverKey: string;
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

/** A CA that can sign more certificates: its PEM and its keys. */
export interface CertificateAuthority {
  cert: string;
  readonly x509: x509.X509Certificate;
  readonly keys: webcrypto.CryptoKeyPair;
}

export interface Issued {
  cert: string;
  key: string;
}

export async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
}

/** A self-signed CA named `CN=<name>`, valid from a day before `now` for a year. */
export async function makeCa(name: string, now = new Date()): Promise<CertificateAuthority> {
  const keys = await keyPair();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + 365 * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: ca.toString('pem'), x509: ca, keys };
}

export interface IssueOptions {
  /** The subject's common name. */
  name: string;
  /** Subject alternative names: IPs or DNS names (`localhost` is always added for servers). */
  hosts?: string[];
  /** URI subject alternative names (a SPIFFE ID). */
  uris?: string[];
  /** `server` (serverAuth) or `client` (clientAuth). */
  usage: 'server' | 'client';
  /** A key pair to certify; a fresh one when not given (reusing one saves the key generation). */
  keys?: webcrypto.CryptoKeyPair;
  now?: Date;
}

/** A certificate `ca` signs, with its private key as PKCS#8 PEM. */
export async function issue(ca: CertificateAuthority, options: IssueOptions): Promise<Issued> {
  const now = options.now ?? new Date();
  const keys = options.keys ?? (await keyPair());
  const hosts =
    options.usage === 'server' ? ['localhost', ...(options.hosts ?? [])] : (options.hosts ?? []);
  const names = [
    ...[...new Set(hosts)].map((h) =>
      isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h },
    ),
    ...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  const usage =
    options.usage === 'server'
      ? x509.ExtendedKeyUsage.serverAuth
      : x509.ExtendedKeyUsage.clientAuth;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${options.name}`,
    issuer: ca.x509.subject,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + 365 * DAY_MS),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([usage]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.x509, false),
    ],
  });
  const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem'), key: pemKey(keyDer) };
}

/** Makes a CA named after the cluster and a server certificate for `hosts` (IPs or DNS names). */
export async function makeClusterPki(
  cluster: string,
  hosts: string[],
  now = new Date(),
): Promise<ClusterPki> {
  const ca = await makeCa(`localfed-${cluster}-ca`, now);
  const server = await issue(ca, {
    name: `kube-apiserver-${cluster}`,
    hosts,
    usage: 'server',
    now,
  });
  return { caCert: ca.cert, serverCert: server.cert, serverKey: server.key };
}
