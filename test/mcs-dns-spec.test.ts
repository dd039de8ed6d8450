// The MCS DNS specification (KEP-1645, keps/sig-multicluster/1645-multi-cluster-services-api/
// specification.md, schema 1.0.0), section by section, asked with dig of a running
// DnsServer over the clusterset of test/fixtures/mcs-world.ts. Section 0 (About This
// Document) requires nothing; every other section has its describe, by its title.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Config, configSchema } from '../src/config/schema.ts';
import { DnsServer } from '../src/dns/server.ts';
import { HealthStore } from '../src/health/store.ts';
import { Router } from '../src/routing/router.ts';
import { DB_TARGET_PORTS, mcsSnapshot } from './fixtures/mcs-world.ts';
import { type DigResult, dig } from './helpers/tools.ts';

const ZONE = 'clusterset.local';
const DB = `db.data.svc.${ZONE}`;
const WEB = `web.shop.svc.${ZONE}`;
const IDLE = `idle.data.svc.${ZONE}`;
const API = `api.shop.svc.${ZONE}`;

function configWith(dns: Record<string, unknown>): Config {
  return configSchema.parse({
    federation: { name: 'galaxy', domain: 'example.test' },
    clusters: [
      { name: 'alpha', kubeconfig: 'a.kubeconfig', region: 'us-east' },
      { name: 'beta', kubeconfig: 'b.kubeconfig', region: 'us-west' },
    ],
    self: { region: 'us-east', zone: 'us-east-a' },
    dns: { listen: ['127.0.0.1:0'], rrl: { enabled: false }, ...dns },
  });
}

async function serve(config: Config): Promise<DnsServer> {
  const health = new HealthStore();
  const snapshot = mcsSnapshot();
  return DnsServer.start({
    config,
    catalog: { current: () => snapshot, subscribe: () => () => {} },
    health,
    router: new Router(
      { ...config.routing, localities: config.localities, self: config.self },
      health,
    ),
    log: pino({ level: 'silent' }),
  });
}

const servers: DnsServer[] = [];
let withPtr: { host: string; port: number };
let plain: { host: string; port: number };

