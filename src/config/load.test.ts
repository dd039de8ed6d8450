import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { makeClusterPki } from '../localfed/pki.ts';
import * as D from './defaults.ts';
import { ConfigError, effectiveConfig, parseConfig } from './load.ts';
import { configJsonSchema, formatDuration, parseDuration } from './schema.ts';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
  - name: c1
    cluster: { server: https://127.0.0.1:6443 }
contexts:
  - name: one
    context: { cluster: c1, user: u1 }
  - name: two
    context: { cluster: c1, user: u1 }
current-context: one
users:
  - name: u1
    user: { token: abc }
`;

let dir: string;
let source: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedgate-config-'));
  writeFileSync(join(dir, 'a.kubeconfig'), KUBECONFIG);
  writeFileSync(join(dir, 'b.kubeconfig'), KUBECONFIG);
  source = join(dir, 'fedgate.yaml');
});

const MINIMAL = `federation: { name: galaxy, domain: example.test }
clusters:
  - { name: alpha, kubeconfig: a.kubeconfig }
`;

function problems(text: string): readonly string[] {
  try {
    parseConfig(text, source);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).code).toBe('CONFIG_INVALID');
    return (e as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

describe('parseConfig', () => {
  it('fills every default from the named constants', () => {
    const c = parseConfig(MINIMAL, source);
    expect(c.federation.clustersetZone).toBe(D.DEFAULT_CLUSTERSET_ZONE);
    expect(c.clusters[0]!.kubeconfig).toBe(join(dir, 'a.kubeconfig'));
    expect(c.clusters[0]!.weight).toBe(D.DEFAULT_CLUSTER_WEIGHT);
    expect(c.dns.listen).toEqual([{ host: '0.0.0.0', port: 5353 }]);
    expect(c.dns.ttl).toBe(D.DEFAULT_DNS_TTL_MS);
    expect(c.routing.overprovisioning).toBe(D.DEFAULT_OVERPROVISIONING);
    expect(c.routing.panicThreshold).toBe(D.DEFAULT_PANIC_THRESHOLD);
    expect(c.health.active.interval).toBe(D.DEFAULT_HEALTH_INTERVAL_MS);
    expect(c.health.outlier.baseEjectionTime).toBe(D.DEFAULT_OUTLIER_BASE_EJECTION_MS);
    expect(c.watch.startupTimeout).toBe(D.DEFAULT_STARTUP_TIMEOUT_MS);
    expect(c.watch.silenceLimit).toBe(D.DEFAULT_WATCH_SILENCE_LIMIT_MS);
  });

  it('freezes the result all the way down', () => {
    const c = parseConfig(MINIMAL, source);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.clusters[0])).toBe(true);
    expect(Object.isFrozen(c.dns.listen)).toBe(true);
    expect(() => {
      (c.clusters as unknown as unknown[]).push({});
    }).toThrow(TypeError);
  });

  it('reads every block: localities v4 and v6, listeners, durations, contexts', () => {
    const c = parseConfig(
      `${MINIMAL}  - { name: beta, kubeconfig: b.kubeconfig, context: two, region: eu-west, weight: 2 }
self: { region: us-east, zone: us-east-a }
localities:
  - { cidr: 127.11.0.0/16, region: us-east, zone: us-east-a }
  - { cidr: "::1/128", region: eu-west }
dns: { listen: ["[::1]:53", "127.0.0.1:53"], ttl: 1500ms, addressing: ingress }
http: { listen: ["127.0.0.1:8443"], aliases: { www.example.com: shop/web } }
admin: { listen: localhost:9999 }
routing: { overprovisioning: 1.2, failoverOrder: { us-east: [eu-west] }, picker: maglev, hashOn: "header:x-user" }
health: { active: { interval: 2s, timeout: 250ms }, outlier: { consecutive5xx: 3 } }
watch: { startupTimeout: 1m, silenceLimit: 1.5m }
`,
      source,
    );
    expect(c.clusters[1]).toMatchObject({ context: 'two', region: 'eu-west', weight: 2 });
    expect(c.localities.map((l) => l.cidr)).toEqual(['127.11.0.0/16', '::1/128']);
    expect(c.dns.listen).toEqual([
      { host: '::1', port: 53 },
      { host: '127.0.0.1', port: 53 },
    ]);
    expect(c.dns.ttl).toBe(1500);
    expect(c.admin.listen).toEqual({ host: 'localhost', port: 9999 });
    expect(c.health.active.timeout).toBe(250);
    expect(c.watch.startupTimeout).toBe(60_000);
    expect(c.watch.silenceLimit).toBe(90_000);
    expect(c.routing.hashOn).toBe('header:x-user');
  });

  it('names the path and the problem of each bad field', () => {
    const p = problems(`federation: { name: Galaxy, domain: example.test }
clusters:
  - { name: alpha, kubeconfig: a.kubeconfig, weight: 0, colour: blue }
localities: [{ cidr: 127.0.0.0/33, region: us-east }]
dns: { ttl: 30 seconds, listen: ["127.2.3.4:70000"] }
routing: { panicThreshold: 2 }
`);
    expect(p).toContain(
      'federation.name: expected a DNS label: lower-case letters, digits and -, at most 63',
    );
    expect(p).toContain('clusters[0].colour: unknown field');
    expect(p.some((x) => x.startsWith('clusters[0].weight: '))).toBe(true);
    expect(p.some((x) => x.startsWith('localities[0].cidr: expected an IPv4 or IPv6 CIDR'))).toBe(
      true,
    );
    expect(p).toContain('dns.ttl: expected a duration such as 500ms, 30s, 2m or 1h');
    expect(p.some((x) => x.startsWith('dns.listen[0]: expected an address and port'))).toBe(true);
    expect(p.some((x) => x.startsWith('routing.panicThreshold: '))).toBe(true);
  });

  it('says which required field is missing', () => {
    expect(problems('federation: { name: galaxy }\n')).toEqual([
      'federation.domain: required',
      'clusters: required',
    ]);
  });

  it('reports a missing kubeconfig file with its absolute path', () => {
    const p = problems(`${MINIMAL}  - { name: beta, kubeconfig: nope/beta.kubeconfig }\n`);
    expect(p).toEqual([
      `clusters[1].kubeconfig: file not found: ${join(dir, 'nope/beta.kubeconfig')}`,
    ]);
  });

  it('reports an unknown context, duplicate names and a zone without region', () => {
    const p = problems(`${MINIMAL}  - { name: alpha, kubeconfig: b.kubeconfig, context: three }
self: { zone: us-east-a }
`);
    expect(p).toContain('clusters[1].name: "alpha" is already clusters[0].name');
    expect(p).toContain(
      `clusters[1].context: no context "three" in ${join(dir, 'b.kubeconfig')} (it has: one, two)`,
    );
    expect(p).toContain('self.region: required when self.zone is set');
  });

  it('rejects YAML that does not parse, and an empty file', () => {
    expect(problems('federation: [unclosed\n')[0]).toMatch(/^YAML line \d+: /);
    expect(problems('')).toEqual(['the file is empty']);
  });
});

describe('effectiveConfig', () => {
  it('prints what a user writes, and parses back to the same config', () => {
    const c = parseConfig(`${MINIMAL}dns: { ttl: 90s }\n`, source);
    const eff = effectiveConfig(c);
    expect(eff.dns?.ttl).toBe('90s');
    expect(eff.dns?.listen).toEqual(['0.0.0.0:5353']);
    const again = parseConfig(JSON.stringify(eff), source);
    expect(again).toEqual(c);
  });

  it('writes an IPv6 listener in brackets', () => {
    const c = parseConfig(`${MINIMAL}admin: { listen: "[::]:9090" }\n`, source);
    expect(effectiveConfig(c).admin?.listen).toBe('[::]:9090');
  });
});

describe('durations', () => {
  it('round-trips through the largest whole unit', () => {
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(formatDuration(120_000)).toBe('2m');
    expect(formatDuration(1500)).toBe('1500ms');
    expect(formatDuration(3_600_000)).toBe('1h');
  });
});

describe('JSON Schema', () => {
  it('deploy/fedgate.schema.json is the generated schema (run: fedgate config-schema)', () => {
    const file = new URL('../../deploy/fedgate.schema.json', import.meta.url);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(configJsonSchema());
  });

  it('describes durations and listeners as the strings a user writes', () => {
    const schema = configJsonSchema() as {
      properties: Record<string, { properties: Record<string, { type?: string }> }>;
    };
    expect(schema.properties.dns!.properties.ttl!.type).toBe('string');
    expect(schema.properties.admin!.properties.listen!.type).toBe('string');
  });
});

describe('http.tls', () => {
  const tls = (cert: string, key: string) =>
    `${MINIMAL}http: { tls: { listen: ["127.0.0.1:0"], certificates: [{ cert: ${cert}, key: ${key} }] } }\n`;

  it('resolves certificate paths against the file and checks the key fits', async () => {
    const a = await makeClusterPki('a', ['a.example']);
    const b = await makeClusterPki('b', ['b.example']);
    writeFileSync(join(dir, 'a.crt'), a.serverCert);
    writeFileSync(join(dir, 'a.key'), a.serverKey);
    writeFileSync(join(dir, 'b.key'), b.serverKey);
    const c = parseConfig(tls('a.crt', 'a.key'), source);
    expect(c.http.tls?.certificates[0]).toEqual({
      cert: join(dir, 'a.crt'),
      key: join(dir, 'a.key'),
    });
    expect(problems(tls('a.crt', 'b.key'))[0]).toMatch(
      /^http\.tls\.certificates\[0\]: cannot use .*a\.crt with .*b\.key: /,
    );
    expect(problems(tls('a.crt', 'nope.key'))).toEqual([
      `http.tls.certificates[0].key: file not found: ${join(dir, 'nope.key')}`,
    ]);
  });

  it('reads the per-service picker and rejects a bad key spec', () => {
    const c = parseConfig(
      `${MINIMAL}routing: { services: { shop/cart: { picker: maglev, hashOn: "cookie:sid" } } }\n`,
      source,
    );
    expect(c.routing.services['shop/cart']).toEqual({ picker: 'maglev', hashOn: 'cookie:sid' });
    expect(
      problems(`${MINIMAL}routing: { services: { shop/cart: { hashOn: "body" } } }\n`)[0],
    ).toMatch(/^routing\.services\.shop\/cart\.hashOn: expected header:NAME/);
  });
});

describe('README', () => {
  it('lists every default constant in its configuration section', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const missing = Object.keys(D).filter((name) => !readme.includes(name));
    expect(missing).toEqual([]);
  });

  it('its example configuration is valid', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /```yaml\n# fedgate\.yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README has a ```yaml block starting "# fedgate.yaml"').toBeDefined();
    const doc = parse(block!) as {
      clusters: { kubeconfig: string }[];
      http: { tls: { certificates: { cert: string; key: string }[] } };
    };
    for (const c of doc.clusters) {
      writeFileSync(join(dir, c.kubeconfig), KUBECONFIG.replaceAll(': one', ': alpha'));
    }
    const pki = await makeClusterPki('edge', ['www.example.test']);
    for (const c of doc.http.tls.certificates) {
      mkdirSync(dirname(join(dir, c.cert)), { recursive: true });
      writeFileSync(join(dir, c.cert), pki.serverCert);
      writeFileSync(join(dir, c.key), pki.serverKey);
    }
    expect(() => parseConfig(block!, source)).not.toThrow();
  });
});

