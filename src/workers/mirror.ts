// A worker process's catalog: the primary's snapshots as they arrive, published to
// DNS, the proxy and the router exactly as the Catalog publishes them in one
// process (current() never blocks; subscribers hear every snapshot in order).
import type { Snapshot } from '../catalog/model.ts';
import type { Logger } from '../observe/log.ts';
import { applyDelta, type SnapshotDelta } from './protocol.ts';

type Subscriber = (snapshot: Snapshot) => void;

export class CatalogMirror {
  #snapshot: Snapshot = { version: 0, createdAt: 0, services: new Map(), clusters: new Map() };
  readonly #subscribers = new Set<Subscriber>();
  readonly #log: Logger | undefined;

  constructor(log?: Logger) {
    this.#log = log;
  }

  current(): Snapshot {
    return this.#snapshot;
  }

  subscribe(fn: Subscriber): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /**
   * Publishes the snapshot `delta` describes. False when it does not follow the
   * snapshot held (one was missed): nothing changes, and the whole one is needed.
   */
  apply(delta: SnapshotDelta): boolean {
    const next = applyDelta(this.#snapshot, delta);
    if (!next) return false;
    this.#snapshot = next;
    for (const fn of this.#subscribers) {
      try {
        fn(next);
      } catch (e) {
        this.#log?.error({ err: e }, 'catalog subscriber failed');
      }
    }
    return true;
  }
}
