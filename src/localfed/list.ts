// Lists as kube-apiserver serves them: selectors, limit and continue over a consistent
// snapshot (remainingItemCount without selectors), resourceVersion 0 / NotOlderThan /
// Exact, 410 once the history is compacted, and a Table when the client asks for one.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeObject } from './objects.ts';
import { Registry } from './registry.ts';
import { type ResourceType, servedAs } from './resources.ts';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from './selectors.ts';
import { errors } from './status.ts';
import { type ClusterStore, Expired } from './store.ts';
import { toTable, wantsTable } from './table.ts';
import { includeObject, sendJson } from './wire.ts';

interface ContinueToken {
  v: 'meta.k8s.io/v1';
  rv: number;
  start: string;
}

export async function serveList(
  registry: Registry,
  req: IncomingMessage,
  res: ServerResponse,
  target: { type: ResourceType; namespace: string | undefined },
  q: URLSearchParams,
  tooLargeWaitMs: number,
): Promise<void> {
  const { type, namespace } = target;
  const labels = parseLabelSelector(q.get('labelSelector'));
  const fields = parseFieldSelector(q.get('fieldSelector'), type);
  const store = registry.store;
  const resource = Registry.keyOf(type);
  const rvParam = q.get('resourceVersion') ?? '';
  const match = q.get('resourceVersionMatch') ?? '';
  const limitParam = q.get('limit');
  const cont = q.get('continue') ?? '';
  checkResourceVersionMatch(match);
  if (match && !rvParam) {
    throw errors.invalidListOptions(
      'resourceVersionMatch',
      'FieldValueForbidden',
      'Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided',
    );
  }
  if (cont && rvParam)
    throw errors.badRequest('specifying resource version is not allowed when using continue');

  let rev = store.revision;
  let start = '';
  if (cont) {
    const token = decodeContinue(cont);
    rev = token.rv;
    start = token.start;
  } else if (rvParam && rvParam !== '0') {
    const wanted = Number(rvParam);
    if (!Number.isSafeInteger(wanted) || wanted < 0)
      throw errors.badRequest(`invalid resource version: ${rvParam}`);
    if (wanted > store.revision) await waitForRevision(store, wanted, tooLargeWaitMs);
    if (match === 'Exact') rev = wanted;
  }
  // resourceVersion=0 is served from the watch cache, which ignores limit.
  const limit = rvParam === '0' ? 0 : limitParam ? Number(limitParam) : 0;
  if (!Number.isSafeInteger(limit) || limit < 0)
    throw errors.badRequest(`invalid limit: ${limitParam}`);

  let all: KubeObject[];
  try {
    all = store.listAt(resource, rev, namespace, false);
  } catch (e) {
    if (!(e instanceof Expired)) throw e;
    if (cont) {
      throw errors.expired(
        'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
        encodeContinue({ v: 'meta.k8s.io/v1', rv: store.revision, start }),
      );
    }
    throw errors.expired('The resourceVersion for the provided list is too old.');
  }
  const selected = all.filter(
    (o) =>
      keyOf(o) >= start &&
      matchesLabels(labels, o.metadata.labels) &&
      matchesFields(fields, o, type),
  );
  const meta: Record<string, unknown> = { resourceVersion: String(rev) };
  let items = selected;
  if (limit > 0 && selected.length > limit) {
    items = selected.slice(0, limit);
    meta.continue = encodeContinue({
      v: 'meta.k8s.io/v1',
      rv: rev,
      start: `${keyOf(items[limit - 1]!)}\u0000`,
    });
    // As kube-apiserver: the remaining count is only known without selectors.
    if (labels.length === 0 && fields.length === 0)
      meta.remainingItemCount = selected.length - limit;
  }
  items = items.map((o) => servedAs(type, o));
  if (wantsTable(req.headers.accept))
    return sendJson(res, 200, toTable(type, items, meta, includeObject(q)));
  sendJson(res, 200, {
    kind: type.listKind,
    apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
    // A CRD's list (served unstructured) always carries continue, empty on the last page.
    metadata: type.custom ? { continue: '', ...meta } : meta,
    // Built-in types' list items carry no kind or apiVersion (the list's say it); a
    // CRD's items, served unstructured, keep theirs.
    items: type.custom ? items : items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
  });
}

/** Waits up to `waitMs` for the store to reach `wanted`, then 504 as kube-apiserver does (after 3 s). */
function waitForRevision(store: ClusterStore, wanted: number, waitMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(errors.tooLargeResourceVersion(wanted, store.revision));
    }, waitMs);
    const unsubscribe = store.subscribe(() => {
      if (store.revision >= wanted) {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      }
    });
  });
}

export function checkResourceVersionMatch(match: string): void {
  if (match === '' || match === 'Exact' || match === 'NotOlderThan') return;
  throw errors.invalidListOptions(
    'resourceVersionMatch',
    'FieldValueNotSupported',
    `Unsupported value: "${match}": supported values: "Exact", "NotOlderThan", ""`,
  );
}

function keyOf(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decodeContinue(raw: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as ContinueToken;
    if (t.v === 'meta.k8s.io/v1' && Number.isSafeInteger(t.rv) && typeof t.start === 'string')
      return t;
  } catch {
    // fall through
  }
  throw errors.badRequest(
    'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
  );
}
