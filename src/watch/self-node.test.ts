import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FedgateError } from '../errors.ts';
import { readSelfNode } from './self-node.ts';

/** An API server on loopback answering GET /api/v1/nodes/NAME from `nodes` (status, body). */
async function api(nodes: Record<string, [number, unknown]>): Promise<Server> {
  const server = createServer((req, res) => {
    const name = decodeURIComponent(/^\/api\/v1\/nodes\/([^/?]+)$/.exec(req.url ?? '')?.[1] ?? '');
    const [status, body] = nodes[name] ?? [
      404,
      { kind: 'Status', code: 404, message: `nodes "${name}" not found` },
    ];
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

function kubeconfig(server: Server): string {
  const { port } = server.address() as AddressInfo;
  const file = join(mkdtempSync(join(tmpdir(), 'fedgate-selfnode-')), 'kubeconfig');
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true } }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
current-context: c
users: [{ name: u, user: { token: t } }]
`,
  );
  return file;
}

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

async function read(nodes: Record<string, [number, unknown]>, node: string) {
  server = await api(nodes);
  return readSelfNode({ cluster: 'alpha', kubeconfig: kubeconfig(server), node }, 5_000);
}

const NODE = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: {
    name: 'n1',
    uid: 'u1',
    labels: {
      'kubernetes.io/hostname': 'n1',
      'topology.kubernetes.io/region': 'us-east',
      'topology.kubernetes.io/zone': 'us-east-a',
      'topology.istio.io/subzone': 'rack-7',
    },
  },
  spec: { podCIDR: '127.16.0.0/24' },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
};

describe('readSelfNode', () => {
  it('trims the Node to its name and locality labels, the subzone from the key endpoints use', async () => {
    expect(await read({ n1: [200, NODE] }, 'n1')).toEqual({
      name: 'n1',
      region: 'us-east',
      zone: 'us-east-a',
      subzone: 'rack-7',
    });
  });

  it('a Node without topology labels is just its name', async () => {
    const bare = { ...NODE, metadata: { name: 'n1', uid: 'u1', labels: {} } };
    expect(await read({ n1: [200, bare] }, 'n1')).toEqual({ name: 'n1' });
  });

  it('no such Node: SELF_NODE_UNAVAILABLE naming it, its cluster and spec.nodeName', async () => {
    const e = await read({}, 'n9').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FedgateError);
    expect((e as FedgateError).code).toBe('SELF_NODE_UNAVAILABLE');
    expect((e as Error).message).toBe(
      `Node "n9" in cluster alpha: no such Node (self.node is spec.nodeName of fedgate's pod)`,
    );
  });

  it('forbidden: SELF_NODE_UNAVAILABLE that says why (RBAC)', async () => {
    const forbidden = { kind: 'Status', code: 403, message: 'nodes "n1" is forbidden' };
    const e = (await read({ n1: [403, forbidden] }, 'n1').catch((x: unknown) => x)) as FedgateError;
    expect(e.code).toBe('SELF_NODE_UNAVAILABLE');
    expect(e.message).toContain('Node "n1" in cluster alpha cannot be read');
    expect(e.message).toContain('403 Forbidden');
  });

  it('an answer that is not that Node is refused, not trimmed into a wrong locality', async () => {
    const other = { ...NODE, metadata: { ...NODE.metadata, name: 'n2' } };
    const e = (await read({ n1: [200, other] }, 'n1').catch((x: unknown) => x)) as FedgateError;
    expect(e.code).toBe('SELF_NODE_UNAVAILABLE');
    expect(e.message).toContain('not that Node');
  });
});
