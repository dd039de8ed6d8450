// One open watch: replays history from the requested resourceVersion (or sends the
// current state as ADDED), then streams live changes as newline-delimited JSON, with
// bookmarks, selector transitions (an object leaving the selection is DELETED), the
// server-side timeout, and a 410 ERROR event when the history is gone.
import type { ServerResponse } from 'node:http';
import type { KubeObject } from './objects.ts';
import { apiVersionOf, type ResourceType, servedAs } from './resources.ts';
import {
  type FieldRequirement,
  matchesFields,
  matchesLabels,
  type Requirement,
} from './selectors.ts';
import { errors } from './status.ts';
import { type Change, type ClusterStore, Expired } from './store.ts';
import { type IncludeObject, toTable } from './table.ts';

export interface WatchRequest {
  type: ResourceType;
  resource: string;
  namespace: string | undefined;
  labels: Requirement[];
  fields: FieldRequirement[];
  /** undefined or '' or '0': start from the current state, sent as ADDED events. */
  resourceVersion: string | undefined;
  bookmarks: boolean;
  sendInitialEvents: boolean | undefined;
  timeoutMs: number;
  bookmarkIntervalMs: number;
  table: IncludeObject | undefined;
}

/**
 * The store hands the same object to every subscriber, so each change is encoded
 * once per event type, not once per open watch.
 */
const encoded = new WeakMap<KubeObject, Map<string, string>>();

function encodeEvent(type: string, obj: KubeObject): string {
  let byType = encoded.get(obj);
  if (!byType) {
    byType = new Map();
    encoded.set(obj, byType);
  }
  let line = byType.get(type);
  if (line === undefined) {
    line = `${JSON.stringify({ type, object: obj })}\n`;
    byType.set(type, line);
  }
  return line;
}

/** A watch whose client reads too slowly is closed, as kube-apiserver does. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export class WatchStream {
  readonly #res: ServerResponse;
  readonly #req: WatchRequest;
  readonly #store: ClusterStore;
  #unsubscribe: (() => void) | undefined;
  #timers: NodeJS.Timeout[] = [];
  #paused = false;
  #closed = false;
  /** A Table watch sends its column definitions once, in the first event; later ones say null. */
  #columnsSent = false;
  readonly #onClose: () => void;

  constructor(store: ClusterStore, req: WatchRequest, res: ServerResponse, onClose: () => void) {
    this.#store = store;
    this.#req = req;
    this.#res = res;
    this.#onClose = onClose;
  }

  /** Starts streaming; everything up to the subscription happens in one tick, so no change is missed. */
  start(): void {
    const { req, res } = { req: this.#req, res: this.#res };
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
    });
    res.flushHeaders();
    res.on('close', () => this.#cleanup());
    const rv = req.resourceVersion;
    const fromCurrent = rv === undefined || rv === '' || rv === '0';
    // sendInitialEvents=false from the current state: changes only, no ADDED for what exists.
    if (fromCurrent && req.sendInitialEvents === false) {
      this.#follow(this.#store.revision);
    } else if (fromCurrent || req.sendInitialEvents) {
      const start = fromCurrent ? this.#store.revision : Number(rv);
      let objects: KubeObject[];
      try {
        objects = this.#store.listAt(req.resource, start, req.namespace);
      } catch (e) {
        if (e instanceof Expired) {
          this.#expired(Number(rv));
          return;
        }
        throw e;
      }
      for (const obj of objects) if (this.#matches(obj)) this.#send('ADDED', obj);
      if (req.sendInitialEvents && req.bookmarks) {
        this.#send(
          'BOOKMARK',
          this.#bookmarkObject(start, { 'k8s.io/initial-events-end': 'true' }),
        );
      }
      this.#follow(start);
    } else {
      this.#follow(Number(rv));
    }
    if (this.#closed) return;
    this.#timers.push(setTimeout(() => this.end(), req.timeoutMs));
    if (req.bookmarks) {
      this.#timers.push(
        setInterval(
          () => this.#send('BOOKMARK', this.#bookmarkObject(this.#store.revision)),
          req.bookmarkIntervalMs,
        ),
      );
    }
  }

  #follow(from: number): void {
    let backlog: Change[];
    try {
      backlog = this.#store.changesSince(from);
    } catch (e) {
      if (e instanceof Expired) {
        this.#expired(from);
        return;
      }
      throw e;
    }
    for (const c of backlog) this.#deliver(c);
    this.#unsubscribe = this.#store.subscribe((c) => this.#deliver(c));
  }

  #expired(rv: number): void {
    this.#fail(
      errors
        .expired(`too old resource version: ${rv} (${this.#store.compactedRevision})`)
        .toStatus(),
    );
  }

  #fail(status: object): void {
    this.#write({ type: 'ERROR', object: status });
    this.end();
  }

  #matches(obj: KubeObject): boolean {
    const { namespace, labels, fields } = this.#req;
    if (namespace && obj.metadata.namespace !== namespace) return false;
    return matchesLabels(labels, obj.metadata.labels) && matchesFields(fields, obj, this.#req.type);
  }

  #deliver(c: Change): void {
    if (c.resource !== this.#req.resource || this.#paused) return;
    const now = this.#matches(c.object);
    const before = c.prev !== undefined && this.#matches(c.prev);
    if (c.type === 'ADDED') {
      if (now) this.#send('ADDED', c.object);
    } else if (c.type === 'DELETED') {
      if (before) this.#send('DELETED', c.object);
    } else if (now && before) this.#send('MODIFIED', c.object);
    else if (now) this.#send('ADDED', c.object);
    else if (before) this.#send('DELETED', c.object);
  }

  #bookmarkObject(rev: number, annotations?: Record<string, string>): KubeObject {
    // An empty object of the kind with only a resourceVersion, as kube-apiserver encodes it.
    const metadata: Record<string, unknown> = { resourceVersion: String(rev) };
    if (annotations) metadata.annotations = annotations;
    return {
      kind: this.#req.type.kind,
      apiVersion: apiVersionOf(this.#req.type),
      metadata,
      ...structuredClone(this.#req.type.emptyFields ?? {}),
    } as unknown as KubeObject;
  }

  #send(type: string, stored: KubeObject): void {
    if (this.#paused) return;
    const obj = servedAs(this.#req.type, stored);
    if (!this.#req.table && type !== 'BOOKMARK') {
      this.#writeLine(encodeEvent(type, obj));
      return;
    }
    if (this.#req.table && type !== 'BOOKMARK') {
      const table = toTable(
        this.#req.type,
        [obj],
        { resourceVersion: obj.metadata.resourceVersion },
        this.#req.table,
      );
      this.#write({
        type,
        object: this.#columnsSent ? { ...table, columnDefinitions: null } : table,
      });
      this.#columnsSent = true;
    } else {
      this.#write({ type, object: obj });
    }
  }

  #write(event: object): void {
    this.#writeLine(`${JSON.stringify(event)}\n`);
  }

  #writeLine(line: string): void {
    if (this.#closed) return;
    this.#res.write(line);
    if (this.#res.writableLength > MAX_BUFFERED_BYTES) this.end();
  }

  /** Stops sending anything, keeping the connection open: an API server that hangs. */
  pause(): void {
    this.#paused = true;
  }

  /** Ends the watch cleanly, as the server does at timeoutSeconds. */
  end(): void {
    if (this.#closed) return;
    this.#cleanup();
    this.#res.end();
  }

  /** Cuts the connection without ending the response: a dropped watch. */
  destroy(): void {
    this.#cleanup();
    this.#res.socket?.destroy();
    this.#res.destroy();
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    this.#onClose();
  }
}
