// HTTPS listeners' certificates: a Secret's PEM checked at compile time (bad PEM is
// InvalidCertificateRef and never reaches the tables), and the certificates a TLS
// fedgate listener gets, most specific Gateway listener hostname first.
import { describe, expect, it } from 'vitest';
import {
  compileObjects,
  conditionsByType,
  FIXTURE_PEM,
  gateway,
  gatewayStatus,
  HTTPS_ADDRESS,
  listener,
  tlsSecret,
} from '../../test/helpers/gateway-objects.ts';
import { makeClusterPki } from '../localfed/pki.ts';
import { pemProblem } from './certificates.ts';

const https = (name: string, hostname: string | undefined, secret: string) =>
  listener({
    name,
    port: 443,
    protocol: 'HTTPS',
    ...(hostname !== undefined ? { hostname } : {}),
    tls: { mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', name: secret }] },
  });

const httpsTable = (c: ReturnType<typeof compileObjects>) =>
  c.tables.listeners.find((l) => l.address === HTTPS_ADDRESS);

describe('HTTPS listener certificates', () => {
  it('pemProblem: a good pair passes; garbage in either half and a key of another certificate are named', async () => {
    const other = await makeClusterPki('other', ['other.test']);
    expect(pemProblem(FIXTURE_PEM)).toBeUndefined();
    expect(pemProblem({ cert: 'nope', key: FIXTURE_PEM.key })).toMatch(/^tls\.crt is not a PEM/);
    expect(pemProblem({ cert: FIXTURE_PEM.cert, key: 'nope' })).toMatch(/^tls\.key is not/);
    expect(pemProblem({ cert: FIXTURE_PEM.cert, key: other.serverKey })).toBe(
      'tls.key does not match the certificate in tls.crt',
    );
  });

  it('bad PEM: ResolvedRefs False InvalidCertificateRef, not Programmed, and no certificate in the tables', () => {
    const c = compileObjects({
      gateways: [gateway({ name: 'gw' }, [https('https', '*.secure.test', 'cert')])],
      secrets: [tlsSecret({ name: 'cert' }, { cert: 'not a certificate', key: FIXTURE_PEM.key })],
    });
    const l = gatewayStatus(c, 'gw').status.listeners[0];
    expect(conditionsByType(l?.conditions ?? [])).toMatchObject({
      ResolvedRefs: ['False', 'InvalidCertificateRef'],
      Programmed: ['False', 'Invalid'],
    });
    expect(l?.conditions.find((x) => x.type === 'ResolvedRefs')?.message).toContain(
      'Secret default/cert: tls.crt is not a PEM certificate',
    );
    expect(httpsTable(c)?.certificates).toBeUndefined();
  });

  it('a TLS table carries each programmed listener’s Secret under its hostname, most specific first', async () => {
    const second = await makeClusterPki('second', ['a.secure.test']);
    const c = compileObjects({
      gateways: [
        gateway({ name: 'wide', createdAt: 1 }, [https('any', undefined, 'wide')]),
        gateway({ name: 'mid', createdAt: 2 }, [https('wild', '*.secure.test', 'mid')]),
        gateway({ name: 'exact', createdAt: 3 }, [https('exact', 'a.secure.test', 'exact')]),
      ],
      secrets: [
        tlsSecret({ name: 'wide' }),
        tlsSecret({ name: 'mid' }),
        tlsSecret({ name: 'exact' }, { cert: second.serverCert, key: second.serverKey }),
      ],
    });
    expect(
      httpsTable(c)?.certificates?.map((x) => [x.hostname, x.cert === second.serverCert]),
    ).toEqual([
      ['a.secure.test', true],
      ['*.secure.test', false],
      ['', false],
    ]);
  });
});
