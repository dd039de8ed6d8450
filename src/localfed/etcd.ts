// etcd's v3 JSON gateway (served by the built etcd v3.7.0 on its client URL): the current
// revision, compaction, and a raw put, for what kube-apiserver cannot be asked to do.
import { request } from 'node:http';
import { readText } from './loopback-http.ts';

interface EtcdHeader {
  header?: { revision?: string };
}

function post(etcdUrl: string, path: string, body: unknown): Promise<unknown> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${etcdUrl}${path}`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
        timeout: 10_000,
      },
      (res) => {
        readText(res).then((text) => {
          if (res.statusCode === 200) resolve(JSON.parse(text));
          else reject(new Error(`etcd ${path}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        }, reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`etcd ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** etcd's current revision (kube-apiserver's resourceVersions are etcd revisions). */
export async function etcdRevision(etcdUrl: string): Promise<number> {
  // A range over one key that need not exist returns the store's header all the same.
  const r = (await post(etcdUrl, '/v3/kv/range', { key: b64('/'), limit: '1' })) as EtcdHeader;
  const rev = Number(r.header?.revision);
  if (!Number.isSafeInteger(rev)) throw new Error('etcd range: no header revision');
  return rev;
}

/** Drops every revision before `revision` (physical: waits until it is done). */
export async function etcdCompact(etcdUrl: string, revision: number): Promise<void> {
  await post(etcdUrl, '/v3/kv/compaction', { revision: String(revision), physical: true });
}

/** Writes `value` at `key`, past kube-apiserver and its validation; returns the new revision. */
export async function etcdPut(etcdUrl: string, key: string, value: string): Promise<number> {
  const r = (await post(etcdUrl, '/v3/kv/put', { key: b64(key), value: b64(value) })) as EtcdHeader;
  return Number(r.header?.revision);
}
