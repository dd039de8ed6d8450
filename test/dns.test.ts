// fedgate's DNS server end to end: the local federation, discovery, health checks
// and the DNS listeners, asked by real clients (dig, Node's resolver, raw sockets).
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/schema.ts';
import type { Discovery } from '../src/discovery.ts';
import { DnsServer } from '../src/dns/server.ts';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { DiscoveryEnv, FAST_HEALTH, startFederation } from './helpers/discovery-env.ts';
import { type DigResult, dig } from './helpers/tools.ts';
import { waitFor } from './helpers/wait.ts';

const SCENARIO = `
federation: { name: galaxy, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }, { name: us-east-b, nodes: 1 }]
  - name: beta
    region: us-west
    zones: [{ name: us-west-a, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha, beta], replicasPerZone: 2 }
  - { name: db, namespace: data, headless: true, ports: [{ name: sql, port: 5432 }], clusters: [beta], replicasPerZone: 2 }
  - { name: many, namespace: data, headless: true, ports: [{ name: tcp, port: 9000 }], clusters: [beta], replicasPerZone: 40 }
`;
const WAIT_MS = 20_000;

/** A plain query in wire format: ID 0x1234, one question, class IN. */
function query(name: string, qtype: number): Buffer {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const tail = Buffer.from([0, qtype >> 8, qtype & 255, 0, 1]);
  return Buffer.concat([Buffer.from('123400000001000000000000', 'hex'), ...labels, tail]);
}

/** One query over TCP; resolves with the reply (without its length prefix). */
function tcpQuery(server: { host: string; port: number }, msg: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect(server.port, server.host);
    let got = Buffer.alloc(0);
    sock.setTimeout(5000, () => sock.destroy(new Error('no TCP reply')));
    sock.on('error', reject);
    sock.on('data', (c) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        sock.end();
        resolve(got.subarray(2, 2 + got.readUInt16BE(0)));
      }
    });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(msg.length);
    sock.write(Buffer.concat([len, msg]));
  });
}
const WEB = 'web.shop.svc.clusterset.local';
const WEB_GLOBAL = 'web.shop.galaxy.svc.example.test';

