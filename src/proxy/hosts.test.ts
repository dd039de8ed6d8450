import { describe, expect, it } from 'vitest';
import { service } from '../../test/fixtures/services.ts';
import type { FederatedService, Snapshot } from '../catalog/model.ts';
import { configSchema } from '../config/schema.ts';
import { buildIndex } from '../dns/name-index.ts';
import { HostTable, hostRules, normalizeHost, splitAuthority } from './hosts.ts';

function snapshot(...services: FederatedService[]): Snapshot {
  return {
    version: 1,
    createdAt: 0,
    services: new Map(services.map((s) => [s.key, s])),
    clusters: new Map(),
  };
}

// web's endpoints are in us-east-a (us-east) and eu-west: the places its regional and zonal names name.
const web = {
  ...service(
    [
      {
        cluster: 'alpha',
        endpoints: [
          { address: '127.42.1.1', region: 'us-east', zone: 'us-east-a' },
          { address: '127.42.1.2', region: 'eu-west' },
        ],
      },
    ],
    'shop/web',
  ),
  hosts: ['www.shop.example', 'shared.example'],
};
const api = { ...service([], 'shop/api'), hosts: ['shared.example', 'www.example.test'] };
const table = () =>
  new HostTable({
    clusterset: 'clusterset.local',
    domain: 'example.test',
    federation: 'galaxy',
    aliases: { 'www.example.test': 'shop/web', 'gone.example': 'shop/nothing' },
    edges: [],
  });

describe('normalizeHost', () => {
  it('drops the port and a trailing dot, lower-cases, refuses junk', () => {
    expect(normalizeHost('Web.Shop.svc.ClusterSet.Local:8080')).toBe(
      'web.shop.svc.clusterset.local',
    );
    expect(normalizeHost('example.test.')).toBe('example.test');
    expect(normalizeHost('[::1]:80')).toBeUndefined();
    expect(normalizeHost('a:b')).toBeUndefined();
    expect(normalizeHost(':80')).toBeUndefined();
    expect(normalizeHost('web.example:70000')).toBeUndefined();
    expect(normalizeHost('web example')).toBeUndefined();
  });
});

describe('splitAuthority', () => {
  it('splits host and port by RFC 3986, a port at most 65535', () => {
    expect(splitAuthority('Web.Example:8080')).toEqual({ host: 'Web.Example', port: '8080' });
    expect(splitAuthority('[::1]:443')).toEqual({ host: '[::1]', port: '443' });
    expect(splitAuthority('web.example')).toEqual({ host: 'web.example', port: '' });
    expect(splitAuthority('web.example:')).toEqual({ host: 'web.example', port: '' });
    expect(splitAuthority('')).toEqual({ host: '', port: '' });
    expect(splitAuthority('web.example:65535')?.port).toBe('65535');
    for (const bad of [
      'web.example:65536',
      'web.example:70000',
      'web.example:000080',
      '[::1',
      'a b',
      'a:b',
      'a@b',
      'a/b',
      'a:1:2',
    ]) {
      expect(splitAuthority(bad), bad).toBeUndefined();
    }
  });
});

