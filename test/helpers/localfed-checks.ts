// Checks on a running local federation that hold on either API server: what its
// EndpointSlices say against what its backends really do.
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { expect } from 'vitest';
import type { LocalFederation } from '../../src/localfed/federation.ts';
import type { MemberCluster } from '../../src/localfed/member.ts';
import type { KubeObject } from '../../src/localfed/objects.ts';

export interface SliceEndpoint {
  addresses: string[];
  zone: string;
  nodeName: string;
  hostname?: string;
  conditions: { ready: boolean; serving: boolean; terminating: boolean };
}

export async function slices(
  fed: LocalFederation,
  cluster: string,
  ns: string,
  svc: string,
): Promise<SliceEndpoint[]> {
  const all = await fed.cluster(cluster).list('discovery.k8s.io/v1', 'EndpointSlice', ns);
  return all
    .filter((s: KubeObject) => s.metadata.labels?.['kubernetes.io/service-name'] === svc)
    .flatMap((s) => s.endpoints as SliceEndpoint[]);
}

export async function mustGet(
  m: MemberCluster,
  apiVersion: string,
  kind: string,
  ns: string | undefined,
  name: string,
): Promise<KubeObject> {
  const obj = await m.get(apiVersion, kind, ns, name);
  if (!obj) throw new Error(`${kind} ${ns ?? ''}/${name} not found in ${m.name}`);
  return obj;
}

export async function getJson(
  url: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export function refuses(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) =>
      resolve(e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET'),
    );
  });
}

/** Whether the member's API address (what kubeconfigs name) refuses connections. */
export function apiRefuses(m: MemberCluster): Promise<boolean> {
  const url = new URL(m.url);
  return refuses(url.hostname, Number(url.port));
}

/** Every endpoint is ready exactly when its backend accepts connections. */
export async function expectSlicesMatchBackends(fed: LocalFederation): Promise<void> {
  for (const c of (await fed.describe()).clusters) {
    for (const svc of new Set(c.pods.map((p) => p.service))) {
      const [ns, name] = svc.split('/') as [string, string];
      const endpoints = await slices(fed, c.name, ns, name);
      const pods = c.pods.filter((p) => p.service === svc);
      expect(endpoints.map((e) => e.addresses[0]).sort()).toEqual(pods.map((p) => p.ip).sort());
      for (const e of endpoints) {
        const pod = pods.find((p) => p.ip === e.addresses[0]);
        if (!pod) throw new Error(`no pod at ${e.addresses[0]}`);
        const listening = !(await refuses(pod.ip, pod.ports[0] ?? 0));
        expect(e.conditions.serving, `${pod.pod} serving`).toBe(listening);
        expect(e.conditions.ready, `${pod.pod} ready`).toBe(listening && !pod.terminating);
        expect(e.zone).toBe(pod.zone);
        expect(e.nodeName).toBe(pod.node);
      }
    }
  }
}

/**
 * GET over TLS: the status and the JSON body, or the error code of a refused handshake
 * (the server's certificate not verified, or a client certificate required).
 */
export function getTls(
  host: string,
  port: number,
  tls: { ca: string; servername: string; cert?: string; key?: string },
): Promise<{ status: number; body: Record<string, unknown> } | { error: string }> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host, port, path: '/', agent: false, timeout: 5000, ...tls },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}
