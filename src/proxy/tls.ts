// The proxy's certificates: the SNI choice among them, the default one (no SNI),
// and a hash of their files so a reload can tell a rotation at the same paths.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';

export type Certificates = readonly { cert: string; key: string }[];

/** Picks the context for a TLS handshake's server name. */
export type SniContexts = (name: string) => SecureContext;

/** SNI: exact names first, then one-label wildcards, else the first certificate. */
export function sniContexts(certs: Certificates): SniContexts {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  let fallback: SecureContext | undefined;
  for (const c of certs) {
    const cert = readFileSync(c.cert);
    const ctx = createSecureContext({ cert, key: readFileSync(c.key) });
    fallback ??= ctx;
    const x = new X509Certificate(cert);
    const names = (x.subjectAltName ?? '')
      .split(', ')
      .filter((n) => n.startsWith('DNS:'))
      .map((n) => n.slice(4).toLowerCase());
    for (const n of names) {
      if (n.startsWith('*.')) {
        if (!wildcard.has(n.slice(2))) wildcard.set(n.slice(2), ctx);
      } else if (!exact.has(n)) exact.set(n, ctx);
    }
  }
  return (name) => {
    const n = name.toLowerCase();
    return exact.get(n) ?? wildcard.get(n.slice(n.indexOf('.') + 1)) ?? fallback!;
  };
}

/** The first certificate's files, read: what a handshake without SNI gets. */
export function defaultCertificate(certs: Certificates): { cert: Buffer; key: Buffer } | undefined {
  const first = certs[0];
  return first && { cert: readFileSync(first.cert), key: readFileSync(first.key) };
}

/** The certificates' files as they are now: a rotation with the same paths is a change too. */
export function certificatesHash(certs: Certificates | undefined): string {
  const h = createHash('sha256');
  for (const c of certs ?? []) {
    h.update(c.cert).update('\0').update(c.key).update('\0');
    try {
      h.update(readFileSync(c.cert)).update(readFileSync(c.key));
    } catch {
      h.update('unreadable');
    }
  }
  return h.digest('hex');
}