beforeAll(async () => {
  const at = (s: DnsServer) => {
    servers.push(s);
    const a = s.addresses().udp[0]!;
    return { host: a.address, port: a.port };
  };
  withPtr = at(await serve(configWith({ reverseZones: ['127.in-addr.arpa', 'ip6.arpa'] })));
  plain = at(await serve(configWith({})));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const q = (name: string, type: string, server = withPtr) => dig(server, [name, type]);
const data = (r: DigResult, type: string) =>
  r.answers
    .filter((x) => x.type === type)
    .map((x) => x.data)
    .sort();
/** dig prints an IPv4-mapped IPv6 address in its dotted form. */
const mapped = (v4: string) => `::ffff:${v4}`;

/** NXDOMAIN, authoritative, with the zone's SOA (RFC 2308). */
function expectNxdomain(r: DigResult) {
  expect(r.status).toBe('NXDOMAIN');
  expect(r.flags).toContain('aa');
  expect(r.answers).toEqual([]);
  expect(r.authority.map((x) => x.type)).toEqual(['SOA']);
}

/** NOERROR without records (NODATA), authoritative, with the zone's SOA. */
function expectNodata(r: DigResult) {
  expect(r.status).toBe('NOERROR');
  expect(r.flags).toContain('aa');
  expect(r.answers).toEqual([]);
  expect(r.authority.map((x) => x.type)).toEqual(['SOA']);
}

describe('1 - Schema Version', () => {
  it('the schema fedgate answers is 1.0.0', async () => {
    expect(data(await q(`dns-version.${ZONE}`, 'TXT'), 'TXT')).toEqual(['"1.0.0"']);
  });
});

describe('2 - Resource Records', () => {
  it('fedgate is the authority for <clusterset-zone>: SOA and NS at the apex, AA on its answers', async () => {
    const soa = await q(ZONE, 'SOA');
    expect(soa.flags).toContain('aa');
    expect(soa.answers.map((x) => [x.name, x.type])).toEqual([[`${ZONE}.`, 'SOA']]);
    expect(data(await q(ZONE, 'NS'), 'NS')).toEqual([`ns.${ZONE}.`]);
  });

  it('and for no name outside its zones: REFUSED, never recursion', async () => {
    const r = await q('web.shop.svc.cluster.local', 'A');
    expect(r.status).toBe('REFUSED');
    expect(r.flags).not.toContain('ra');
  });
});

describe('2.1 - Definitions', () => {
  it('<clusterset-zone> is clusterset.local unless configured', () => {
    const minimal = configSchema.parse({
      federation: { name: 'galaxy', domain: 'example.test' },
      clusters: [{ name: 'a', kubeconfig: 'a.kubeconfig' }],
    });
    expect(minimal.federation.clustersetZone).toBe(ZONE);
  });

  it('hostname: the endpoint’s hostname field first, else a unique system-assigned identifier; <clusterid>: the cluster’s configured name', async () => {
    const srv = await q(`_sql._tcp.${DB}`, 'SRV');
    const targets = srv.answers.map((x) => x.data.split(' ')[3]);
    expect(targets).toContain(`db-0.alpha.${DB}.`);
    // 127.22.0.4 has no hostname: named after its address, as CoreDNS names such endpoints.
    expect(targets).toContain(`127-22-0-4.alpha.${DB}.`);
    expect(new Set(targets).size).toBe(targets.length);
    expect(data(await q(`127-22-0-4.alpha.${DB}`, 'A'), 'A')).toEqual(['127.22.0.4']);
  });
});

describe('2.2 - Record for Schema Version', () => {
  it('dns-version.clusterset.local. IN TXT "1.0.0", authoritatively', async () => {
    const r = await q(`dns-version.${ZONE}`, 'TXT');
    expect(r.status).toBe('NOERROR');
    expect(r.flags).toContain('aa');
    expect(r.answers).toEqual([
      { name: `dns-version.${ZONE}.`, ttl: 5, class: 'IN', type: 'TXT', data: '"1.0.0"' },
    ]);
  });

  it('the name has no other records: NODATA for A', async () => {
    expectNodata(await q(`dns-version.${ZONE}`, 'A'));
  });
});

describe('2.3 - Records for a Service with ClusterSetIP', () => {
  describe('2.3.1 - A/AAAA Record', () => {
    it('<service>.<ns>.svc.<clusterset-zone>. <ttl> IN A, and IN AAAA for a dual-stack service', async () => {
      const a = await q(WEB, 'A');
      expect(a.status).toBe('NOERROR');
      expect(a.answers.every((x) => x.name === `${WEB}.` && x.class === 'IN')).toBe(true);
      // fedgate's answer for a ClusterSetIP service is routed: the nearest zone's endpoints.
      expect(data(a, 'A')).toEqual(['127.20.0.1', '127.20.0.2']);
      expect(data(await q(WEB, 'AAAA'), 'AAAA')).toEqual([mapped('127.20.0.1')]);
    });

    it('a service name that is not exported is NXDOMAIN', async () => {
      expectNxdomain(await q(`nope.shop.svc.${ZONE}`, 'A'));
    });
  });

  describe('2.3.2 - SRV Records', () => {
    it('_<port>._<proto>.<service>.<ns>.svc.<clusterset-zone>. IN SRV <weight> <priority> <port-number> <service>.<ns>.svc.<clusterset-zone>.', async () => {
      const r = await q(`_http._tcp.${WEB}`, 'SRV');
      expect(r.answers).toHaveLength(1);
      const [priority, weight, port, target] = r.answers[0]!.data.split(' ');
      expect([priority, weight, target]).toEqual(['0', '1', `${WEB}.`]);
      // The port where the answered addresses serve `http`: endpoint addressing answers pods, on 8080.
      expect(port).toBe('8080');
    });

    it('unnamed ports do not have an SRV record', async () => {
      expectNxdomain(await q(`_tcp.${API}`, 'SRV'));
      expectNxdomain(await q(`_._tcp.${API}`, 'SRV'));
      expect(data(await q(API, 'A'), 'A')).toEqual(['127.25.0.1']);
    });

    it('a port name or protocol the service does not have is NXDOMAIN; another type on an SRV name is NODATA', async () => {
      expectNxdomain(await q(`_grpc._tcp.${WEB}`, 'SRV'));
      expectNxdomain(await q(`_http._udp.${WEB}`, 'SRV'));
      expectNodata(await q(`_http._tcp.${WEB}`, 'A'));
    });
  });

  describe('2.3.3 - PTR Record', () => {
    it('not required, and fedgate makes none for a ClusterSetIP service’s endpoints, even in a configured reverse zone', async () => {
      expectNxdomain(await q('1.0.20.127.in-addr.arpa', 'PTR'));
    });
  });

  describe('2.3.4 - Records that MUST NOT exist for a Service with ClusterSetIP', () => {
    it('<clusterid>.<svc>.<ns>.svc.<clusterset-zone> does not exist, nor any name below it', async () => {
      for (const type of ['A', 'AAAA', 'SRV', 'TXT', 'ANY'])
        expectNxdomain(await q(`alpha.${WEB}`, type));
      expectNxdomain(await q(`127-20-0-1.alpha.${WEB}`, 'A'));
    });
  });
});

describe('2.4 - Records for a Multicluster Headless Service', () => {
  const ready4 = ['127.22.0.1', '127.22.0.2', '127.22.0.4', '127.23.0.1', '127.23.0.2'];

  describe('2.4.1 - A/AAAA Records', () => {
    it('<service>.<ns>.svc.<clusterset-zone>. IN A: every ready endpoint across the clusterset, none that is not ready', async () => {
      const r = await q(DB, 'A');
      expect(r.status).toBe('NOERROR');
      expect(data(r, 'A')).toEqual(ready4);
      expect(data(r, 'A')).not.toContain('127.22.0.3');
    });

    it('IN AAAA from the same subset of endpoints', async () => {
      expect(data(await q(DB, 'AAAA'), 'AAAA')).toEqual([mapped('127.22.0.1')]);
    });

    it('<hostname>.<clusterid>.<service>.<ns>.svc.<clusterset-zone>. IN A and AAAA, one record per address of that hostname', async () => {
      expect(data(await q(`db-0.alpha.${DB}`, 'A'), 'A')).toEqual(['127.22.0.1']);
      expect(data(await q(`db-0.alpha.${DB}`, 'AAAA'), 'AAAA')).toEqual([mapped('127.22.0.1')]);
      expect(data(await q(`db-0.beta.${DB}`, 'A'), 'A')).toEqual(['127.23.0.1']);
      // An IPv4-only endpoint has no AAAA: NODATA.
      expectNodata(await q(`db-1.alpha.${DB}`, 'AAAA'));
    });

    it('a not-ready endpoint has no name: NXDOMAIN', async () => {
      expectNxdomain(await q(`db-2.alpha.${DB}`, 'A'));
    });

    it('if there are no ready endpoints for the headless Service, the answer is NXDOMAIN', async () => {
      expectNxdomain(await q(IDLE, 'A'));
      expectNxdomain(await q(IDLE, 'AAAA'));
      expectNxdomain(await q(`idle-0.alpha.${IDLE}`, 'A'));
    });
  });

  describe('2.4.2 - SRV Records', () => {
    it('N ready endpoints × M named ports: one SRV per endpoint and port, to <hostname>.<clusterid>.<service>.<ns>.svc.<clusterset-zone>.', async () => {
      const targets = [
        `db-0.alpha.${DB}.`,
        `db-1.alpha.${DB}.`,
        `127-22-0-4.alpha.${DB}.`,
        `db-0.beta.${DB}.`,
        `db-1.beta.${DB}.`,
      ];
      for (const [port, number] of Object.entries(DB_TARGET_PORTS)) {
        const r = await q(`_${port}._tcp.${DB}`, 'SRV');
        expect(r.status).toBe('NOERROR');
        // The union of every cluster's endpoints, each on its own target port.
        expect(r.answers.map((x) => x.data).sort()).toEqual(
          targets.map((t) => `0 1 ${number} ${t}`).sort(),
        );
      }
    });

    it('every SRV target answers A', async () => {
      const srv = await q(`_sql._tcp.${DB}`, 'SRV');
      for (const x of srv.answers) {
        const a = await q(x.data.split(' ')[3]!, 'A');
        expect(a.status).toBe('NOERROR');
        expect(a.answers).toHaveLength(1);
      }
    });

    it('a headless service with no ready endpoint has no SRV records: NXDOMAIN', async () => {
      expectNxdomain(await q(`_sql._tcp.${IDLE}`, 'SRV'));
    });
  });

  describe('2.4.3 - PTR Records', () => {
    it('not required: with no dns.reverseZones (the default) fedgate is not authoritative for reverse names', async () => {
      const r = await q('1.0.22.127.in-addr.arpa', 'PTR', plain);
      expect(r.status).toBe('REFUSED');
    });

    it('in a configured reverse zone: each ready endpoint’s addresses point at its per-endpoint name', async () => {
      expect(data(await q('1.0.22.127.in-addr.arpa', 'PTR'), 'PTR')).toEqual([`db-0.alpha.${DB}.`]);
      expect(data(await q('1.0.23.127.in-addr.arpa', 'PTR'), 'PTR')).toEqual([`db-0.beta.${DB}.`]);
      const v6 = '1.0.0.0.6.1.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa';
      expect(data(await q(v6, 'PTR'), 'PTR')).toEqual([`db-0.alpha.${DB}.`]);
      expectNxdomain(await q('3.0.22.127.in-addr.arpa', 'PTR'));
      expectNodata(await q('22.127.in-addr.arpa', 'PTR'));
      expect((await q('127.in-addr.arpa', 'SOA')).answers.map((x) => x.type)).toEqual(['SOA']);
    });
  });

  describe('2.4.4 - Records that MUST NOT exist for a Multicluster Headless Service', () => {
    it('<clusterid>.<svc>.<ns>.svc.<clusterset-zone> has no record of any type (an empty non-terminal: NODATA)', async () => {
      for (const type of ['A', 'AAAA', 'SRV', 'TXT', 'ANY'])
        expectNodata(await q(`alpha.${DB}`, type));
    });

    it('a cluster with no ready endpoint of the service has no such name at all', async () => {
      expectNxdomain(await q(`gamma.${DB}`, 'A'));
      expectNxdomain(await q(`alpha.${IDLE}`, 'A'));
    });
  });
});
