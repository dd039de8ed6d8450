import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../catalog/model.ts';
import { clusterStatus } from '../catalog/testing.ts';
import { service } from '../routing/service-fixture.ts';
import { Metrics } from './metrics.ts';

const web = service([
  {
    cluster: 'alpha',
    endpoints: [
      { address: '10.0.0.1', zone: 'a' },
      { address: '10.0.0.2', zone: 'a' },
      { address: '10.0.0.3', zone: 'b', ready: false },
      { address: '10.0.0.4', zone: 'b', terminating: true, ready: false },
    ],
  },
]);
const snapshot: Snapshot = {
  version: 7,
  createdAt: 0,
  services: new Map([[web.key, web]]),
  clusters: new Map([
    ['alpha', clusterStatus('alpha', { state: 'synced', lastSyncAt: 1_000 })],
    ['beta', clusterStatus('beta', { state: 'stale', lastSyncAt: 500 })],
  ]),
};

function metrics(): Metrics {
  return new Metrics({ catalog: { current: () => snapshot }, now: () => 3_000 });
}

describe('Metrics', () => {
  it('counts proxied requests by service, cluster, zone and status class, with durations', async () => {
    const m = metrics();
    m.request('shop/web', 'alpha', 'a', 200, 0.002);
    m.request('shop/web', 'alpha', 'a', 204, 0.004);
    m.request('shop/web', '', '', 503, 0.0001);
    m.retry('shop/web', 'connect');
    const { text, contentType } = await m.scrape();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain(
      'fedgate_http_requests_total{service="shop/web",cluster="alpha",zone="a",code="2xx"} 2',
    );
    expect(text).toContain(
      'fedgate_http_requests_total{service="shop/web",cluster="",zone="",code="5xx"} 1',
    );
    expect(text).toContain(
      'fedgate_http_request_duration_seconds_bucket{le="0.0025",service="shop/web",code="2xx"} 1',
    );
    expect(text).toContain(
      'fedgate_http_request_duration_seconds_count{service="shop/web",code="2xx"} 2',
    );
    expect(text).toContain('fedgate_http_retries_total{service="shop/web",reason="connect"} 1');
  });

  it('reads clusters, endpoints and the catalog version from the snapshot at scrape time', async () => {
    const { text } = await metrics().scrape();
    expect(text).toContain('fedgate_catalog_version 7');
    expect(text).toContain('fedgate_cluster_up{cluster="alpha",state="synced"} 1');
    expect(text).toContain('fedgate_cluster_up{cluster="beta",state="stale"} 0');
    expect(text).toContain('fedgate_cluster_last_sync_age_seconds{cluster="beta"} 2.5');
    expect(text).toContain(
      'fedgate_endpoints{service="shop/web",cluster="alpha",zone="a",state="ready"} 2',
    );
    expect(text).toContain(
      'fedgate_endpoints{service="shop/web",cluster="alpha",zone="b",state="not-ready"} 1',
    );
    expect(text).toContain(
      'fedgate_endpoints{service="shop/web",cluster="alpha",zone="b",state="terminating"} 1',
    );
    // Process metrics come along, and no label carries an address.
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).not.toMatch(/10\.0\.0\.\d/);
  });
});
