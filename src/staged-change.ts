// The one shape of a reload, for every part it changes: `stage(next)` does all
// that can fail (build watchers, bind listeners, read certificates) and changes
// nothing running, and returns a StagedChange; then exactly one of its outcomes:
// `commit()`, synchronous and never failing, or `abort()`, which closes what
// staging opened. Which parts, in what order: docs/architecture.md,
// "Configuration and reload". No fedgate imports: every layer may use it.

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
