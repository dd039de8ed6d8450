// Gateway listeners' certificates picked by SNI: per fedgate TLS listener, the most
// specific hostname first, nothing for names no Gateway listener matches (the
// configured certificates answer those), and a new table swapping contexts whole.
import { X509Certificate } from 'node:crypto';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ListenerCertificate, RouteTables } from '../gateway/attached.ts';
import { makeClusterPki } from '../localfed/pki.ts';
import { GatewayCertificates } from './gateway-certificates.ts';

const AT = '127.0.0.1:8443';

async function pem(name: string): Promise<{ cert: string; key: string }> {
  const p = await makeClusterPki(name, [`${name}.test`]);
  return { cert: p.serverCert, key: p.serverKey };
}

const tables = (certificates: ListenerCertificate[], tls = true): RouteTables => ({
  listeners: [{ address: AT, tls, hosts: [], certificates }],
});

/** The certificate a TLS server using `pick` shows a client sending `servername`. */
async function served(certs: GatewayCertificates, servername: string): Promise<string | undefined> {
  const server = createServer({
    SNICallback: (name, cb) => {
      const ctx = certs.pick(AT, name);
      if (ctx) cb(null, ctx);
      else cb(new Error('no certificate'));
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    return await new Promise((resolve) => {
      const s: TLSSocket = connect({
        host: '127.0.0.1',
        port,
        servername,
        rejectUnauthorized: false,
      });
      s.once('secureConnect', () => {
        resolve(s.getPeerCertificate().fingerprint256);
        s.destroy();
      });
      s.once('error', () => resolve(undefined));
    });
  } finally {
    server.close();
  }
}

const fp = (p: { cert: string }) => new X509Certificate(p.cert).fingerprint256;

describe('GatewayCertificates', () => {
  it('picks the most specific hostname that matches, wildcards over one or more labels', async () => {
    const [exact, wild, any] = await Promise.all([pem('exact'), pem('wild'), pem('any')]);
    const certs = new GatewayCertificates(pino({ level: 'silent' }));
    certs.set(
      tables([
        { hostname: 'a.secure.test', ...exact },
        { hostname: '*.secure.test', ...wild },
        { hostname: '', ...any },
      ]),
    );
    expect(await served(certs, 'a.secure.test')).toBe(fp(exact));
    expect(await served(certs, 'b.secure.test')).toBe(fp(wild));
    expect(await served(certs, 'x.y.secure.test')).toBe(fp(wild));
    expect(await served(certs, 'elsewhere.test')).toBe(fp(any));
    expect(certs.pick('127.0.0.1:9999', 'a.secure.test')).toBeUndefined();
  });

  it('no match, a plain listener, or a table without the certificate: nothing (the configured ones answer)', async () => {
    const wild = await pem('wild');
    const certs = new GatewayCertificates(pino({ level: 'silent' }));
    certs.set(tables([{ hostname: '*.secure.test', ...wild }]));
    expect(certs.pick(AT, 'secure.test')).toBeUndefined();
    expect(certs.pick(AT, 'a.other.test')).toBeUndefined();
    certs.set(tables([{ hostname: '*.secure.test', ...wild }], false));
    expect(certs.pick(AT, 'a.secure.test')).toBeUndefined();
    certs.set(tables([]));
    expect(certs.pick(AT, 'a.secure.test')).toBeUndefined();
  });

  it('a rotated certificate is a new context; an unchanged one is kept; a bad one is skipped', async () => {
    const [one, two] = await Promise.all([pem('one'), pem('two')]);
    const certs = new GatewayCertificates(pino({ level: 'silent' }));
    certs.set(tables([{ hostname: '*.secure.test', ...one }]));
    const first = certs.pick(AT, 'a.secure.test');
    certs.set(tables([{ hostname: '*.secure.test', ...one }]));
    expect(certs.pick(AT, 'a.secure.test')).toBe(first);
    certs.set(tables([{ hostname: '*.secure.test', ...two }]));
    expect(await served(certs, 'a.secure.test')).toBe(fp(two));
    certs.set(tables([{ hostname: '*.secure.test', cert: 'bad', key: 'bad' }]));
    expect(certs.pick(AT, 'a.secure.test')).toBeUndefined();
  });
});