describe('HostTable', () => {
  it('routes both schemes, aliases and annotation hosts', () => {
    const t = table();
    const s = snapshot(web, api);
    expect(t.lookup(s, 'web.shop.svc.clusterset.local')?.service).toBe(web);
    expect(t.lookup(s, 'web.shop.galaxy.svc.example.test')?.service).toBe(web);
    expect(t.lookup(s, 'api.shop.galaxy.svc.example.test')?.service).toBe(api);
    expect(t.lookup(s, 'www.shop.example')?.service).toBe(web);
    expect(t.lookup(s, 'nope.example')).toBeUndefined();
    expect(t.lookup(s, 'gone.example')).toBeUndefined();
    expect(t.lookup(s, 'other.shop.galaxy.svc.example.test')).toBeUndefined();
  });

  it('routes a regional or zonal federation name from that place', () => {
    const t = table();
    const s = snapshot(web);
    expect(t.lookup(s, 'web.shop.galaxy.svc.eu-west.example.test')).toEqual({
      service: web,
      locality: { region: 'eu-west', zone: undefined },
    });
    expect(t.lookup(s, 'web.shop.galaxy.svc.us-east-a.us-east.example.test')?.locality).toEqual({
      region: 'us-east',
      zone: 'us-east-a',
    });
    expect(t.lookup(s, 'web.shop.other.svc.eu-west.example.test')).toBeUndefined();
  });

  it('routes regional and zonal names exactly where DNS has them: places of an endpoint or an edge', () => {
    const zones = { clusterset: 'clusterset.local', domain: 'example.test', federation: 'galaxy' };
    const edges = [{ region: 'ap-south', zone: 'ap-south-1' }];
    const t = new HostTable({ ...zones, aliases: {}, edges });
    const s = snapshot(web, api);
    const index = buildIndex(s, zones, { regions: edges, nameServers: [] });
    const names = [
      'web.shop.galaxy.svc.us-east.example.test',
      'web.shop.galaxy.svc.us-east-a.us-east.example.test',
      'web.shop.galaxy.svc.eu-west.example.test',
      'api.shop.galaxy.svc.us-east-a.us-east.example.test',
      'web.shop.galaxy.svc.ap-south-1.ap-south.example.test',
      'web.shop.galaxy.svc.mars.example.test',
      'web.shop.galaxy.svc.us-east-z.us-east.example.test',
      'web.shop.galaxy.svc.us-east-a.eu-west.example.test',
      'web.shop.galaxy.svc.eu-west-a.eu-west.example.test',
      'web.shop.galaxy.svc.ap-south-2.ap-south.example.test',
    ];
    for (const name of names) {
      expect(t.lookup(s, name) !== undefined, name).toBe(index.names.has(name));
    }
    expect(t.lookup(s, 'web.shop.galaxy.svc.mars.example.test')).toBeUndefined();
    expect(t.lookup(s, 'web.shop.galaxy.svc.us-east-z.us-east.example.test')).toBeUndefined();
    expect(t.lookup(s, 'web.shop.galaxy.svc.ap-south-1.ap-south.example.test')?.service).toBe(web);
    expect(t.kindOf(s, 'web.shop.galaxy.svc.mars.example.test')).toBeUndefined();
  });

  it('gives a contested host to the config alias, then the first service by name, and says so', () => {
    const t = table();
    const s = snapshot(web, api);
    expect(t.lookup(s, 'www.example.test')?.service).toBe(web);
    expect(t.lookup(s, 'shared.example')?.service).toBe(api);
    expect(t.conflicts(s)).toEqual([
      { host: 'www.example.test', winner: 'shop/web', losers: ['shop/api'] },
      { host: 'shared.example', winner: 'shop/api', losers: ['shop/web'] },
    ]);
  });

  it('says which name a host is, as the winning claim made it', () => {
    const t = table();
    const s = snapshot(web, api);
    expect(t.kindOf(s, 'www.example.test')).toBe('alias');
    expect(t.kindOf(s, 'web.shop.svc.clusterset.local')).toBe('mcs');
    expect(t.kindOf(s, 'api.shop.galaxy.svc.example.test')).toBe('federation');
    expect(t.kindOf(s, 'shared.example')).toBe('annotation');
    expect(t.kindOf(s, 'web.shop.galaxy.svc.eu-west.example.test')).toBe('region');
    expect(t.kindOf(s, 'web.shop.galaxy.svc.us-east-a.us-east.example.test')).toBe('zone');
    expect(t.kindOf(s, 'nope.example')).toBeUndefined();
  });

  it('follows the snapshot: a service gone is a host gone', () => {
    const t = table();
    expect(t.lookup(snapshot(web), 'www.shop.example')?.service).toBe(web);
    expect(t.lookup(snapshot(api), 'www.shop.example')).toBeUndefined();
  });
});

describe('hostRules', () => {
  it("takes the configuration's zones, federation name and aliases", () => {
    const config = configSchema.parse({
      federation: { name: 'galaxy', domain: 'example.test', clustersetZone: 'clusterset.local' },
      clusters: [{ name: 'alpha', kubeconfig: 'alpha.kubeconfig' }],
      http: { aliases: { 'www.example.test': 'shop/web' } },
    });
    const rules = hostRules(config);
    expect(rules).toEqual({
      clusterset: 'clusterset.local',
      domain: 'example.test',
      federation: 'galaxy',
      aliases: { 'www.example.test': 'shop/web' },
      edges: [],
    });
    const s = snapshot(web);
    expect(new HostTable(rules).lookup(s, 'www.example.test')?.service).toBe(web);
    expect(new HostTable(rules).lookup(s, 'web.shop.galaxy.svc.example.test')?.service).toBe(web);
  });
});
