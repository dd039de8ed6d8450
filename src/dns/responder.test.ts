// The responder over snapshot literals: addressing modes, the SOA serial, ECS scope
// and spill across answer variants. Responses are read back with dns2 (trusted output).
import dns2 from 'dns2';
import { describe, expect, it } from 'vitest';
import { endpoints, service } from '../../test/fixtures/services.ts';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { configSchema } from '../config/schema.ts';
import { HealthStore } from '../health/store.ts';
import { Router } from '../routing/router.ts';
import { Responder } from './responder.ts';
import { ResponseRateLimiter } from './rrl.ts';
import { addressingView } from './server.ts';

const EAST_A = { region: 'us-east', zone: 'us-east-a' };
const WEST_A = { region: 'us-west', zone: 'us-west-a' };
const config = configSchema.parse({
  federation: { name: 'galaxy', domain: 'example.test' },
  clusters: [
    { name: 'alpha', kubeconfig: 'a.kubeconfig', region: 'us-east' },
    { name: 'beta', kubeconfig: 'b.kubeconfig', region: 'us-west' },
  ],
  self: EAST_A,
  localities: [{ cidr: '127.198.100.0/24', region: 'us-west', zone: 'us-west-a' }],
  dns: {
    rrl: { enabled: false },
    proxyAddresses: [
      { region: 'us-east', zone: 'us-east-a', addresses: ['127.192.2.10'] },
      { region: 'us-west', addresses: ['127.192.2.20', '127.192.2.21'] },
    ],
  },
});

function world(over: Partial<FederatedService> = {}, ready = 2): FederatedService {
  const svc = service([
    { cluster: 'alpha', endpoints: endpoints(1, 2, EAST_A, ready) },
    { cluster: 'beta', endpoints: endpoints(2, 2, WEST_A) },
  ]);
  return {
    ...svc,
    ...over,
    clusters: svc.clusters.map((m) => ({
      ...m,
      ingress: [{ ip: m.cluster === 'alpha' ? '127.203.113.1' : '127.203.113.2' }],
    })),
  };
}

function setup(svc: FederatedService, version = 1) {
  const health = new HealthStore();
  const router = new Router(
    { ...config.routing, localities: config.localities, self: config.self },
    health,
  );
  const responder = new Responder({
    config,
    router,
    rrl: new ResponseRateLimiter(config.dns.rrl),
    addressing: addressingView(config),
    serialBase: 1000,
  });
  const snap = (v: number, s = svc): Snapshot => ({
    version: v,
    createdAt: 0,
    services: new Map([[s.key, s]]),
    clusters: new Map(),
  });
  responder.setSnapshot(snap(version));
  return { responder, health, snap, router };
}

function ask(r: Responder, name: string, qtype = 1, client = '127.0.0.1') {
  const p = new dns2.Packet();
  p.header.id = 7;
  p.questions.push({ name, type: qtype, class: 1 } as never);
  const out = r.respond(p.toBuffer(), client, false)!;
  return dns2.Packet.parse(out) as unknown as {
    header: { rcode: number };
    answers: { type: number; address?: string; primary?: string; serial?: number }[];
    authorities: { serial?: number }[];
  };
}
const addrs = (res: ReturnType<typeof ask>) => res.answers.map((a) => a.address!).sort();
const WEB = 'web.shop.svc.clusterset.local';

describe('Responder addressing modes', () => {
  it('endpoints: the nearest zone’s pods', () => {
    const { responder } = setup(world());
    expect(addrs(ask(responder, WEB))).toEqual(['127.11.0.0', '127.11.0.1']);
  });

  it('ingress (by annotation): the nearest cluster’s load balancer, the next one when it has nothing ready', () => {
    const { responder } = setup(world({ dnsMode: 'ingress' }));
    expect(addrs(ask(responder, WEB))).toEqual(['127.203.113.1']);
    expect(addrs(ask(responder, WEB, 1, '127.198.100.7'))).toEqual(['127.203.113.2']);
    const down = setup(world({ dnsMode: 'ingress' }, 0)).responder;
    expect(addrs(ask(down, WEB))).toEqual(['127.203.113.2']);
  });

  it('proxy: the edge nearest the client', () => {
    const { responder } = setup(world({ dnsMode: 'proxy' }));
    expect(addrs(ask(responder, WEB))).toEqual(['127.192.2.10']);
    expect(addrs(ask(responder, WEB, 1, '127.198.100.7'))).toEqual([
      '127.192.2.20',
      '127.192.2.21',
    ]);
  });
});

