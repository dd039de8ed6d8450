// The MCS zone's records over a snapshot literal (test/fixtures/mcs-world.ts): headless
// services per endpoint, their negative answers, and PTR in configured reverse zones.
// The spec walk with dig against a running server is test/mcs-dns-spec.test.ts.
import dns2 from 'dns2';
import { describe, expect, it } from 'vitest';
import { DB, mcsSnapshot } from '../../test/fixtures/mcs-world.ts';
import { service } from '../../test/fixtures/services.ts';
import type { Endpoint, FederatedService } from '../catalog/model.ts';
import { DNS_MAX_HEADLESS_ANSWERS } from '../config/defaults.ts';
import { type Config, configSchema } from '../config/schema.ts';
import { HealthStore } from '../health/store.ts';
import { Router } from '../routing/router.ts';
import { endpointHostname, headlessView } from './mcs-headless.ts';
import { Responder } from './responder.ts';
import { ResponseRateLimiter } from './rrl.ts';
import { addressingView } from './server.ts';

const base = {
  federation: { name: 'galaxy', domain: 'example.test' },
  clusters: [
    { name: 'alpha', kubeconfig: 'a.kubeconfig', region: 'us-east' },
    { name: 'beta', kubeconfig: 'b.kubeconfig', region: 'us-west' },
  ],
  self: { region: 'us-east', zone: 'us-east-a' },
};

function responder(dns: Record<string, unknown> = {}): { r: Responder; config: Config } {
  const config = configSchema.parse({ ...base, dns: { rrl: { enabled: false }, ...dns } });
  const router = new Router(
    { ...config.routing, localities: config.localities, self: config.self },
    new HealthStore(),
  );
  const r = new Responder({
    config,
    router,
    rrl: new ResponseRateLimiter(config.dns.rrl),
    addressing: addressingView(config),
    serialBase: 0,
  });
  r.setSnapshot(mcsSnapshot());
  return { r, config };
}

interface Parsed {
  header: { rcode: number };
  answers: { type: number; address?: string; domain?: string; port?: number; target?: string }[];
}

function ask(r: Responder, name: string, qtype: number): Parsed {
  const p = new dns2.Packet();
  p.header.id = 7;
  p.questions.push({ name, type: qtype, class: 1 } as never);
  return dns2.Packet.parse(r.respond(p.toBuffer(), '127.0.0.1', false)!) as unknown as Parsed;
}

const T = { A: 1, PTR: 12, AAAA: 28, SRV: 33, SOA: 6 };
const NXDOMAIN = 3;
const REFUSED = 5;
const DB_NAME = 'db.data.svc.clusterset.local';

describe('endpointHostname', () => {
  const ep = (address: string, hostname?: string) =>
    ({ ...DB.clusters[0]!.endpoints[0]!, addresses: [address], hostname }) as Endpoint;

  it('prefers the endpoint’s hostname, else derives one from its address as CoreDNS does', () => {
    expect(endpointHostname(ep('127.22.0.1', 'db-0'))).toBe('db-0');
    expect(endpointHostname(ep('127.22.0.1'))).toBe('127-22-0-1');
    expect(endpointHostname(ep('::ffff:7f16:1'))).toBe('--ffff-7f16-1');
    expect(endpointHostname(ep('::'))).toBe('--0');
    // Not a DNS label: the derived name instead.
    expect(endpointHostname(ep('127.22.0.1', 'a.b'))).toBe('127-22-0-1');
  });
});

describe('headlessView', () => {
  it('groups ready endpoints by hostname and cluster, dual stack in one host', () => {
    const v = headlessView(DB);
    expect(v.hosts.map((h) => `${h.hostname}.${h.cluster}`)).toEqual([
      'db-0.alpha',
      'db-1.alpha',
      '127-22-0-4.alpha',
      'db-0.beta',
      'db-1.beta',
    ]);
    expect(v.byName.get('db-0.alpha')).toMatchObject({
      ipv4: ['127.22.0.1'],
      ipv6: ['::ffff:7f16:1'],
    });
    expect(headlessView(DB)).toBe(v);
  });

  it('serves the same hosts for A and AAAA when there are more than fit one answer', () => {
    const n = DNS_MAX_HEADLESS_ANSWERS + 20;
    const ep = DB.clusters[0]!.endpoints[0]!;
    const endpoints: Endpoint[] = [];
    for (let i = 0; i < n; i++) {
      // IPv6 slices listed first, so a per-family pick would choose other hosts.
      endpoints.unshift({
        ...ep,
        hostname: `p-${i}`,
        addressType: 'IPv6',
        addresses: [`::ffff:7f30:${i.toString(16)}`],
      });
      endpoints.push({
        ...ep,
        hostname: `p-${n - 1 - i}`,
        addresses: [`127.30.${i >> 8}.${i & 255}`],
      });
    }
    const big: FederatedService = {
      ...DB,
      clusters: [{ ...DB.clusters[0]!, endpoints }],
    };
    const served = headlessView(big).served;
    expect(served).toHaveLength(DNS_MAX_HEADLESS_ANSWERS);
    expect(served.every((h) => h.ipv4.length === 1 && h.ipv6.length === 1)).toBe(true);
  });
});

