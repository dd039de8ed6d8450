// The MemberCluster contract, held on both API servers: the simulator (SimMember) and a
// real kube-apiserver + etcd behind its relay (RealMember). One member per kind.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberCluster } from '../src/localfed/member.ts';
import type { KubeObject } from '../src/localfed/objects.ts';
import { requireKubeTools } from './helpers/kube-control-plane.ts';
import { MemberWatch, memberGet } from './helpers/member-http.ts';
import { API_KINDS, startMember } from './helpers/members.ts';
import { sleep, waitFor } from './helpers/wait.ts';

const NS = 'default';

function service(name: string, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS, labels },
    spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  };
}

/** Runs a command to its end: exit code, stdout, stderr (a non-zero exit is an answer here). */
function run(
  bin: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function rv(o: KubeObject | undefined): number {
  return Number(o?.metadata.resourceVersion);
}

describe.each(API_KINDS)('MemberCluster on %s', (api) => {
  let m: MemberCluster;
  beforeAll(async () => {
    m = await startMember(api, `contract-${api}`);
  }, 120_000);
  afterAll(async () => {
    await m?.stop();
  });

  it('says what it is, and serves its kubeconfig URL with its CA and token', async () => {
    expect(m.api).toBe(api);
    expect(m.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(m.kubeconfig()).toContain(`server: ${m.url}`);
    const ns = await memberGet(m, '/api/v1/namespaces/default');
    expect(ns.status).toBe(200);
    expect((ns.body as KubeObject).metadata.name).toBe('default');
    const stranger = await memberGet(m, '/api/v1/namespaces', { token: 'not-the-token' });
    expect(stranger.status).toBe(401);
  });

  it('has the kubernetes Service on 127.255.0.1 and its EndpointSlice naming the API address', async () => {
    const svc = await m.get('v1', 'Service', NS, 'kubernetes');
    expect(svc?.spec).toMatchObject({ clusterIP: '127.255.0.1' });
    const slice = await m.get('discovery.k8s.io/v1', 'EndpointSlice', NS, 'kubernetes');
    const port = Number(new URL(m.url).port);
    expect(slice?.endpoints).toEqual([
      expect.objectContaining({ addresses: ['127.0.0.1'], conditions: { ready: true } }),
    ]);
    expect(slice?.ports).toEqual([expect.objectContaining({ name: 'https', port })]);
  });

  it('apply creates, updates, and writes nothing when nothing changed', async () => {
    const created = await m.apply(service('web', { tier: 'a' }));
    expect(created.metadata.uid).toBeTruthy();
    expect(created.spec).toMatchObject({ clusterIP: expect.stringMatching(/^127\.255\./) });
    const again = await m.apply(service('web', { tier: 'a' }));
    expect(rv(again)).toBe(rv(created));
    expect(rv(await m.get('v1', 'Service', NS, 'web'))).toBe(rv(created));
    const updated = await m.apply(service('web', { tier: 'b' }));
    expect(rv(updated)).toBeGreaterThan(rv(created));
    expect(updated.metadata.labels).toEqual({ tier: 'b' });
    expect(updated.metadata.uid).toBe(created.metadata.uid);
  });

  it('writes .status through /status, and a repeated status writes nothing', async () => {
    const status = {
      conditions: [
        {
          type: 'Valid',
          status: 'True',
          reason: 'Exported',
          message: 'ok',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    const obj: KubeObject = {
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ServiceExport',
      metadata: { name: 'web', namespace: NS },
      status,
    };
    const created = await m.apply(obj);
    expect(created.status).toEqual(status);
    const again = await m.apply(obj);
    expect(rv(again)).toBe(rv(created));
    const got = await m.get('multicluster.x-k8s.io/v1alpha1', 'ServiceExport', NS, 'web');
    expect(got?.status).toEqual(status);
  });

  it('stores EndpointSlices with loopback addresses, as every localfed endpoint has', async () => {
    const slice: KubeObject = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-1', namespace: NS, labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.205.0.10'], conditions: { ready: true } }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    };
    const created = await m.apply(slice);
    expect(created.metadata.generation).toBe(1);
    expect(rv(await m.apply(slice))).toBe(rv(created));
    const moved = await m.apply({
      ...slice,
      endpoints: [{ addresses: ['127.205.0.11'], conditions: { ready: false } }],
    });
    expect(moved.metadata.generation).toBe(2);
    expect(rv(moved)).toBeGreaterThan(rv(created));
    const listed = await memberGet(m, `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`);
    const items = (listed.body as { items: KubeObject[] }).items;
    expect(items.find((s) => s.metadata.name === 'web-1')?.endpoints).toEqual([
      expect.objectContaining({ addresses: ['127.205.0.11'] }),
    ]);
    expect(await m.remove('discovery.k8s.io/v1', 'EndpointSlice', NS, 'web-1')).toBe(true);
  });

  it('lists with kind and apiVersion on each item, gets, removes, and the revision grows', async () => {
    const before = Number(await m.revision());
    await m.apply(service('listed'));
    const after = Number(await m.revision());
    expect(after).toBeGreaterThan(before);
    const names = (await m.list('v1', 'Service', NS)).map((s) => [
      s.kind,
      s.apiVersion,
      s.metadata.name,
    ]);
    expect(names).toContainEqual(['Service', 'v1', 'listed']);
    expect(names).toContainEqual(['Service', 'v1', 'kubernetes']);
    expect(await m.remove('v1', 'Service', NS, 'listed')).toBe(true);
    expect(await m.remove('v1', 'Service', NS, 'listed')).toBe(false);
    expect(await m.get('v1', 'Service', NS, 'listed')).toBeUndefined();
    expect(Number(await m.revision())).toBeGreaterThan(after);
  });

  it('serves kubectl through its kubeconfig; a protobuf body only on real', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedgate-contract-'));
    try {
      const kubectl = (args: string[]) =>
        run(requireKubeTools().kubectl, [
          `--kubeconfig=${join(dir, `${m.name}.kubeconfig`)}`,
          ...args,
        ]);
      await m.writeKubeconfig(dir);
      expect((await kubectl(['get', 'namespace', 'default', '-o', 'name'])).stdout).toBe(
        'namespace/default\n',
      );
      // kubectl's imperative generators send protobuf; the simulator speaks only JSON.
      const created = await kubectl(['create', 'namespace', `proto-${api}`, '-v=8']);
      expect(created.stderr).toContain('Content-Type: application/vnd.kubernetes.protobuf');
      if (api === 'real') {
        expect(created).toMatchObject({ code: 0, stdout: `namespace/proto-${api} created\n` });
      } else {
        expect(created.code).toBe(1);
        expect(created.stderr).toContain('415');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('faults, as a client through the kubeconfig URL sees them', () => {
    const SERVICES = `/api/v1/namespaces/${NS}/services`;

    async function openWatch(): Promise<MemberWatch> {
      const w = new MemberWatch(m, `${SERVICES}?watch=1&resourceVersion=${await m.revision()}`);
      await w.opened;
      expect(w.status).toBe(200);
      return w;
    }

    it('refuse: ECONNREFUSED, an open watch is cut; up serves again', async () => {
      const w = await openWatch();
      await m.setFault('refuse');
      expect(m.fault).toBe('refuse');
      await expect(memberGet(m, SERVICES)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      await waitFor(() => w.ended === 'cut', 10_000, 'the open watch cut');
      await m.setFault('up');
      expect((await memberGet(m, SERVICES)).status).toBe(200);
    });

    it('hang: no answer, an open watch gets nothing; up cuts what hang held', async () => {
      const w = await openWatch();
      await m.setFault('hang');
      await expect(memberGet(m, SERVICES, { timeoutMs: 3000 })).rejects.toThrow(
        /no answer within 3000 ms/,
      );
      // localfed's own writes go on (past the relay); the watch must not carry them.
      await m.apply(service('during-hang'));
      await sleep(1500);
      expect(w.events).toEqual([]);
      expect(w.ended).toBeUndefined();
      const held = memberGet(m, SERVICES, { timeoutMs: 30_000 });
      held.catch(() => {});
      await sleep(200);
      await m.setFault('up');
      await expect(held).rejects.toMatchObject({ code: 'ECONNRESET' });
      await waitFor(() => w.ended === 'cut', 10_000, 'the silenced watch cut');
      expect((await memberGet(m, SERVICES)).status).toBe(200);
      expect(await m.remove('v1', 'Service', NS, 'during-hang')).toBe(true);
    });

    it('drop: an open watch is cut, a new one is cut as it starts, a list works', async () => {
      const w = await openWatch();
      await m.setFault('drop');
      await waitFor(() => w.ended === 'cut', 10_000, 'the open watch cut');
      const again = new MemberWatch(m, `${SERVICES}?watch=1&resourceVersion=${await m.revision()}`);
      await waitFor(() => again.ended, 10_000, 'the new watch cut');
      expect(again.ended).toBe('cut');
      expect(again.events).toEqual([]);
      const list = await memberGet(m, SERVICES);
      expect(list.status).toBe(200);
      expect((list.body as { kind: string }).kind).toBe('ServiceList');
      await m.setFault('up');
      const after = await openWatch();
      await m.apply(service('after-drop'));
      await waitFor(
        () => after.events.some((e) => e.object.metadata?.name === 'after-drop'),
        10_000,
        'the event on a watch opened after up',
      );
      after.close();
      expect(await m.remove('v1', 'Service', NS, 'after-drop')).toBe(true);
    });

    it('compact: a watch from a resourceVersion before it gets 410 Expired', async () => {
      await m.apply(service('before-compact'));
      const before = await m.revision();
      const open = await openWatch();
      const compacting = m.compact();
      // A request made while it compacts is answered, not refused: on the real member the
      // relay holds it until the restarted kube-apiserver is ready.
      await sleep(100);
      const during = memberGet(m, SERVICES, { timeoutMs: 90_000 });
      const said = await compacting;
      expect(said).toMatch(/410 Expired/);
      expect((await during).status).toBe(200);
      // Even a watch from the revision it compacted at, the newest before it, gets 410.
      const at = /compacted at revision (\d+)/.exec(said)?.[1];
      if (api === 'real') {
        expect(Number(at)).toBeGreaterThanOrEqual(Number(before));
        const last = new MemberWatch(m, `${SERVICES}?watch=1&resourceVersion=${at}`);
        await waitFor(() => last.events.length > 0, 10_000, 'an event on the watch from then');
        expect(last.events[0]).toMatchObject({ type: 'ERROR', object: { code: 410 } });
        last.close();
      }
      const w = new MemberWatch(m, `${SERVICES}?watch=1&resourceVersion=${before}`);
      await waitFor(() => w.events.length > 0, 10_000, 'an event on the watch from before');
      expect(w.events[0]).toMatchObject({
        type: 'ERROR',
        object: { kind: 'Status', code: 410, reason: 'Expired' },
      });
      // What differs, asserted: the real member restarts kube-apiserver, which ends open
      // watches, cleanly (the chunked response finished), as a graceful restart does.
      if (api === 'real') {
        await waitFor(() => open.ended, 10_000, 'the open watch ended');
        expect(open.ended).toBe('end');
      } else expect(open.ended).toBeUndefined();
      open.close();
      const now = await openWatch();
      await m.apply(service('after-compact'));
      await waitFor(
        () => now.events.some((e) => e.object.metadata?.name === 'after-compact'),
        10_000,
        'the event on a watch from the current revision',
      );
      now.close();
    });

    it('compact keeps the fault: a member dropping watches drops them after it too', async () => {
      await m.setFault('drop');
      await m.compact();
      expect(m.fault).toBe('drop');
      const w = new MemberWatch(m, `${SERVICES}?watch=1&resourceVersion=${await m.revision()}`);
      await waitFor(() => w.ended, 10_000, 'the new watch cut');
      expect(w.ended).toBe('cut');
      expect((await memberGet(m, SERVICES)).status).toBe(200);
      await m.setFault('up');
    });
  });
});
