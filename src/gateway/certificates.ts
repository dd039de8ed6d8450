// A certificateRef's Secret checked before any handshake sees it: its tls.crt must
// parse as PEM certificates, its tls.key as an unencrypted private key, and the key
// must belong to the first certificate. A Secret that fails is reported in the
// listener's status (InvalidCertificateRef) and never reaches the proxy, so a bad
// Secret cannot break a TLS listener. Checks are kept by content: a compile runs
// on every change, and a Secret's PEM rarely changes.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { TlsSecretRecord } from '../watch/gateway-records.ts';

const checked = new Map<string, string | undefined>();
const KEPT = 256;

function check(cert: string, key: string): string | undefined {
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch (e) {
    return `tls.crt is not a PEM certificate (${(e as Error).message})`;
  }
  let k: ReturnType<typeof createPrivateKey>;
  try {
    k = createPrivateKey(key);
  } catch (e) {
    return `tls.key is not an unencrypted PEM private key (${(e as Error).message})`;
  }
  if (!x.checkPrivateKey(k)) return 'tls.key does not match the certificate in tls.crt';
  return undefined;
}

/** Why the Secret's PEM cannot be served, or undefined when it can. */
export function pemProblem(secret: Pick<TlsSecretRecord, 'cert' | 'key'>): string | undefined {
  const id = `${secret.cert}\0${secret.key}`;
  if (checked.has(id)) return checked.get(id);
  const problem = check(secret.cert, secret.key);
  if (checked.size >= KEPT) checked.clear();
  checked.set(id, problem);
  return problem;
}