describe('MCS answers', () => {
  it('a headless SRV: one record per served endpoint, to its own name, on its target port', () => {
    const { r } = responder();
    const srv = ask(r, `_sql._tcp.${DB_NAME}`, T.SRV).answers;
    expect(srv.map((a) => `${a.port} ${a.target}`)).toEqual([
      `15432 db-0.alpha.${DB_NAME}`,
      `15432 db-1.alpha.${DB_NAME}`,
      `15432 127-22-0-4.alpha.${DB_NAME}`,
      `15432 db-0.beta.${DB_NAME}`,
      `15432 db-1.beta.${DB_NAME}`,
    ]);
  });

  it('a ClusterSetIP SRV: one record, to the service name', () => {
    const { r } = responder();
    const srv = ask(r, '_http._tcp.web.shop.svc.clusterset.local', T.SRV).answers;
    expect(srv.map((a) => a.target)).toEqual(['web.shop.svc.clusterset.local']);
  });

  it('a headless service with nothing ready, and its SRV names, are NXDOMAIN', () => {
    const { r } = responder();
    expect(ask(r, 'idle.data.svc.clusterset.local', T.A).header.rcode).toBe(NXDOMAIN);
    expect(ask(r, '_sql._tcp.idle.data.svc.clusterset.local', T.SRV).header.rcode).toBe(NXDOMAIN);
    expect(ask(r, 'idle-0.alpha.idle.data.svc.clusterset.local', T.A).header.rcode).toBe(NXDOMAIN);
  });

  it('a not-ready endpoint’s name is NXDOMAIN; ANY on an SRV name gives the SRV set', () => {
    const { r } = responder();
    expect(ask(r, `db-2.alpha.${DB_NAME}`, T.A).header.rcode).toBe(NXDOMAIN);
    expect(ask(r, `_sql._tcp.${DB_NAME}`, 255).answers.every((a) => a.type === T.SRV)).toBe(true);
  });
});

describe('PTR in dns.reverseZones', () => {
  it('are refused when no reverse zone is configured (the default)', () => {
    const { r, config } = responder();
    expect(config.dns.reverseZones).toEqual([]);
    expect(ask(r, '1.0.22.127.in-addr.arpa', T.PTR).header.rcode).toBe(REFUSED);
  });

  it('answer each ready headless endpoint’s address with its per-endpoint name, IPv4 and IPv6', () => {
    const { r } = responder({ reverseZones: ['127.in-addr.arpa', 'ip6.arpa'] });
    const ptr = (n: string) => ask(r, n, T.PTR).answers.map((a) => a.domain);
    expect(ptr('1.0.22.127.in-addr.arpa')).toEqual([`db-0.alpha.${DB_NAME}`]);
    expect(ptr('4.0.22.127.in-addr.arpa')).toEqual([`127-22-0-4.alpha.${DB_NAME}`]);
    const v6 = '1.0.0.0.6.1.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa';
    expect(ptr(v6)).toEqual([`db-0.alpha.${DB_NAME}`]);
    // A not-ready endpoint, a ClusterSetIP endpoint, an address with nothing: NXDOMAIN.
    for (const n of [
      '3.0.22.127.in-addr.arpa',
      '1.0.20.127.in-addr.arpa',
      '9.9.9.127.in-addr.arpa',
    ])
      expect(ask(r, n, T.PTR).header.rcode).toBe(NXDOMAIN);
    // An empty non-terminal above an address: NODATA; the apex has its SOA.
    const interior = ask(r, '22.127.in-addr.arpa', T.PTR);
    expect([interior.header.rcode, interior.answers]).toEqual([0, []]);
    expect(ask(r, '127.in-addr.arpa', T.SOA).answers[0]?.type).toBe(T.SOA);
  });

  it('follow a reload that adds or drops a zone', () => {
    const { r, config } = responder();
    const next = configSchema.parse({ ...base, dns: { reverseZones: ['22.127.in-addr.arpa'] } });
    r.reconfigure(next, addressingView(next), new ResponseRateLimiter(next.dns.rrl));
    expect(ask(r, '2.0.22.127.in-addr.arpa', T.PTR).answers.map((a) => a.domain)).toEqual([
      `db-1.alpha.${DB_NAME}`,
    ]);
    r.reconfigure(config, addressingView(config), new ResponseRateLimiter(config.dns.rrl));
    expect(ask(r, '2.0.22.127.in-addr.arpa', T.PTR).header.rcode).toBe(REFUSED);
  });

  it('reject a zone that is not a reverse zone', () => {
    for (const zone of ['example.test', '256.in-addr.arpa', 'x.ip6.arpa', '1.2.3.4.5.in-addr.arpa'])
      expect(configSchema.safeParse({ ...base, dns: { reverseZones: [zone] } }).success).toBe(
        false,
      );
    expect(
      configSchema.safeParse({ ...base, dns: { reverseZones: ['in-addr.arpa.'] } }).success,
    ).toBe(true);
  });
});

// A ClusterSetIP service never has per-cluster or per-endpoint names (§2.3.4).
describe('ClusterSetIP names below the service', () => {
  it('are NXDOMAIN', () => {
    const { r } = responder();
    const web = service([], 'shop/web');
    expect(web.type).toBe('ClusterSetIP');
    expect(ask(r, 'alpha.web.shop.svc.clusterset.local', T.A).header.rcode).toBe(NXDOMAIN);
    expect(ask(r, '127-20-0-1.alpha.web.shop.svc.clusterset.local', T.A).header.rcode).toBe(
      NXDOMAIN,
    );
  });
});
