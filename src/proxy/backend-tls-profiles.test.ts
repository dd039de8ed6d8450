import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { FederatedService } from '../catalog/model.ts';
import { configSchema } from '../config/schema.ts';
import { makeCa } from '../localfed/pki.ts';
import { BackendTlsProfiles, identityCheck } from './backend-tls-profiles.ts';
import { classify, gaveUp, tlsDetail, tlsFailure } from './failures.ts';

/** What checkServerIdentity reads of a peer certificate. */
const peer = (subjectaltname: string) =>
  ({ subject: { CN: 'x' }, subjectaltname }) as unknown as PeerCertificate;

describe('identityCheck', () => {
  it('without subjectAltNames: the certificate must be valid for hostname, wildcards by RFC 6125', () => {
    const check = identityCheck({ hostname: 'web.shop.internal' });
    expect(check('ignored', peer('DNS:web.shop.internal'))).toBeUndefined();
    expect(check('ignored', peer('DNS:*.shop.internal'))).toBeUndefined();
    // One label only, and not a public-suffix-like two-label pattern.
    expect(check('ignored', peer('DNS:*.internal'))).toBeDefined();
    expect(check('web.shop.internal', peer('DNS:*.web.shop.internal'))).toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('with subjectAltNames: one of them, URIs exactly; hostname alone is not enough', () => {
    const check = identityCheck({
      hostname: 'web.internal',
      subjectAltNames: [
        { type: 'Hostname', hostname: 'api.shop.internal' },
        { type: 'URI', uri: 'spiffe://td/ns/shop/sa/web' },
      ],
    });
    expect(check('web.internal', peer('DNS:*.shop.internal'))).toBeUndefined();
    expect(check('web.internal', peer('URI:spiffe://td/ns/shop/sa/web'))).toBeUndefined();
    const err = check('web.internal', peer('DNS:web.internal, URI:spiffe://td/ns/shop/sa/webx'));
    expect(err).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(err?.message).toContain(
      'carry none of DNS:api.shop.internal, URI:spiffe://td/ns/shop/sa/web',
    );
  });
});

describe('BackendTlsProfiles', () => {
  const svc = (key: string, backendTls?: string) =>
    ({ key, backendTls }) as unknown as FederatedService;

  it('chooses routing.services over the annotation, keys by content, fails closed on a missing name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedgate-btls-'));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, (await makeCa('one')).cert);
    const config = configSchema.parse({
      federation: { name: 'galaxy', domain: 'example.test' },
      clusters: [{ name: 'a', kubeconfig: 'a.kubeconfig' }],
      routing: {
        backendTLS: {
          a: { caFiles: [ca], hostname: 'a.internal' },
          b: { caFiles: [ca], hostname: 'b.internal' },
        },
        services: { 'shop/web': { tls: 'a' } },
      },
    });
    const log = pino({ level: 'silent' });
    const one = new BackendTlsProfiles(config, log);
    expect(one.forService(svc('shop/web', 'b'))?.options.servername).toBe('a.internal');
    expect(one.forService(svc('shop/api', 'b'))?.options.servername).toBe('b.internal');
    expect(one.forService(svc('shop/api'))).toBeUndefined();
    const missing = one.forService(svc('shop/api', 'nope'));
    expect(missing?.problem).toBe(
      'backend TLS profile "nope" does not exist in routing.backendTLS',
    );
    // The same files give the same keys; a rotated file a new one.
    expect(new BackendTlsProfiles(config, log).keys).toBe(one.keys);
    writeFileSync(ca, (await makeCa('two')).cert);
    const two = new BackendTlsProfiles(config, log);
    expect(two.keys).not.toBe(one.keys);
    expect(two.forService(svc('shop/web'))?.key).toMatch(/^a:/);
  });
});

describe('the TLS failure kind', () => {
  const errno = (code: string, message = code) => Object.assign(new Error(message), { code });

  it('is told by the code on the error or its cause, with a reason for the metric', () => {
    expect(classify(errno('UNABLE_TO_VERIFY_LEAF_SIGNATURE'))).toBe('tls');
    expect(classify(errno('CERT_HAS_EXPIRED'), true)).toBe('tls');
    const closed = errno('UND_ERR_SOCKET', 'other side closed');
    closed.cause = errno(
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      'tlsv13 alert certificate required',
    );
    expect(classify(closed)).toBe('tls');
    expect(tlsFailure(closed)?.reason).toBe('client_certificate');
    expect(tlsDetail(closed)).toBe(
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: tlsv13 alert certificate required',
    );
    expect(tlsFailure(errno('CERT_HAS_EXPIRED'))?.reason).toBe('expired');
    expect(tlsFailure(errno('ERR_TLS_CERT_ALTNAME_INVALID'))?.reason).toBe('name');
    expect(tlsFailure(errno('DEPTH_ZERO_SELF_SIGNED_CERT'))?.reason).toBe('untrusted');
    expect(tlsFailure(errno('ERR_SSL_WRONG_VERSION_NUMBER'))?.reason).toBe('handshake');
    // Not TLS: a plain reset and a refused connection keep their kinds.
    expect(classify(errno('ECONNRESET'))).toBe('reset');
    expect(classify(errno('ECONNREFUSED'))).toBe('connect');
  });

  it('gives up with 502 UPSTREAM_TLS saying what failed', () => {
    expect(
      gaveUp('tls', 'shop/web', {
        tries: 2,
        budget: false,
        ms: 0,
        detail: 'CERT_HAS_EXPIRED: certificate has expired',
      }),
    ).toEqual({
      code: 'UPSTREAM_TLS',
      detail: 'TLS to shop/web failed: CERT_HAS_EXPIRED: certificate has expired (2 tries)',
    });
  });
});
