// A reload changes running parts in two steps, so that a replica runs one
// configuration or the other, never a mix. `stage(next)` does everything that can
// fail (build watchers, bind listeners, read certificates) and changes nothing
// running; it returns a StagedChange. Then exactly one of its two outcomes:
// `commit()` makes it current, synchronously and without failing; `abort()` closes
// what staging opened. Every part's reload has this shape: Discovery, DnsServer,
// ProxyServer, LocalServing and WorkerPool (across processes).
//
// Settings a commit hands to a part that holds them in place (the router, health,
// DNS's responder, the proxy's forwarder) go through that part's `reconfigure()`:
// already validated, applied synchronously, never failing.
//
// No fedgate imports: every layer may use this.

/** A change staged (everything that can fail done), waiting for commit or abort. */
export interface StagedChange {
  /** Makes the change current. Synchronous; cannot fail. */
  commit(): void;
  /** Undoes what staging did (closes what it opened); nothing running changed. */
  abort(): Promise<void>;
}

/** Hands `stageTogether`'s body each part as it is staged. */
export type AddStaged = <T extends StagedChange>(staging: T | Promise<T>) => Promise<T>;

/**
 * Stages several parts in order, as `body` adds them, into one StagedChange: its
 * commit commits them in the order staged; its abort aborts them all at once. If
 * `body` throws (a part failed to stage, or the caller gave up), the parts staged so
 * far are aborted and the error is rethrown. `body`'s result is returned with the
 * group's commit and abort.
 */
export async function stageTogether<R extends object>(
  body: (add: AddStaged) => Promise<R>,
): Promise<R & StagedChange> {
  const parts: StagedChange[] = [];
  let settled = false;
  const abort = async (): Promise<void> => {
    if (settled) return;
    settled = true;
    await Promise.all(parts.map((p) => p.abort()));
  };
  const add: AddStaged = async (staging) => {
    const part = await staging;
    parts.push(part);
    return part;
  };
  let result: R;
  try {
    result = await body(add);
  } catch (e) {
    await abort();
    throw e;
  }
  return {
    ...result,
    commit: () => {
      if (settled) throw new Error('a staged change commits or aborts once');
      settled = true;
      for (const p of parts) p.commit();
    },
    abort,
  };
}
