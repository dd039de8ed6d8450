// Tracing end to end: `fedgate start --workers 2` on a local federation (address
// block 241) exporting to the OpenTelemetry Collector's OTLP receiver (tools/otelcol).
// One cluster's pods reset every connection, so each request's first try fails there
// and its retry goes to the other cluster. What is checked is what the collector
// received and what the backend was sent: the client's trace continued, a server span
// with the failover on it, a client span per try (the failed one with its reason),
// and the backend's traceparent naming the try that reached it. Then the collector is
// stopped: requests still succeed, and the lost spans are counted on /metrics.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { LocalFederation } from '../src/localfed/federation.ts';
import { CLI, start } from './helpers/cli.ts';
import { DiscoveryEnv, FAST_WATCH, launchFederation } from './helpers/discovery-env.ts';
import {
  type OtlpSink,
  type ReceivedSpan,
  SPAN_KIND_CLIENT,
  SPAN_KIND_SERVER,
  startOtlpSink,
} from './helpers/otlp-sink.ts';
import { freePort } from './helpers/ports.ts';
import { seriesTotal } from './helpers/prometheus.ts';
import { waitFor } from './helpers/wait.ts';

const ADDRESS_BLOCK = 241;
const WEB = 'web.shop.svc.clusterset.local';
const SCENARIO = `
federation: { name: galaxy, domain: example.test }
terminationGraceSeconds: 1
clusters:
  - name: alpha
    region: us-east
    zones: [{ name: us-east-a, nodes: 1 }]
  - name: beta
    region: us-east
    zones: [{ name: us-east-b, nodes: 1 }]
services:
  - { name: web, namespace: shop, ports: [{ name: http, port: 80, targetPort: 8080 }], clusters: [alpha, beta], replicasPerZone: 1 }
`;

interface Echo {
  status: number;
  cluster?: string;
  headers?: Record<string, string>;
}

/** One GET through the proxy carrying `traceparent`; the backend echoes what it got. */
function get(port: number, traceparent: string): Promise<Echo> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/traced',
        headers: { host: WEB, traceparent, tracestate: 'client=1' },
        agent: false,
        timeout: 30_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve(status === 200 ? { status, ...(JSON.parse(body) as object) } : { status });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', reject);
    req.end();
  });
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

const env = new DiscoveryEnv();
let fed: LocalFederation;
let sink: OtlpSink;
let child: ReturnType<typeof start>;
let ports: { dns: number; http: number; admin: number };
let file: string;
let config: Record<string, unknown>;

beforeAll(async () => {
  const dir = await env.dir();
  const launched = await launchFederation(SCENARIO, ADDRESS_BLOCK, dir);
  fed = launched.fed;
  sink = await startOtlpSink(dir);
  ports = { dns: await freePort({ udp: true }), http: await freePort(), admin: await freePort() };
  file = join(dir, 'fedgate.yaml');
  config = {
    federation: { name: 'galaxy', domain: 'example.test' },
    self: { region: 'us-east', zone: 'us-east-a' },
    clusters: fed.clusters.map((c) => ({
      name: c.name,
      kubeconfig: launched.kubeconfigs[c.name],
      region: 'us-east',
    })),
    dns: { listen: [`127.0.0.1:${ports.dns}`] },
    http: { listen: [`127.0.0.1:${ports.http}`] },
    admin: { listen: `127.0.0.1:${ports.admin}` },
    watch: FAST_WATCH,
    // The proxy's retries alone: nothing ejects alpha, so every request tries it first.
    health: {
      active: { enabled: false },
      outlier: { consecutive5xx: 1000, consecutiveGatewayFailure: 1000 },
    },
    tracing: {
      enabled: true,
      endpoint: sink.endpoint,
      samplingRatio: 0,
      serviceName: 'fedgate-e2e',
      batchDelay: '100ms',
      exportTimeout: '2s',
    },
  };
  await writeFile(file, stringify(config));
  child = start(process.execPath, [CLI, 'start', '--config', file, '--workers', '2']);
  await waitFor(() => child.out().includes('fedgate: ready'), 30_000, 'fedgate ready');
  // alpha, the proxy's own zone, is tried first: its pod resets every connection.
  fed.setMode('alpha', 'reset');
}, 120_000);