describe('Responder', () => {
  it('raises the SOA serial with every snapshot and answers from the new one at once', () => {
    const { responder, snap } = setup(world());
    const first = ask(responder, 'clusterset.local', 6).answers[0]!.serial!;
    expect(first).toBe(1001);
    responder.setSnapshot(snap(2, world({}, 0)));
    expect(ask(responder, 'clusterset.local', 6).answers[0]!.serial).toBe(1002);
    // Nothing ready in us-east-a any more: the next answer already says so.
    expect(addrs(ask(responder, WEB))).toEqual(['127.12.0.0', '127.12.0.1']);
  });

  it('a health change shows in the next answer', () => {
    const { responder, health } = setup(world());
    expect(addrs(ask(responder, WEB))).toEqual(['127.11.0.0', '127.11.0.1']);
    health.setCheck('shop/web', 'alpha/127.11.0.0', 'unhealthy', 'HTTP 503');
    responder.invalidate();
    const spread = new Set<string>();
    for (let i = 0; i < 10; i++) for (const a of addrs(ask(responder, WEB))) spread.add(a);
    // Half of us-east-a is left: 70 % of answers stay there, 30 % spill to us-west-a.
    expect([...spread].sort()).toEqual(['127.11.0.1', '127.12.0.0', '127.12.0.1']);
    let near = 0;
    for (let i = 0; i < 100; i++) if (addrs(ask(responder, WEB))[0] === '127.11.0.1') near++;
    expect(near).toBe(70);
  });
});

describe('Responder stats', () => {
  it('counts answers by qtype, name scheme and rcode, and the tier of each answer served', () => {
    const { responder, health } = setup(world());
    ask(responder, WEB);
    ask(responder, WEB, 28);
    ask(responder, 'web.shop.galaxy.svc.example.test');
    ask(responder, 'web.shop.galaxy.svc.us-west.example.test');
    ask(responder, 'nope.shop.svc.clusterset.local');
    ask(responder, 'example.org');
    ask(responder, 'clusterset.local', 6);
    expect(Object.fromEntries(responder.stats.kinds)).toEqual({
      'A|mcs|NOERROR': 1,
      'AAAA|mcs|NOERROR': 1,
      'A|federation|NOERROR': 1,
      'A|regional|NOERROR': 1,
      'A|mcs|NXDOMAIN': 1,
      'A|outside|REFUSED': 1,
      'SOA|clusterset-zone|NOERROR': 1,
    });
    // Each answer's own tier: the zone, then the region-scoped name's tier.
    expect(responder.stats.tiers.zone).toBe(2);
    // With half of us-east-a failing, 3 of 10 variants spill to the next tier.
    health.setCheck('shop/web', 'alpha/127.11.0.0', 'unhealthy', 'HTTP 503');
    responder.invalidate();
    const before = { ...responder.stats.tiers };
    for (let i = 0; i < 100; i++) ask(responder, WEB);
    const zone = (responder.stats.tiers.zone ?? 0) - (before.zone ?? 0);
    expect(zone).toBe(70);
  });
});

describe('Responder traffic hook', () => {
  it('tells what each answer served, cache hits too, with the client locality; nothing for other names', () => {
    const { responder } = setup(world());
    const seen: string[] = [];
    responder.traffic = {
      served: (s, l) =>
        seen.push(
          `${s.service} ${l?.zone} ${s.targets.map((t) => `${t.cluster}/${t.zone}`).join(',')}`,
        ),
    };
    ask(responder, WEB);
    ask(responder, WEB);
    ask(responder, WEB, 1, '127.198.100.7');
    ask(responder, 'web.shop.galaxy.svc.example.test');
    // Other names, and a family the service lacks (its endpoints are IPv4): not counted.
    ask(responder, 'clusterset.local', 6);
    ask(responder, 'nope.shop.svc.clusterset.local');
    ask(responder, WEB, 28);
    expect(seen).toEqual([
      'shop/web us-east-a alpha/us-east-a,alpha/us-east-a',
      'shop/web us-east-a alpha/us-east-a,alpha/us-east-a',
      'shop/web us-west-a beta/us-west-a,beta/us-west-a',
      'shop/web us-east-a alpha/us-east-a,alpha/us-east-a',
    ]);
  });

  it('an answer with nothing healthy anywhere is told with no targets', () => {
    const svc = world();
    const { responder } = setup({
      ...svc,
      clusters: svc.clusters.map((m) => ({ ...m, endpoints: [] })),
    });
    const seen: number[] = [];
    responder.traffic = { served: (s) => seen.push(s.targets.length) };
    ask(responder, WEB);
    expect(seen).toEqual([0]);
  });
});

describe('Responder reconfigured (reload)', () => {
  it('answers with the new TTL, zones and client localities at once, nothing cached served', () => {
    const { responder, router } = setup(world());
    const ttl = () => (ask(responder, WEB).answers[0] as unknown as { ttl: number }).ttl;
    expect(ttl()).toBe(5);
    expect(addrs(ask(responder, WEB, 1, '127.203.113.9'))).toEqual(['127.11.0.0', '127.11.0.1']);
    const next: typeof config = {
      ...config,
      federation: { ...config.federation, clustersetZone: 'fleet.local' },
      localities: [{ cidr: '127.203.113.0/24', region: 'us-west', zone: 'us-west-a' }],
      dns: { ...config.dns, ttl: 42_000 },
    };
    router.reconfigure({ ...next.routing, localities: next.localities, self: next.self });
    responder.reconfigure(next, addressingView(next), new ResponseRateLimiter(next.dns.rrl));
    expect(ask(responder, WEB).header.rcode).toBe(5); // REFUSED: no longer our zone
    const fleet = 'web.shop.svc.fleet.local';
    expect((ask(responder, fleet).answers[0] as unknown as { ttl: number }).ttl).toBe(42);
    expect(addrs(ask(responder, fleet, 1, '127.203.113.9'))).toEqual(['127.12.0.0', '127.12.0.1']);
  });
});