describe('DNS against the local federation', () => {
  let fed: LocalFederation;
  let d: Discovery;
  let dns: DnsServer;
  let server: { host: string; port: number };
  const env = new DiscoveryEnv();

  beforeAll(async () => {
    let config: Config;
    ({ fed, d, config } = await startFederation(env, SCENARIO, 210, {
      self: { region: 'us-east', zone: 'us-east-a' },
      localities: [
        { cidr: '127.3.0.0/16', region: 'us-west', zone: 'us-west-a' },
        { cidr: '127.198.100.0/24', region: 'us-west', zone: 'us-west-a' },
        { cidr: '127.203.113.0/24', region: 'us-east', zone: 'us-east-b' },
      ],
      dns: {
        listen: ['127.0.0.1:0'],
        rrl: { responsesPerSecond: 100 },
        nameServers: [{ name: 'ns1.example.test', addresses: ['127.192.2.53'] }],
      },
      health: FAST_HEALTH,
    }));
    dns = await DnsServer.start({
      config,
      catalog: d.catalog,
      health: d.health.store,
      router: d.router,
      log: env.log.logger,
    });
    const a = dns.addresses().udp[0]!;
    server = { host: a.address, port: a.port };
  });
  afterAll(async () => {
    await dns?.stop();
    await env.cleanup();
    await fed?.stop();
  });

  const q = (args: string[]) => dig(server, args);
  const data = (r: DigResult, type = 'A') =>
    r.answers
      .filter((x) => x.type === type)
      .map((x) => x.data)
      .sort();
  const podsIn = (zone: string, svc = 'shop/web') =>
    d.catalog
      .current()
      .services.get(svc)!
      .clusters.flatMap((m) => m.endpoints)
      .filter((e) => e.locality.zone === zone)
      .map((e) => e.addresses[0]!)
      .sort();

  it('answers A for the MCS name with the nearest zone, authoritatively, echoing case and RD', async () => {
    const r = await q(['+rec', 'Web.Shop.SVC.ClusterSet.Local', 'A']);
    expect(r.status).toBe('NOERROR');
    expect(r.flags).toEqual(expect.arrayContaining(['qr', 'aa', 'rd']));
    expect(r.flags).not.toContain('ra');
    expect(r.question[0]!.name).toBe('Web.Shop.SVC.ClusterSet.Local.');
    expect(data(r)).toEqual(podsIn('us-east-a'));
    expect(r.answers[0]!.ttl).toBe(5);
    expect(r.edns?.udp).toBe(1232);
  });

  it('answers SRV, TXT, SOA, NS, headless and host names, and NODATA for AAAA', async () => {
    const srv = await q([`_http._tcp.${WEB}`, 'SRV']);
    expect(srv.answers.map((x) => x.data)).toEqual([`0 1 8080 ${WEB}.`]);
    const txt = await q(['dns-version.clusterset.local', 'TXT']);
    expect(txt.answers.map((x) => x.data)).toEqual(['"1.0.0"']);
    const soa = await q(['example.test', 'SOA']);
    expect(soa.answers[0]!.data).toMatch(
      /^ns1\.example\.test\. hostmaster\.example\.test\. \d+ 3600 600 86400 5$/,
    );
    const ns = await q(['example.test', 'NS']);
    expect(ns.answers.map((x) => x.data)).toEqual(['ns1.example.test.']);
    expect(ns.additional.map((x) => x.data)).toEqual(['127.192.2.53']);
    const db = await q(['db.data.svc.clusterset.local', 'A']);
    expect(data(db)).toEqual(podsIn('us-west-a', 'data/db'));
    const host = d.catalog.current().services.get('data/db')!.clusters[0]!.endpoints[0]!;
    const byHost = await q([`${host.hostname}.beta.db.data.svc.clusterset.local`, 'A']);
    expect(data(byHost)).toEqual([host.addresses[0]]);
    // A headless SRV names every ready pod by the hostname its EndpointSlice carries (MCS DNS §2.4.2).
    const pods = d.catalog.current().services.get('data/db')!.clusters[0]!.endpoints;
    const dbSrv = await q(['_sql._tcp.db.data.svc.clusterset.local', 'SRV']);
    expect(dbSrv.answers.map((x) => x.data.split(' ')[3]).sort()).toEqual(
      pods.map((e) => `${e.hostname}.beta.db.data.svc.clusterset.local.`).sort(),
    );
    expect(pods.every((e) => e.hostname !== undefined && e.conditions.ready)).toBe(true);
    const aaaa = await q([WEB, 'AAAA']);
    expect(aaaa.status).toBe('NOERROR');
    expect(aaaa.answers).toEqual([]);
    expect(aaaa.authority[0]!.type).toBe('SOA');
  });

  it('answers the federation names at each level', async () => {
    expect(data(await q([WEB_GLOBAL, 'A']))).toEqual(podsIn('us-east-a'));
    expect(data(await q([`web.shop.galaxy.svc.us-west.example.test`, 'A']))).toEqual(
      podsIn('us-west-a'),
    );
    expect(data(await q([`web.shop.galaxy.svc.us-east-b.us-east.example.test`, 'A']))).toEqual(
      podsIn('us-east-b'),
    );
  });

  it('gives two ECS subnets and two source addresses their own nearest answers, echoing the scope', async () => {
    const west = await q(['+subnet=127.198.100.0/24', WEB, 'A']);
    expect(data(west)).toEqual(podsIn('us-west-a'));
    expect(west.edns?.options['CLIENT-SUBNET']).toBe('127.198.100.0/24/24');
    const eastB = await q(['+subnet=127.203.113.0/24', WEB, 'A']);
    expect(data(eastB)).toEqual(podsIn('us-east-b'));
    expect(data(await q(['-b', '127.3.0.9', WEB, 'A']))).toEqual(podsIn('us-west-a'));
    expect(data(await q(['-b', '127.0.0.1', WEB, 'A']))).toEqual(podsIn('us-east-a'));
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`${server.host}:${server.port}`]);
    expect((await resolver.resolve4(WEB)).sort()).toEqual(podsIn('us-east-a'));
  });

  it('NXDOMAIN and NODATA carry the SOA; out of zone is REFUSED; AXFR is REFUSED; ANY is minimal', async () => {
    const nx = await q(['nope.shop.svc.clusterset.local', 'A']);
    expect(nx.status).toBe('NXDOMAIN');
    expect(nx.flags).toContain('aa');
    expect(nx.authority.map((x) => [x.type, x.ttl])).toEqual([['SOA', 5]]);
    const nodata = await q(['shop.svc.clusterset.local', 'A']);
    expect(nodata.status).toBe('NOERROR');
    expect(nodata.answers).toEqual([]);
    expect(nodata.authority[0]!.type).toBe('SOA');
    expect((await q(['example.com', 'A'])).status).toBe('REFUSED');
    for (const type of [252, 251]) {
      const reply = await tcpQuery(server, query('example.test', type));
      expect(reply[3]! & 0x0f).toBe(5);
    }
    const any = await q([WEB, 'ANY']);
    expect(new Set(any.answers.map((x) => x.type))).toEqual(new Set(['A']));
  });

  it('truncates a 40-endpoint answer over UDP and gives it whole over TCP', async () => {
    const udp = await q(['+ignore', '+noedns', 'many.data.svc.clusterset.local', 'A']);
    expect(udp.flags).toContain('tc');
    const retried = await q(['+noedns', 'many.data.svc.clusterset.local', 'A']);
    expect(retried.retriedOverTcp || retried.transport === 'TCP').toBe(true);
    expect(retried.answers).toHaveLength(40);
  });

  it('drops an endpoint that fails its health check from the answers, and a zone with nothing healthy CNAMEs to its region', async () => {
    fed.setHealth('us-east-a', false);
    await waitFor(
      async () => data(await q([WEB, 'A'])).join() === podsIn('us-east-b').join(),
      WAIT_MS,
      'us-east-b to serve',
    );
    const zone = await q([`web.shop.galaxy.svc.us-east-a.us-east.example.test`, 'A']);
    expect(zone.answers[0]).toMatchObject({
      type: 'CNAME',
      data: 'web.shop.galaxy.svc.us-east.example.test.',
    });
    expect(data(zone)).toEqual(podsIn('us-east-b'));
    fed.setHealth('us-east-a', true);
    await waitFor(
      async () => data(await q([WEB, 'A'])).join() === podsIn('us-east-a').join(),
      WAIT_MS,
      'us-east-a back',
    );
  });

  it('rate-limits a flood from one prefix with slip, while another prefix is answered', async () => {
    const flood = createSocket('udp4');
    await new Promise<void>((r) => flood.bind(0, '127.4.0.1', () => r()));
    let replies = 0;
    let truncated = 0;
    flood.on('message', (m) => {
      replies++;
      if (m[2]! & 0x02) truncated++;
    });
    const before = dns.rrl.stats();
    const msg = query(WEB, 1);
    // In batches, so the kernel's socket buffer does not drop what the test counts.
    for (let i = 0; i < 1000; i += 50) {
      for (let j = 0; j < 50; j++) flood.send(msg, server.port, server.host);
      await new Promise((r) => setTimeout(r, 5));
    }
    const other = await q(['-b', '127.5.0.1', WEB, 'A']);
    await new Promise((r) => setTimeout(r, 500));
    flood.close();
    expect(other.status).toBe('NOERROR');
    expect(other.flags).not.toContain('tc');
    const after = dns.rrl.stats();
    expect(after.dropped - before.dropped).toBeGreaterThan(300);
    expect(after.slipped - before.slipped).toBeGreaterThan(300);
    expect(truncated).toBe(after.slipped - before.slipped);
    expect(replies).toBeLessThan(1000);
  });
});