afterAll(async () => {
  if (child?.child.pid && child.child.exitCode === null && child.child.signalCode === null) {
    process.kill(-child.child.pid, 'SIGKILL');
  }
  await sink?.stop();
  await fed?.stop();
  await env.cleanup();
});

describe('tracing to an OTLP collector', () => {
  it("continues the client's trace through a failover: the retry to the other cluster is on the spans, and the backend's parent is fedgate's try", async () => {
    const traces: { trace: string; parent: string; echo: Echo }[] = [];
    for (let i = 0; i < 4; i++) {
      const trace = hex(16);
      const parent = hex(8);
      const echo = await get(ports.http, `00-${trace}-${parent}-01`);
      traces.push({ trace, parent, echo });
    }
    for (const t of traces) {
      expect(t.echo.status).toBe(200);
      expect(t.echo.cluster).toBe('beta');
    }
    const spansOf = async (trace: string) =>
      (await sink.spans()).filter((s) => s.traceId === trace);
    // Sampled by the parent (samplingRatio is 0): each request's server span and two tries.
    await waitFor(
      async () => {
        for (const t of traces) if ((await spansOf(t.trace)).length < 3) return false;
        return true;
      },
      20_000,
      'the spans of every request at the collector',
    );
    for (const t of traces) {
      const spans = await spansOf(t.trace);
      const server = spans.find((s) => s.kind === SPAN_KIND_SERVER) as ReceivedSpan;
      expect(server, JSON.stringify(spans)).toBeDefined();
      expect(server.service).toBe('fedgate-e2e');
      expect(server.parentSpanId).toBe(t.parent);
      expect(server.name).toBe('GET');
      expect(server.attributes).toMatchObject({
        'http.request.method': 'GET',
        'url.path': '/traced',
        'url.scheme': 'http',
        'server.address': WEB,
        'network.protocol.version': '1.1',
        'http.response.status_code': 200,
        'fedgate.service': 'shop/web',
        'fedgate.cluster': 'beta',
        'fedgate.zone': 'us-east-b',
        'fedgate.attempts': 2,
        'fedgate.outcome': 'relayed',
      });
      expect(server.events.map((e) => e.attributes['fedgate.retry.reason'])).toEqual(['reset']);
      const tries = spans.filter((s) => s.kind === SPAN_KIND_CLIENT);
      expect(tries.every((s) => s.parentSpanId === server.spanId)).toBe(true);
      const failed = tries.find((s) => s.attributes['fedgate.cluster'] === 'alpha');
      const retried = tries.find((s) => s.attributes['fedgate.cluster'] === 'beta');
      expect(failed?.attributes).toMatchObject({ 'error.type': 'reset', 'fedgate.attempt': 1 });
      expect(retried?.attributes).toMatchObject({
        'fedgate.retry.reason': 'reset',
        'http.request.resend_count': 1,
        'http.response.status_code': 200,
      });
      // The backend got the client's trace with the successful try as its parent.
      expect(t.echo.headers?.traceparent).toBe(`00-${t.trace}-${retried?.spanId}-01`);
      expect(t.echo.headers?.tracestate).toBe('client=1');
    }
  });

  it('with the collector gone, requests still succeed and the lost spans are counted', async () => {
    await sink.stop();
    const metric = async (name: string, labels = '') => {
      const text = await (await fetch(`http://127.0.0.1:${ports.admin}/metrics`)).text();
      return seriesTotal(text, name, labels);
    };
    for (let i = 0; i < 6; i++) {
      const echo = await get(ports.http, `00-${hex(16)}-${hex(8)}-01`);
      expect(echo.status).toBe(200);
    }
    await waitFor(
      async () => (await metric('fedgate_tracing_export_failures_total')) > 0,
      20_000,
      'a failed export counted',
    );
    expect(
      await metric('fedgate_tracing_spans_dropped_total', 'reason="export_failed"'),
    ).toBeGreaterThan(0);
    expect(child.out()).toContain('span export failed');
  });

  it('a reload changes no tracing setting, and says so', async () => {
    const tracing = { ...(config.tracing as object), samplingRatio: 1 };
    await writeFile(file, stringify({ ...config, tracing }));
    process.kill(child.child.pid as number, 'SIGHUP');
    await waitFor(
      () => child.out().includes('tracing settings changed: they apply when fedgate restarts'),
      20_000,
      'the reload to say tracing waits for a restart',
    );
  });
});
