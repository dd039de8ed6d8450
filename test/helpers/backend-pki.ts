// Certificates for backend TLS tests: CAs, and server or client certificates they
// issue for DNS names and URIs (ECDSA P-256, fast to make), as PEM text.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface Issued {
  readonly cert: string;
  readonly key: string;
}

export interface TestCa extends Issued {
  readonly name: string;
  issue(opts: {
    cn: string;
    dns?: string[];
    uris?: string[];
    client?: boolean;
    expired?: boolean;
  }): Promise<Issued>;
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

const keys = () =>
  webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;

export async function makeCa(name: string): Promise<TestCa> {
  const now = Date.now();
  const caKeys = await keys();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 30 * DAY_MS),
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const caKey = pemKey(await webcrypto.subtle.exportKey('pkcs8', caKeys.privateKey));
  return {
    name,
    cert: ca.toString('pem'),
    key: caKey,
    async issue(opts) {
      const k = await keys();
      const names = [
        ...(opts.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(opts.uris ?? []).map((value) => ({ type: 'url' as const, value })),
      ];
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${opts.cn}`,
        issuer: ca.subject,
        notBefore: new Date(now - (opts.expired ? 10 : 1) * DAY_MS),
        notAfter: new Date(now + (opts.expired ? -DAY_MS : 30 * DAY_MS)),
        signingKey: caKeys.privateKey,
        publicKey: k.publicKey,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([
            opts.client ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth,
          ]),
          ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
          await x509.AuthorityKeyIdentifierExtension.create(ca, false),
        ],
      });
      return {
        cert: cert.toString('pem'),
        key: pemKey(await webcrypto.subtle.exportKey('pkcs8', k.privateKey)),
      };
    },
  };
}
