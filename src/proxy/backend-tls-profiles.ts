// The backend TLS profiles of one configuration (routing.backendTLS), read from
// their files: each becomes a node:tls secure context made once (CA certificates,
// client certificate), the SNI name, and the identity check BackendTLSPolicy asks
// for. A reload builds a new set; a profile whose settings or files changed gets a
// new key, so upstream connections made under the old one are not reused.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  checkServerIdentity,
  createSecureContext,
  getCACertificates,
  type PeerCertificate,
} from 'node:tls';
import type { FederatedService } from '../catalog/model.ts';
import type { BackendTlsProfile, Config } from '../config/schema.ts';
import { FedgateError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { BackendTlsContext, BackendTlsSource } from './backend-tls.ts';

type SubjectAltName = NonNullable<BackendTlsProfile['subjectAltNames']>[number];

/** The certificate's URI subjectAltNames ("URI:spiffe://…" entries). */
function uris(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '')
    .split(', ')
    .filter((n) => n.startsWith('URI:'))
    .map((n) => n.slice(4));
}

/**
 * BackendTLSPolicy's rule: with subjectAltNames the certificate must carry one of
 * them (a Hostname by RFC 6125, wildcards included, as Node checks a host; a URI
 * exactly), and hostname is only SNI; without, it must be valid for hostname.
 */
export function identityCheck(
  p: Pick<BackendTlsProfile, 'hostname' | 'subjectAltNames'>,
): (host: string, cert: PeerCertificate) => Error | undefined {
  const sans = p.subjectAltNames;
  if (!sans) return (_host, cert) => checkServerIdentity(p.hostname, cert);
  const matches = (san: SubjectAltName, cert: PeerCertificate) =>
    san.type === 'URI'
      ? uris(cert).includes(san.uri)
      : checkServerIdentity(san.hostname, cert) === undefined;
  return (host, cert) => {
    if (sans.some((san) => matches(san, cert))) return undefined;
    const wanted = sans.map((s) => (s.type === 'URI' ? `URI:${s.uri}` : `DNS:${s.hostname}`));
    const reason = `certificate's subjectAltNames (${cert.subjectaltname ?? 'none'}) carry none of ${wanted.join(', ')}`;
    return Object.assign(
      new Error(`Hostname/IP does not match certificate's altnames: ${reason}`),
      {
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        reason,
        host,
        cert,
      },
    );
  };
}

/** The files a profile reads: what a change to reloads it. */
export function profileFiles(p: BackendTlsProfile): string[] {
  const c = p.clientCertificate;
  return [...(p.caFiles ?? []), ...(c ? [c.certFile, c.keyFile] : [])];
}

/** Every backend TLS file the configuration names. */
export function backendTlsFiles(config: Config): string[] {
  return Object.values(config.routing.backendTLS).flatMap(profileFiles);
}

function readProfile(name: string, p: BackendTlsProfile): BackendTlsContext {
  const h = createHash('sha256').update(JSON.stringify(p));
  const read = (file: string) => {
    try {
      const b = readFileSync(file);
      h.update(file).update('\0').update(b);
      return b;
    } catch (e) {
      throw new FedgateError(
        'CONFIG_INVALID',
        `routing.backendTLS.${name}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`,
        { cause: e },
      );
    }
  };
  const ca = p.caFiles
    ? p.caFiles.map(read)
    : [...new Set([...getCACertificates('default'), ...getCACertificates('system')])];
  const c = p.clientCertificate;
  const client = c ? { cert: read(c.certFile), key: read(c.keyFile) } : {};
  let secureContext: ReturnType<typeof createSecureContext>;
  try {
    secureContext = createSecureContext({ ca, ...client });
  } catch (e) {
    throw new FedgateError(
      'CONFIG_INVALID',
      `routing.backendTLS.${name}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return {
    key: `${name}:${h.digest('hex').slice(0, 16)}`,
    options: {
      secureContext,
      servername: p.hostname,
      checkServerIdentity: identityCheck(p),
      rejectUnauthorized: true,
    },
  };
}

/** A service naming no profile that exists: fail closed, dial nothing. */
function missing(name: string): BackendTlsContext {
  const problem = `backend TLS profile "${name}" does not exist in routing.backendTLS`;
  return {
    key: `missing:${name}`,
    problem,
    options: {
      ca: [],
      rejectUnauthorized: true,
      checkServerIdentity: () => new FedgateError('UPSTREAM_TLS', problem),
    },
  };
}

export class BackendTlsProfiles implements BackendTlsSource {
  readonly #contexts = new Map<string, BackendTlsContext>();
  readonly #services: Config['routing']['services'];
  readonly #log: Logger | undefined;
  /** Every profile's key: what a reload compares. */
  readonly keys: string;

  /**
   * Reads every profile's files; throws CONFIG_INVALID naming the profile when one
   * cannot be read. `log`: where a missing profile is said, once per name (the
   * proxy's; the checks' copy stays quiet so a process says it once).
   */
  constructor(config: Config, log: Logger | undefined) {
    this.#services = config.routing.services;
    this.#log = log;
    for (const [name, p] of Object.entries(config.routing.backendTLS)) {
      this.#contexts.set(name, readProfile(name, p));
    }
    this.keys = [...this.#contexts.values()].map((c) => c.key).join(' ');
  }

  /** routing.services["ns/name"].tls, else the fedgate.io/backend-tls annotation. */
  forService(svc: FederatedService): BackendTlsContext | undefined {
    const name = this.#services[svc.key]?.tls ?? svc.backendTls;
    if (name === undefined) return undefined;
    let ctx = this.#contexts.get(name);
    if (!ctx) {
      ctx = missing(name);
      this.#contexts.set(name, ctx);
      this.#log?.warn(
        { service: svc.key, profile: name },
        `${ctx.problem}: requests to ${svc.key} are answered 502 UPSTREAM_TLS`,
      );
    }
    return ctx;
  }
}
