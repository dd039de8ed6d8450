// The certificates Gateway API listeners bring to fedgate's TLS listeners: per
// listener address, the SNI names each serves (a Gateway listener's hostname,
// wildcards matching one or more labels) and its secure context. setRoutes swaps
// the whole set, so a rotated Secret applies to the next handshake while open
// connections keep theirs. A name no Gateway certificate matches, and a client
// without SNI, get http.tls.certificates' choice as before.
import { createHash } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { ListenerCertificate, RouteTables } from '../gateway/attached.ts';
import { hostnameMatches } from '../gateway/hostnames.ts';
import type { Logger } from '../observe/log.ts';

interface Served {
  /** '' matches every name. */
  readonly hostname: string;
  readonly context: SecureContext;
}

const idOf = (certs: readonly ListenerCertificate[]): string => {
  const h = createHash('sha256');
  for (const c of certs) h.update(c.cert).update('\0').update(c.key).update('\0');
  return h.digest('hex');
};

export class GatewayCertificates {
  #byAddress = new Map<string, readonly Served[]>();
  /** Contexts by their PEM, so unchanged certificates are not rebuilt on every table. */
  #contexts = new Map<string, SecureContext>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  set(tables: RouteTables): void {
    const byAddress = new Map<string, Served[]>();
    const contexts = new Map<string, SecureContext>();
    for (const t of tables.listeners) {
      if (!t.tls || !t.certificates?.length) continue;
      // Several Secrets on one hostname (an RSA and an ECDSA pair) share a context.
      const groups = new Map<string, ListenerCertificate[]>();
      for (const c of t.certificates) {
        const g = groups.get(c.hostname) ?? [];
        g.push(c);
        groups.set(c.hostname, g);
      }
      const served: Served[] = [];
      for (const [hostname, certs] of groups) {
        const id = idOf(certs);
        let context = contexts.get(id) ?? this.#contexts.get(id);
        if (context === undefined) {
          try {
            context = createSecureContext({
              cert: certs.map((c) => c.cert),
              key: certs.map((c) => c.key),
            });
          } catch (e) {
            // Compilation checked the PEM; anything left is logged and skipped.
            this.#log.warn(
              { listener: t.address, hostname, err: (e as Error).message },
              'Gateway listener certificate not served',
            );
            continue;
          }
        }
        contexts.set(id, context);
        served.push({ hostname, context });
      }
      byAddress.set(t.address, served);
    }
    this.#byAddress = byAddress;
    this.#contexts = contexts;
  }

  /** The context for `name` on the TLS listener at `address`, when a Gateway listener's hostname matches it. */
  pick(address: string, name: string): SecureContext | undefined {
    for (const s of this.#byAddress.get(address) ?? []) {
      if (s.hostname === '' || hostnameMatches(s.hostname, name)) return s.context;
    }
    return undefined;
  }
}