describe('routing.backendTLS', () => {
  const profile = (body: string, services = '') =>
    `${MINIMAL}routing:\n  backendTLS: { p: { ${body} } }\n${services}`;

  beforeAll(async () => {
    const a = await makeClusterPki('a', ['a.example']);
    const b = await makeClusterPki('b', ['b.example']);
    writeFileSync(join(dir, 'ca-a.pem'), a.caCert);
    writeFileSync(join(dir, 'client-a.crt'), a.serverCert);
    writeFileSync(join(dir, 'client-a.key'), a.serverKey);
    writeFileSync(join(dir, 'client-b.key'), b.serverKey);
    writeFileSync(join(dir, 'garbage.pem'), 'not a certificate\n');
    writeFileSync(
      join(dir, 'broken.pem'),
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    );
  });

  it('resolves the files against the config file and takes a whole profile', () => {
    const c = parseConfig(
      profile(
        'caFiles: [ca-a.pem], hostname: svc.internal, subjectAltNames: [{ type: URI, uri: "spiffe://td/ns/a/sa/b" }], clientCertificate: { certFile: client-a.crt, keyFile: client-a.key }',
        '  services: { shop/cart: { tls: p } }\n',
      ),
      source,
    );
    expect(c.routing.backendTLS.p).toEqual({
      caFiles: [join(dir, 'ca-a.pem')],
      hostname: 'svc.internal',
      subjectAltNames: [{ type: 'URI', uri: 'spiffe://td/ns/a/sa/b' }],
      clientCertificate: {
        certFile: join(dir, 'client-a.crt'),
        keyFile: join(dir, 'client-a.key'),
      },
    });
    expect(c.routing.services['shop/cart']?.tls).toBe('p');
  });

  it('catches a client key that does not belong to its certificate', () => {
    expect(
      problems(
        profile(
          'caFiles: [ca-a.pem], hostname: h, clientCertificate: { certFile: client-a.crt, keyFile: client-b.key }',
        ),
      ),
    ).toEqual([
      `routing.backendTLS.p.clientCertificate: the key in ${join(dir, 'client-b.key')} does not belong to the certificate in ${join(dir, 'client-a.crt')}`,
    ]);
  });

  it('catches CA files that are missing, hold no certificate, or do not parse', () => {
    const found = problems(profile('caFiles: [nope.pem, garbage.pem, broken.pem], hostname: h'));
    expect(found).toHaveLength(3);
    expect(found[0]).toBe(
      `routing.backendTLS.p.caFiles[0]: ${join(dir, 'nope.pem')}: file not found: ${join(dir, 'nope.pem')}`,
    );
    expect(found[1]).toBe(
      `routing.backendTLS.p.caFiles[1]: ${join(dir, 'garbage.pem')}: holds no PEM certificate`,
    );
    expect(found[2]).toMatch(
      /^routing\.backendTLS\.p\.caFiles\[2\]: .*broken\.pem: certificate 1 does not parse/,
    );
  });

  it('wants exactly one of caFiles and wellKnownCACertificates, and a profile that exists', () => {
    expect(problems(profile('hostname: h'))[0]).toMatch(
      /exactly one of caFiles and wellKnownCACertificates/,
    );
    expect(
      problems(profile('caFiles: [ca-a.pem], wellKnownCACertificates: System, hostname: h'))[0],
    ).toMatch(/exactly one of/);
    expect(
      problems(
        profile(
          'wellKnownCACertificates: System, hostname: h',
          '  services: { shop/cart: { tls: q } }\n',
        ),
      ),
    ).toEqual(['routing.services.shop/cart.tls: no profile "q" in routing.backendTLS']);
  });
});

describe('writeBack', () => {
  it("is off by default, with client-go's lease timing", () => {
    const c = parseConfig(MINIMAL, source);
    expect(c.writeBack).toEqual({
      enabled: false,
      lease: {
        namespace: D.DEFAULT_WRITEBACK_LEASE_NAMESPACE,
        name: D.DEFAULT_WRITEBACK_LEASE_NAME,
        duration: 15_000,
        renewDeadline: 10_000,
        retryPeriod: 2_000,
      },
      skipServiceImports: [],
    });
  });

  it('refuses timing a leader could outlive, and a member that is not configured', () => {
    expect(
      problems(`${MINIMAL}writeBack: { lease: { duration: 10s, renewDeadline: 10s } }\n`),
    ).toEqual(['writeBack.lease: duration must be greater than renewDeadline']);
    expect(
      problems(`${MINIMAL}writeBack: { lease: { renewDeadline: 2s, retryPeriod: 2s } }\n`),
    ).toEqual(['writeBack.lease: renewDeadline must be greater than 1.2 × retryPeriod']);
    expect(problems(`${MINIMAL}writeBack: { skipServiceImports: [beta] }\n`)).toEqual([
      'writeBack.skipServiceImports[0]: no member cluster named "beta"',
    ]);
  });
});
