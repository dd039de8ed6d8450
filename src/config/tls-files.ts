// The backend TLS profiles' files, checked when the configuration loads (so by
// `fedgate check-config`, at start and at every reload): each exists, each CA file
// holds PEM certificates that parse, and a client key belongs to its certificate.
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { BackendTlsProfile } from './schema.ts';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle; throws when it holds none or one does not parse. */
export function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error('holds no PEM certificate');
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new Error(`certificate ${i + 1} does not parse: ${(e as Error).message}`);
    }
  });
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `file not found: ${file}` : `cannot read ${file}: ${code}`);
  }
}

/** Problems of one profile's files, each naming the field and the file. */
export function backendTlsProblems(at: string, p: BackendTlsProfile): string[] {
  const problems: string[] = [];
  for (const [i, file] of (p.caFiles ?? []).entries()) {
    try {
      pemCertificates(read(file));
    } catch (e) {
      problems.push(`${at}.caFiles[${i}]: ${file}: ${(e as Error).message}`);
    }
  }
  const c = p.clientCertificate;
  if (c) {
    let cert: X509Certificate | undefined;
    let key: ReturnType<typeof createPrivateKey> | undefined;
    try {
      cert = pemCertificates(read(c.certFile))[0];
    } catch (e) {
      problems.push(`${at}.clientCertificate.certFile: ${c.certFile}: ${(e as Error).message}`);
    }
    try {
      key = createPrivateKey(read(c.keyFile));
    } catch (e) {
      problems.push(`${at}.clientCertificate.keyFile: ${c.keyFile}: ${(e as Error).message}`);
    }
    if (cert && key) {
      const der = (k: ReturnType<typeof createPublicKey>) =>
        k.export({ type: 'spki', format: 'der' });
      if (!der(createPublicKey(key)).equals(der(cert.publicKey))) {
        problems.push(
          `${at}.clientCertificate: the key in ${c.keyFile} does not belong to the certificate in ${c.certFile}`,
        );
      }
    }
  }
  return problems;
}
